"""Materials data, plane stiffness and eigenstrain projection, crystal orientations."""

import numpy as np
import pytest

from hyperspy_chemomech.mechanics import (
    Material, beam_frame, get_material, isotropic_stiffness, plane_eigenstrain, plane_stiffness,
    register_material, rotate_plane_stiffness, rotate_stiffness_3d, vegard_misfit)


def test_reference_numbers_and_sources():
    lfp, fp = get_material("LiFePO4"), get_material("FePO4")
    np.testing.assert_array_equal(lfp.lattice, [10.332, 6.010, 4.692])
    np.testing.assert_array_equal(fp.lattice, [9.821, 5.792, 4.788])
    c = lfp.stiffness
    assert (c[0, 0], c[1, 1], c[2, 2], c[0, 1], c[0, 2], c[1, 2]) == (138.9, 198.0, 173.0,
                                                                      72.8, 52.5, 45.8)
    assert (c[3, 3], c[4, 4], c[5, 5]) == (46.5, 39.8, 50.6)
    c = fp.stiffness
    assert (c[0, 0], c[1, 1], c[2, 2], c[0, 1], c[0, 2], c[1, 2]) == (175.9, 153.6, 135.0,
                                                                      29.6, 54.0, 19.6)
    assert (c[3, 3], c[4, 4], c[5, 5]) == (38.8, 47.5, 55.6)
    for m in (lfp, fp):
        np.testing.assert_array_equal(m.stiffness, m.stiffness.T)
        assert any("Maxisch" in s for s in m.source)
        assert not m.stiffness.flags.writeable  # shared reference data stays intact
    assert get_material("lfp") is lfp and get_material("FP") is fp
    mis = vegard_misfit("FePO4", "LiFePO4")
    assert mis == pytest.approx({"[100]": 0.05203, "[010]": 0.03764, "[001]": -0.02005},
                                abs=1e-5)


def test_user_material_and_errors():
    m = Material("toyX", (3.0, 4.0, 5.0), isotropic_stiffness(50.0, 0.25), "my notes")
    register_material(m)
    assert get_material("toyX") is m and m.source == ("my notes",)
    with pytest.raises(ValueError, match="exists"):
        register_material(m)
    with pytest.raises(ValueError, match="unknown material"):
        get_material("unobtainium")
    with pytest.raises(ValueError, match="positive definite"):
        Material("bad", (1, 1, 1), -np.eye(6))
    with pytest.raises(ValueError, match="lattice"):
        Material("bad", (1, -1, 1), np.eye(6))
    with pytest.raises(TypeError):
        register_material("LiFePO4")


def test_plane_stiffness_orthotropic_formula():
    c = get_material("LiFePO4").stiffness
    q = plane_stiffness(c, "stress", "[010]")
    # in-plane axes [100] (1) and [001] (2), beam [010]: Q_ij = C_ij - C_i2 C_j2 / C_22
    idx = [0, 2]
    for a in range(2):
        for b in range(2):
            ia, ib = idx[a], idx[b]
            assert q[a, b] == pytest.approx(c[ia, ib] - c[ia, 1] * c[ib, 1] / c[1, 1])
    assert q[2, 2] == pytest.approx(c[4, 4])  # shear in the a-c plane: C55
    assert q[0, 2] == 0 and q[1, 2] == 0
    qs = plane_stiffness(c, "strain", "[010]")
    np.testing.assert_allclose(qs, [[c[0, 0], c[0, 2], 0], [c[0, 2], c[2, 2], 0],
                                    [0, 0, c[4, 4]]])
    # plane stress is softer than plane strain
    assert np.all(np.linalg.eigvalsh(qs - q) >= -1e-12)
    q001 = plane_stiffness(c, beam="[001]")
    assert q001[0, 0] == pytest.approx(c[0, 0] - c[0, 2] ** 2 / c[2, 2])
    with pytest.raises(ValueError, match="plane"):
        plane_stiffness(c, plane="membrane")
    with pytest.raises(ValueError, match="beam"):
        plane_stiffness(c, beam="[110]")


def test_beam_vector_matches_named_axis():
    c = get_material("FePO4").stiffness
    np.testing.assert_allclose(plane_stiffness(c, beam=[0, 1, 0]), plane_stiffness(c),
                               atol=1e-12)
    np.testing.assert_allclose(plane_stiffness(c, beam=[0, 0, 2.0]),
                               plane_stiffness(c, beam="[001]"), atol=1e-12)
    r = beam_frame([1.0, 1.0, 0.0])
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(abs(r[2] @ [1, 1, 0]) / np.sqrt(2), 1.0)


def test_general_anisotropy_condenses_all_out_of_plane_stresses():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    c = a @ a.T + 6 * np.eye(6)
    q = plane_stiffness(c, "stress", "[001]")
    # check against the definition: any in-plane strain, out-of-plane strains chosen so
    # that sigma33 = sigma23 = sigma13 = 0, then the in-plane stress is Q @ strain
    ep = rng.normal(size=3)
    p, o = [0, 1, 5], [2, 3, 4]
    eo = -np.linalg.solve(c[np.ix_(o, o)], c[np.ix_(o, p)] @ ep)
    full = np.zeros(6)
    full[p], full[o] = ep, eo
    sig = c @ full
    np.testing.assert_allclose(sig[o], 0, atol=1e-12)
    np.testing.assert_allclose(sig[p], q @ ep, rtol=1e-12)


def test_plane_eigenstrain_projection():
    c = get_material("LiFePO4").stiffness
    mis = np.array(list(vegard_misfit().values()))
    e = plane_eigenstrain(mis, plane="stress", beam="[010]")
    np.testing.assert_allclose(e, [mis[0], mis[2], 0.0])
    # plane strain: the equivalent in-plane eigenstrain gives the same in-plane stress as
    # the 3D eigenstrain with e33 (here along [010]) held at zero
    es = plane_eigenstrain(mis, c, plane="strain", beam="[010]")
    q = plane_stiffness(c, "strain")
    total = np.array([0.01, -0.003, 0.002])  # some in-plane total strain, crystal axes
    full_total = np.array([total[0], 0, total[1], 0, 2 * total[2], 0])  # [010] clamped
    sig3d = c @ (full_total - np.array([mis[0], mis[1], mis[2], 0, 0, 0]))
    sig2d = q @ ((total - es) * [1, 1, 2])
    np.testing.assert_allclose(sig2d, sig3d[[0, 2, 4]], rtol=1e-12)
    # tensor input, stacked
    tens = np.broadcast_to(np.diag(mis), (4, 3, 3))
    np.testing.assert_allclose(plane_eigenstrain(tens), np.tile(e, (4, 1)))
    with pytest.raises(ValueError, match="stiffness"):
        plane_eigenstrain(mis, plane="strain")


def test_rotate_stiffness_3d_roundtrip():
    c = get_material("FePO4").stiffness
    th = 0.7
    r = np.array([[np.cos(th), np.sin(th), 0], [-np.sin(th), np.cos(th), 0], [0, 0, 1]])
    back = rotate_stiffness_3d(rotate_stiffness_3d(c, r), r.T)
    np.testing.assert_allclose(back, c, atol=1e-10)
    # rotating about the beam ([001]) = rotating the plane stiffness in the plane
    q = plane_stiffness(c, beam="[001]")
    q_rot = plane_stiffness(rotate_stiffness_3d(c, r.T), beam="[001]")
    np.testing.assert_allclose(q_rot, rotate_plane_stiffness(q, th), atol=1e-10)


@pytest.mark.pyxem
def test_orix_orientation_matches_named_beam_and_crystal_angle():
    from orix.crystal_map import Phase
    from orix.quaternion import Orientation
    from orix.vector import Miller, Vector3d

    lfp = get_material("LiFePO4")
    phase = Phase(point_group="mmm")  # [100] and [001] lie along x and z for any a, b, c
    c = lfp.stiffness
    q010 = plane_stiffness(c, beam="[010]")
    for phi in (0.0, 0.6, -2.1):
        # image x at -phi from [100]: [100] lies at +phi from image x (toward +y);
        # [001] follows at phi + 90 deg
        sample = Vector3d([[np.cos(phi), np.sin(phi), 0], [-np.sin(phi), np.cos(phi), 0]])
        crystal = Miller(uvw=[[1, 0, 0], [0, 0, 1]], phase=phase)
        o = Orientation.from_align_vectors(crystal, sample)
        np.testing.assert_allclose(plane_stiffness(c, beam=o), rotate_plane_stiffness(q010, phi),
                                   atol=1e-9)
        mis = np.array(list(vegard_misfit().values()))
        from hyperspy_chemomech.mechanics import rotate_strain

        np.testing.assert_allclose(plane_eigenstrain(mis, beam=o),
                                   rotate_strain([mis[0], mis[2], 0.0], phi, axis=-1), atol=1e-12)
