"""The second synthetic generator (made like real data), dislocations on it, C(X) default.

Issue 15: what works on ``simulate.make_particle`` must not be tuned to it.
"""

import numpy as np
import pytest
from scipy import ndimage

from hyperspy_chemomech.decomposition import find_dislocations, independent_samples
from hyperspy_chemomech.fields import dislocation_strain
from hyperspy_chemomech.mechanics import (
    ParticleElasticity,
    get_material,
    resolve_stiffness,
)
from hyperspy_chemomech.simulate import airy_psf, make_particle, realistic_particle
from hyperspy_chemomech.simulate.particle import crystal_to_image_eigenstrain
from hyperspy_chemomech.simulate.shapes import platelet_mask

SMALL = (80, 120)


def _match(found, p, tol_px=3.0):
    """Pairs (true index, found index) within tol_px, greedy by distance."""
    xy = np.column_stack([found["y"], found["x"]]) / p.pixel_size
    if len(xy) == 0:
        return []
    d = np.hypot(*(p.dislocation_positions[:, None, :] - xy[None]).transpose(2, 0, 1))
    pairs = []
    while np.isfinite(d).any() and d.min() <= tol_px:
        i, j = np.unravel_index(np.argmin(d), d.shape)
        pairs.append((i, j))
        d[i, :] = np.inf
        d[:, j] = np.inf
    return pairs


# -- the generator's truth is what it says ---------------------------------------------
@pytest.fixture(scope="module")
def rp():
    return realistic_particle(shape=SMALL, n_dislocations=5, noise=1e-3, crystal_angle=0.4,
                              seed=4)


def test_noise_level_holes_and_correlation(rp):
    m = rp.mask
    noise = rp.strain - rp.strain_noise_free
    ok = np.isfinite(noise[0])
    np.testing.assert_allclose(np.std(noise[:, ok], axis=1), 1e-3, rtol=0.03)
    # spread by the probe before the block mean: neighbours correlate (white noise: 0)
    a, b = noise[0][:, :-1], noise[0][:, 1:]
    both = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[both], b[both])[0, 1] > 0.2
    # 5 % failed fits, NaN, in clusters, inside the particle only
    assert rp.holes.sum() / m.sum() == pytest.approx(0.05, abs=0.005)
    assert not (rp.holes & ~m).any()
    assert np.isnan(rp.strain[:, rp.holes]).all()
    assert np.isfinite(rp.strain[:, m & ~rp.holes]).all() and np.isnan(rp.strain[:, ~m]).all()
    _, n = ndimage.label(rp.holes)
    assert rp.holes.sum() / n > 2.0            # clusters, not isolated pixels
    assert abs(rp.settings["hole_fraction"] - rp.holes.sum() / m.sum()) < 1e-12


def test_burgers_vectors_are_lattice_translations_off_pixel_centres(rp):
    a = np.array([get_material(n).lattice for n in ("FePO4", "LiFePO4")]) / 10.0  # nm
    e1 = np.array([np.cos(0.4), np.sin(0.4)])
    e2 = np.array([-np.sin(0.4), np.cos(0.4)])
    for b, axis, lat in zip(rp.burgers, rp.burgers_axes, rp.lattice_nm):
        length, d = (lat[0], e1) if axis == "[100]" else (lat[2], e2)
        k = 0 if axis == "[100]" else 2
        assert a[:, k].min() - 1e-12 <= length <= a[:, k].max() + 1e-12
        np.testing.assert_allclose(np.abs(b @ d), length, rtol=1e-12)
        np.testing.assert_allclose(b[0] * d[1] - b[1] * d[0], 0.0, atol=1e-12)   # parallel
    frac = np.abs(rp.dislocation_positions - np.round(rp.dislocation_positions))
    assert frac.min() >= 0.2 - 1e-12
    assert len(rp.burgers) == 5


def test_strain_is_the_fine_solution_block_averaged_not_the_data_grid_solver():
    p = realistic_particle(shape=(40, 60), noise=0.0, probe_sigma=0.0, hole_fraction=0.0,
                           stiffness="homogeneous", material="LiFePO4", seed=2)
    # the package's solver on the data grid, fed the data-grid composition: close, not equal
    q = resolve_stiffness("LiFePO4")
    sol = ParticleElasticity(p.mask, p.pixel_size, q).solve(
        crystal_to_image_eigenstrain(p.law(np.where(p.mask, p.X_true, 0.0)), 0.0),
        show_progressbar=False)
    coarse = np.concatenate([sol.strain, sol.rotation[None]])[:, p.mask]
    diff = np.sqrt(np.mean((p.strain_clean[:, p.mask] - coarse) ** 2))
    scale = np.sqrt(np.mean(coarse ** 2))
    assert 1e-3 * scale < diff < 0.3 * scale
    # the reference is added as said, and nothing else without noise
    np.testing.assert_allclose(p.strain[:, p.mask],
                               (p.strain_clean + p.reference[:, None, None])[:, p.mask],
                               atol=1e-14)


def test_xray_map_and_psf():
    k = airy_psf(2.0)
    assert k.sum() == pytest.approx(1.0) and k.shape == (17, 17)
    assert k[8, 10] < 1e-3 * k[8, 8]                  # first dark ring at 2 px
    assert k[8, 12] > 0.3 * k[8, 10] + 1e-6           # a bright ring beyond (not Gaussian)
    with pytest.raises(ValueError, match="first_zero"):
        airy_psf(0.0)
    p = realistic_particle(shape=(40, 60), xray_factor=4, seed=1, noise=0.0)
    m = p.mask
    assert np.isnan(p.X_observed[~m]).all() and np.isfinite(p.X_observed[m]).all()
    assert p.X_observed[m].min() >= 0 and p.X_observed[m].max() <= 1
    # blurred: correlated with the truth but off by more than a block mean of 4 px would be
    err = np.abs(p.X_observed - p.X_true)[m]
    assert 0.01 < err.mean() < 0.15
    q = realistic_particle(shape=(40, 60), xray_factor=4, seed=1, noise=0.0)
    np.testing.assert_array_equal(q.X_observed, p.X_observed)      # reproducible


def test_bad_generator_arguments():
    with pytest.raises(ValueError, match="refine"):
        realistic_particle(shape=(30, 40), refine=1)
    with pytest.raises(ValueError, match="hole_fraction"):
        realistic_particle(shape=(30, 40), hole_fraction=0.7)
    with pytest.raises(ValueError, match="stiffness"):
        realistic_particle(shape=(30, 40), stiffness="soft")
    with pytest.raises(ValueError, match="xray_factor"):
        realistic_particle(shape=(30, 40), xray_factor=2.5)


# -- the detector: correlation-based threshold, lattice test ---------------------------
def test_independent_samples_of_smoothed_white_noise():
    rng = np.random.default_rng(0)
    inner = np.ones((200, 200), bool)
    for sigma in (1.0, 2.0, 4.0):
        f = ndimage.gaussian_filter(rng.standard_normal((1, 200, 200)), (0, sigma, sigma))
        n = independent_samples(f, inner)
        # Gaussian correlation of length sqrt(2) sigma: A / (2 pi l^2) = A / (4 pi sigma^2)
        assert n == pytest.approx(inner.sum() / (4 * np.pi * sigma ** 2), rel=0.25)


def test_lattice_test_keeps_lattice_vectors_and_drops_the_rest():
    mask = platelet_mask((70, 100), kind="hexagon", fill=0.85)
    lat = [(1.0, 0.47)]
    rng = np.random.default_rng(1)
    noise = 3e-4 * rng.standard_normal((4,) + mask.shape)
    for b, angle, kept in [((0.0, 0.47), 0.0, True),        # c along [001]
                           ((0.47, 0.0), 0.0, False),       # c length, [100] direction
                           ((0.47, 0.0), None, True),       # direction unknown: length ok
                           ((0.2, 0.1), None, False)]:      # no lattice translation
        e = dislocation_strain(mask.shape, [(34.4, 51.7)], [b], pixel_size=5.0)
        e = np.where(mask, e + noise, np.nan)
        free = find_dislocations(e, 5.0)
        assert len(free) == 1                                # found without the test
        found, info = find_dislocations(e, 5.0, lattice=lat, crystal_angle=angle,
                                        full_output=True)
        assert len(found) == int(kept), (b, angle)
        assert info["off_lattice"].sum() == int(not kept)
        assert info["settings"]["lattice"] == [list(lat[0])]
    with pytest.raises(ValueError, match="lattice"):
        find_dislocations(e, 5.0, lattice=(1.0, -0.5))
    with pytest.raises(ValueError, match="lattice_tolerance"):
        find_dislocations(e, 5.0, lattice=lat, lattice_tolerance=2.0)


# -- Must show: 5 edge dislocations, noise 1e-3, 10 seeds; a clean particle: 0 ----------
@pytest.mark.parametrize("seed", range(10))
def test_dislocations_on_the_realistic_generator(seed):
    p = realistic_particle(shape=SMALL, n_dislocations=5, noise=1e-3, seed=seed)
    found = p.strain_field().find_dislocations()          # lattice of LixFePO4 by default
    pairs = _match(found, p, 3.0)
    assert len(pairs) >= 4 and len(found) - len(pairs) <= 1, (seed, len(pairs), len(found))
    # Burgers vectors, sign included, within their uncertainty (content noise s_b)
    s_b = find_dislocations(p.strain, p.pixel_size, full_output=True)[1]["content_noise"]
    for i, j in pairs:
        bt = p.burgers[i]
        err = np.hypot(found[j]["b_x"] - bt[0], found[j]["b_y"] - bt[1])
        assert err < 4 * s_b + 0.1 * np.hypot(*bt), (seed, err, s_b)
    clean = realistic_particle(shape=SMALL, n_dislocations=0, noise=1e-3, seed=seed)
    assert len(clean.strain_field().find_dislocations()) == 0


def test_no_false_cores_from_sharp_interfaces():
    """Sharp phase boundaries, little noise: the block-averaged field's small incompatibility
    at the interfaces makes peaks (the white-noise finder took 2-5 per seed, contents
    0.02-0.08 nm); the lattice test drops them, the cores stay."""
    for seed in range(3):
        p = realistic_particle(shape=SMALL, n_dislocations=5, noise=1e-4, interface_width=2.0,
                               seed=seed)
        found = p.strain_field().find_dislocations()
        pairs = _match(found, p, 3.0)
        assert len(pairs) == 5 and len(found) == 5, (seed, len(pairs), len(found))
        lat = [get_material(m).lattice[[0, 2]] / 10 for m in ("FePO4", "LiFePO4")]
        info = find_dislocations(p.strain, p.pixel_size, lattice=lat, full_output=True)[1]
        if seed == 1:
            assert info["off_lattice"].sum() >= 1      # what the lattice test removed


# -- Must show: C(X) with the defaults; reversed end members refused --------------------
# Measured, slope errors [100] / [001] in %, defaults (150 x 250 px, X-ray 4x, noise 2e-3):
# simulate seeds 0-9: 0.18/0.33, 0.00/0.14, -0.06/0.00, -0.01/0.07, 0.01/-0.07, -0.01/0.43,
# -0.03/0.00, 0.06/-0.19, 0.06/0.23, 0.16/-0.04; realistic seeds 0-9: 0.16/-0.31,
# -0.25/0.53, 0.06/0.05, 0.45/0.44, 0.27/-0.04, 0.45/0.13, 0.53/-0.26, -0.05/0.16,
# 0.00/0.39, 0.16/0.03. Seeds 1, 5 and 7 of the realistic generator were 0.75/1.92,
# 1.45/1.79, 1.39/1.68 before the resolution estimate left out the X-ray map's edge band
# (a cubic law at sigma 1.7 px beat the linear one there); they are kept here.
@pytest.mark.parametrize("make, seed", [("simulate", 0), ("realistic", 0), ("realistic", 1),
                                        ("realistic", 5), ("realistic", 7)])
def test_composition_dependent_stiffness_with_defaults(make, seed):
    if make == "simulate":
        p = make_particle(shape=(150, 250), stiffness="composition", blur_factor=4,
                          noise=2e-3, seed=seed)
    else:
        p = realistic_particle(shape=(150, 250), xray_factor=4, noise=2e-3, seed=seed)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, show_progressbar=False)
    assert list(law.metadata.Chemomech.law.settings.material) == ["FePO4", "LiFePO4"]
    err = law.vegard()["slopes"] / p.law.slopes - 1
    assert np.all(np.abs(err) < 0.01), err
    with pytest.raises(ValueError, match="lithiated"):
        strain.learn_eigenstrain(comp, material=("LiFePO4", "FePO4"))


def test_material_names():
    q0, q1 = resolve_stiffness("LixFePO4")
    np.testing.assert_array_equal(q0, resolve_stiffness("FePO4"))
    np.testing.assert_array_equal(q1, resolve_stiffness("LiFePO4"))
    assert np.ndim(resolve_stiffness("LiFePO4")) == 2             # homogeneous
    for bad in (("LiFePO4", "FePO4"), ("lfp", "FP"),
                (get_material("LiFePO4"), get_material("FePO4"))):
        with pytest.raises(ValueError, match="lithiated member"):
            resolve_stiffness(bad)


def test_make_particle_takes_the_solid_solution_by_name():
    a = make_particle(shape=(30, 40), material="LixFePO4", seed=1)
    b = make_particle(shape=(30, 40), material="LiFePO4", stiffness="composition", seed=1)
    np.testing.assert_array_equal(a.strain, b.strain)
    # the default is the package's default material, C(X)
    d = make_particle(shape=(30, 40), seed=1)
    np.testing.assert_array_equal(d.strain, a.strain)
    assert d.settings["stiffness"] == "composition"
    c = make_particle(shape=(30, 40), material="LiFePO4", seed=1)   # homogeneous LiFePO4
    assert c.settings["stiffness"] == "homogeneous"
    assert np.nanmax(np.abs(c.strain - b.strain)) > 1e-4
    with pytest.raises(ValueError, match="single material"):
        make_particle(shape=(30, 40), stiffness="homogeneous", seed=1)
    with pytest.raises(ValueError, match="stiffness"):
        make_particle(shape=(30, 40), stiffness="soft", seed=1)


def test_dislocations_in_the_residual_of_a_learned_law():
    """The whole chain on the second generator: law learned with defaults, residual's cores."""
    p = realistic_particle(shape=SMALL, n_dislocations=5, noise=1e-3, crystal_angle=0.3,
                           seed=0)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, crystal_angle=0.3, show_progressbar=False)
    found = strain.decompose(comp, law).residual.find_dislocations(crystal_angle=0.3)
    pairs = _match(found, p, 3.0)
    assert len(pairs) >= 4 and len(found) - len(pairs) <= 1, (len(pairs), len(found))


def test_learning_takes_the_lattice_for_its_nuisance_cores():
    from hyperspy_chemomech.learning import learn_law
    from hyperspy_chemomech.learning._nuisance import dislocation_fields
    from hyperspy_chemomech.mechanics import in_plane_lattice

    np.testing.assert_allclose(in_plane_lattice("LixFePO4"),
                               [[0.9821, 0.4788], [1.0332, 0.4692]])
    assert in_plane_lattice(np.eye(6)) is None
    p = make_particle(shape=(40, 60), pixel_size=5.0, seed=2)
    with pytest.raises(ValueError, match="dislocation_lattice"):
        learn_law(p.strain, p.X_observed, 5.0, resolve_stiffness("LiFePO4"),
                  dislocation_lattice=(1.0, -0.5))
    # a core whose content is no lattice translation is not fitted as a dislocation
    mask = platelet_mask((70, 100), kind="hexagon", fill=0.85)
    e = np.where(mask, dislocation_strain(mask.shape, [(34.4, 51.7)], [(0.2, 0.1)], 5.0),
                 np.nan)
    assert len(dislocation_fields(e, mask, 5.0)[0]) == 1
    assert len(dislocation_fields(e, mask, 5.0, lattice=in_plane_lattice("LixFePO4"))[0]) == 0


def test_resolution_estimate_leaves_out_the_xray_maps_edge():
    from hyperspy_chemomech.learning import learn_law
    from hyperspy_chemomech.learning._resolution import EDGE_BAND_MIN_KEPT, _edge_band_rows

    mask = platelet_mask((60, 90), kind="hexagon", fill=0.85)
    rows, n = _edge_band_rows(mask, 2.5)
    assert n == 3 and rows.sum() < mask.sum() and not (rows & ~mask).any()
    rows, n = _edge_band_rows(mask, 20.0)        # would leave too little: no band
    assert n == 0 and (rows == mask).all()
    assert EDGE_BAND_MIN_KEPT == 0.5
    p = make_particle(shape=(80, 120), noise=1e-3, blur_factor=4, seed=3)
    law = p.strain_field().learn_eigenstrain(p.composition_map(), show_progressbar=False)
    res = law.metadata.Chemomech.law.selection.resolution
    assert res.edge_band_px == 12                # 3 X-ray pixels of 4 px
    fit = learn_law(p.strain, p.X_observed, p.pixel_size, resolve_stiffness("LixFePO4"))
    assert fit.selection["resolution"]["edge_band_px"] == 0      # no X-ray pixel known
    small = make_particle(shape=(40, 64), noise=1e-3, blur_factor=4, seed=3)
    law = small.strain_field().learn_eigenstrain(small.composition_map(), show_progressbar=False)
    assert law.metadata.Chemomech.law.selection.resolution.edge_band_px == 0   # 27 % left
