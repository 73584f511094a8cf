"""Nye tensor, incompatibility and dislocation finding on fields with known dislocations."""

import numpy as np
import pytest

from hyperspy_chemomech.decomposition import (corner_gradient, corners_to_pixels, distortion,
                                              find_dislocations, incompatibility, nye_tensor)
from hyperspy_chemomech.mechanics import ParticleElasticity, get_material, plane_stiffness
from hyperspy_chemomech.signals import StrainField
from hyperspy_chemomech.simulate.dislocations import dislocation_strain
from hyperspy_chemomech.simulate.particle import crystal_to_image_eigenstrain, make_particle
from hyperspy_chemomech.simulate.shapes import platelet_mask


# -- the Nye tensor against the Volterra field -----------------------------------------
@pytest.mark.parametrize("b", [(0.5, 0.0), (0.0, 0.5), (0.3, -0.4), (-0.35, 0.2)])
def test_nye_content_equals_burgers_vector_with_sign(b):
    e = dislocation_strain((61, 61), [(30.3, 29.6)], [b], pixel_size=2.0)
    alpha = nye_tensor(e, 2.0)
    content = alpha[:, 15:46, 15:46].sum(axis=(1, 2)) * 4.0   # pixel area 4 nm^2
    np.testing.assert_allclose(content, b, atol=0.01 * np.hypot(*b))
    # none of it far from the core
    far = alpha.copy()
    far[:, 25:36, 25:36] = 0
    assert np.abs(far[:, 5:56, 5:56].sum(axis=(1, 2)) * 4.0).max() < 0.01


def test_incompatibility_dipole_moments_give_burgers_vector():
    b = (0.3, -0.4)
    e = dislocation_strain((61, 61), [(30.3, 29.6)], [b], pixel_size=2.0)
    eta = incompatibility(e, 2.0)
    yy, xx = np.mgrid[0:61, 0:61] * 2.0
    sl = (slice(5, 56),) * 2
    assert abs(eta[sl].sum() * 4) < 1e-6
    np.testing.assert_allclose((yy * eta)[sl].sum() * 4, b[0], rtol=0.02)
    np.testing.assert_allclose((xx * eta)[sl].sum() * 4, -b[1], rtol=0.02)


def test_compatible_field_has_no_nye_content():
    """The forward model's strain and rotation (a displacement gradient) is compatible."""
    p = make_particle(shape=(50, 70), pixel_size=5.0, seed=1)
    alpha = nye_tensor(p.strain_clean, 5.0)
    eta = incompatibility(p.strain_clean, 5.0)
    assert np.isfinite(alpha[:, p.mask]).all()
    # zero up to round-off (strains ~1e-2; a dislocation core gives ~1e-2 /nm)
    assert np.nanmax(np.abs(alpha)) < 1e-14
    assert np.nanmax(np.abs(eta)) < 1e-14
    # the same field with a dislocation added shows it
    with_core = p.strain_clean + dislocation_strain((50, 70), [(25, 35)], [(1.0, 0.0)], 5.0)
    box = nye_tensor(with_core, 5.0)[:, 18:33, 28:43].sum(axis=(1, 2)) * 25.0
    np.testing.assert_allclose(box, [1.0, 0.0], atol=0.02)


def test_distortion_and_corner_operators():
    ny, nx = 8, 9
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    # u = (a x + c y, d x + f y): beta = [[a, c], [d, f]]
    a, c, d, f = 0.01, 0.02, -0.03, 0.005
    e = np.stack([np.full((ny, nx), a), np.full((ny, nx), f), np.full((ny, nx), (c + d) / 2),
                  np.full((ny, nx), (d - c) / 2)])
    beta = distortion(e)
    np.testing.assert_allclose(beta[:, :, 0, 0], [[a, c], [d, f]])
    gx, gy, ok = corner_gradient(3.0 * xx - 2.0 * yy, (0.5, 2.0))
    assert gx.shape == (ny - 1, nx - 1) and ok.all()
    np.testing.assert_allclose(gx, 1.5)
    np.testing.assert_allclose(gy, -4.0)
    holes = np.where(xx == 4, np.nan, xx)
    gx, _, ok = corner_gradient(holes, 1.0)
    assert not ok[:, 3:5].any() and ok[:, :3].all() and np.isnan(gx[:, 3:5]).all()
    back = corners_to_pixels(gx, ok)
    assert np.isnan(back[:, 4]).all() and np.allclose(back[:, 3], 1.0)


# -- Must show: one edge dislocation in an otherwise stress-free particle ---------------
@pytest.mark.parametrize("b", [(1.03, 0.0), (-0.6, 0.75)])
def test_single_dislocation_in_stress_free_particle(b):
    mask = platelet_mask((70, 100), kind="hexagon", fill=0.85)
    pos = np.array([34.4, 51.7])
    e = dislocation_strain(mask.shape, [pos], [b], pixel_size=5.0)
    e = np.where(mask, e, np.nan)
    s = StrainField.from_components(*e, scale=5.0)
    found = s.find_dislocations()
    assert len(found) == 1
    got = found[0]
    bmag = np.hypot(*b)
    assert np.hypot(got["b_x"] - b[0], got["b_y"] - b[1]) < 0.1 * bmag
    assert np.hypot(got["x"] / 5.0 - pos[1], got["y"] / 5.0 - pos[0]) < 2.0
    # the density map integrates to b around the core
    rho = s.dislocation_density()
    assert rho.data.shape == (3,) + mask.shape
    box = rho.data[:2, 24:45, 42:62].sum(axis=(1, 2)) * 25.0
    np.testing.assert_allclose(box, b, atol=0.1 * bmag)
    np.testing.assert_allclose(rho.data[2], np.hypot(rho.data[0], rho.data[1]))


# -- Must show: a particle with a known law, five dislocations, noise 1e-3 ---------------
@pytest.fixture(scope="module")
def five():
    p = make_particle(shape=(80, 120), pixel_size=5.0, noise=1e-3, n_dislocations=5, seed=3,
                      crystal_angle=0.3)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, material="LiFePO4", crystal_angle=0.3,
                                   show_progressbar=False)
    return p, strain, comp, law, strain.decompose(comp, law)


def _match(found, p, tol_px):
    """Pairs (true index, found index) within tol_px, greedy by distance."""
    xy = np.column_stack([found["y"], found["x"]]) / p.pixel_size
    d = np.hypot(*(p.dislocation_positions[:, None, :] - xy[None]).transpose(2, 0, 1))
    pairs = []
    while d.size and np.isfinite(d).any() and d.min() <= tol_px:
        i, j = np.unravel_index(np.argmin(d), d.shape)
        pairs.append((i, j))
        d[i, :] = np.inf
        d[:, j] = np.inf
    return pairs


def test_find_five_dislocations_with_noise(five):
    p, strain, comp, law, parts = five
    found = parts.residual.find_dislocations()
    pairs = _match(found, p, 3.0)
    assert len(pairs) >= 4
    assert len(found) - len(pairs) <= 1
    for i, j in pairs:   # Burgers vectors, sign included
        bt = p.burgers[i]
        assert np.hypot(found[j]["b_x"] - bt[0], found[j]["b_y"] - bt[1]) < 0.15 * np.hypot(*bt)
    assert set(found.dtype.names) >= {"x", "y", "b_x", "b_y"}


def test_coherency_stress_with_dislocations_matches_forward(five):
    p, strain, comp, law, parts = five
    q = plane_stiffness(get_material("LiFePO4").stiffness)
    eig = crystal_to_image_eigenstrain(p.law(np.where(p.mask, p.X_observed, 0.0)), 0.3)
    sol = ParticleElasticity(p.mask, 5.0, q, crystal_angle=0.3).solve(eig, show_progressbar=False)
    m = p.mask
    err = np.sqrt(np.mean((parts.stress.data[:, m] - sol.stress[:, m]) ** 2)
                  / np.mean(sol.stress[:, m] ** 2))
    assert err < 0.05


def test_measured_field_finds_the_same_cores(five):
    """The chemistry is compatible, so the raw measurement shows the same dislocations."""
    p, strain = five[:2]
    found = strain.find_dislocations()
    assert len(_match(found, p, 3.0)) >= 4


def test_pure_noise_gives_at_most_one_false_detection():
    rng = np.random.default_rng(0)
    mask = platelet_mask((80, 120), kind="hexagon", fill=0.85)
    e = np.where(mask, 1e-3 * rng.standard_normal((4,) + mask.shape), np.nan)
    found, info = find_dislocations(e, 5.0, full_output=True)
    assert len(found) <= 1
    assert info["threshold"] > 0 and info["min_burgers"] > 0


def test_markers_and_units(five):
    import hyperspy.api as hs

    p, strain, comp, law, parts = five
    found = parts.residual.find_dislocations()
    marks = parts.residual.dislocation_markers(found)
    assert isinstance(marks[0], hs.plot.markers.Points)
    assert isinstance(marks[1], hs.plot.markers.Arrows)
    parts.residual.add_marker(marks, permanent=True)
    # densities in m^-2 given b
    nm = parts.residual.dislocation_density(smoothing=5.0)
    m2 = parts.residual.dislocation_density(burgers=0.5, smoothing=5.0)
    np.testing.assert_allclose(m2.data, nm.data / 0.5 * 1e18)
    assert "m^-2" in m2.metadata.Signal.quantity
    eta = parts.residual.incompatibility()
    assert eta.data.shape == p.mask.shape
    # calibration in micrometres: positions still come back in nm
    um = strain.deepcopy()
    for ax in um.axes_manager.signal_axes:
        ax.units, ax.scale = "µm", 0.005
    a = strain.find_dislocations()
    b = um.find_dislocations(smoothing=0.005)
    np.testing.assert_allclose(b["x"], a["x"])
    np.testing.assert_allclose(b["b_y"], a["b_y"])


def test_bad_dislocation_input(five):
    strain = five[1]
    with pytest.raises(ValueError, match="burgers"):
        strain.dislocation_density(burgers=-1.0)
    with pytest.raises(ValueError, match="smoothing"):
        strain.dislocation_density(smoothing=-2.0)
    with pytest.raises(ValueError, match="shape"):
        nye_tensor(np.zeros((3, 5, 5)), 1.0)
    with pytest.raises(ValueError, match="pixel_size"):
        nye_tensor(np.zeros((4, 5, 5)), 0.0)
    with pytest.raises(TypeError, match="structured"):
        strain.dislocation_markers(np.zeros((3, 2)))


def test_lazy_maps_match_eager(five):
    strain = five[1]
    lazy = strain.as_lazy()
    lazy.data = lazy.data.rechunk((4, 30, 40))   # chunk borders cross the cores' fields
    for kw in ({}, {"smoothing": 7.0}):
        a, b = strain.dislocation_density(**kw), lazy.dislocation_density(**kw)
        assert b._lazy
        b.compute()
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=0)
        a, b = strain.incompatibility(**kw), lazy.incompatibility(**kw)
        assert b._lazy
        b.compute()
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(lazy.find_dislocations(), strain.find_dislocations())


def test_convention_check_finds_every_common_export_mistake():
    """A compatible map is ok as given; each convention slip is named and flagged."""
    from hyperspy_chemomech.decomposition import convention_check
    from hyperspy_chemomech.decomposition._conventions import CORRECTIONS as C
    from hyperspy_chemomech.simulate.particle import make_particle

    p = make_particle(shape=(150, 250), noise=2e-3, n_dislocations=5, seed=1)
    clean = convention_check(p.strain, p.pixel_size, mask=p.mask)
    assert clean["ok"] and clean["best"] == "as given", clean["message"]
    # mistake made on export -> the correction that undoes it
    cases = {"rotation sign flipped": C["rotation sign flipped"],
             "shear was engineering (halved)": C["shear was half the tensor shear (doubled)"],
             "shear was half the tensor shear (doubled)": C["shear was engineering (halved)"],
             "y axis pointed up (shear and rotation flipped)":
                 C["y axis pointed up (shear and rotation flipped)"],
             "x and y swapped (e11 <-> e22, rotation flipped)":
                 C["x and y swapped (e11 <-> e22, rotation flipped)"]}
    before = p.strain.copy()
    for fix, mistake in cases.items():
        r = convention_check(mistake(p.strain), p.pixel_size, mask=p.mask)
        assert r["best"] == fix and not r["ok"], (fix, r["message"])
    np.testing.assert_array_equal(p.strain, before)
    s = p.strain_field()
    assert s.check_conventions()["ok"]
    with pytest.raises(ValueError, match="shape"):
        convention_check(p.strain[:3], p.pixel_size)
