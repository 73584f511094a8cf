"""Learning the eigenstrain law: exactness, the issue's synthetic cases, bad input."""

import functools

import numpy as np
import pytest

import hyperspy.api as hs

from hyperspy_chemomech.learning import LawBasis, learn_law
from hyperspy_chemomech.mechanics import resolve_stiffness
from hyperspy_chemomech.simulate import particle
from hyperspy_chemomech.simulate.particle import nonlinear_law

Q_LFP = resolve_stiffness("LiFePO4")
# the engine is given the homogeneous LiFePO4 stiffness (Q_LFP) here, so the particles
# are made with it (the simulator's default is the package's default material, C(X))
make_particle = functools.partial(particle.make_particle, material="LiFePO4")


def _curve_rms(fit, law):
    """RMS difference of learned and true curves over the observed range, up to a constant."""
    g = np.linspace(*fit.x_range, 60)
    d = fit.evaluate(g) - law(g)
    d -= d.mean(axis=1, keepdims=True)
    return np.sqrt(np.mean(d ** 2, axis=1))


# ---------------------------------------------------------------- bases
@pytest.mark.parametrize("kind,degree", [("legendre", 4), ("bspline", 5), ("bspline", 2),
                                         ("linear", 1)])
def test_bases_vanish_at_zero_and_differentiate(kind, degree):
    b = LawBasis(kind, degree)
    X = np.linspace(0.05, 0.95, 7)
    assert np.allclose(b(np.array([0.0])), 0.0)
    h = 1e-6
    num = (b(X + h) - b(X - h)) / (2 * h)
    assert np.allclose(num, b.derivative(X), atol=1e-6)
    assert b(np.array([np.nan])).shape == (degree, 1) and np.isnan(b(np.array([np.nan]))).all()


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("method", ["strain_gap", "equilibrium_gap"])
def test_noise_free_data_give_the_law_exactly(method):
    p = make_particle(shape=(60, 100), pixel_size=4.0, crystal_angle=0.4, seed=3)
    fit = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, crystal_angle=0.4,
                    degree=1, composition_resolution=0.0, method=method)
    np.testing.assert_allclose(fit.vegard["slopes"], p.law.slopes, rtol=2e-4)
    if method == "strain_gap":
        # the constant reference strain is recovered with the law
        np.testing.assert_allclose(fit.reference[:3], p.reference[:3], atol=1e-7)


def test_composition_dependent_stiffness():
    p = make_particle(shape=(80, 130), pixel_size=4.0, stiffness="composition", seed=5,
                      noise=5e-4)
    pair = resolve_stiffness(("FePO4", "LiFePO4"))
    good = learn_law(p.strain, p.X_observed, p.pixel_size, pair, degree=1,
                     composition_resolution=0.0)
    wrong = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, degree=1,
                      composition_resolution=0.0)
    err_good = np.abs(good.vegard["slopes"] / p.law.slopes - 1)
    err_wrong = np.abs(wrong.vegard["slopes"] / p.law.slopes - 1)
    assert np.all(err_good < 0.01), err_good
    assert err_wrong.max() > 3 * err_good.max()


# ---------------------------------------------------------------- the cases
@pytest.fixture(scope="module")
def vegard_case():
    """~150 x 250 px platelet, 4x coarser composition, noise 2e-3, five dislocations."""
    return make_particle(shape=(150, 250), noise=2e-3, n_dislocations=5, blur_factor=4,
                         seed=11)


def test_vegard_with_default_settings(vegard_case):
    p = vegard_case
    fit = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP)
    assert fit.sigma_source == "estimated"
    assert 1.0 < fit.sigma_px < 3.0  # 4x coarser map: box + bilinear ~ 2 px
    rel = fit.vegard["slopes"] / p.law.slopes - 1
    assert np.all(np.abs(rel) < 0.03), rel
    assert fit.linearity["tested"] and not fit.linearity["reject_linear_at_5pct"]
    ci = fit.vegard["ci95"]
    assert np.all(ci[:, 0] < ci[:, 1])


def test_strain_gap_beats_equilibrium_gap(vegard_case):
    p = vegard_case
    sg = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, degree=1)
    eg = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, degree=1,
                   method="equilibrium_gap")
    err_sg = np.abs(sg.vegard["slopes"] / p.law.slopes - 1)
    err_eg = np.abs(eg.vegard["slopes"] / p.law.slopes - 1)
    assert np.all(err_sg < err_eg), (err_sg, err_eg)


@pytest.mark.parametrize("blur,limit", [(4, 2.5e-3), (1, 1e-3)])
def test_nonlinear_law(blur, limit):
    p = make_particle(shape=(150, 250), noise=2e-3, n_dislocations=5, blur_factor=blur,
                      seed=12, law="nonlinear")
    fit = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP)
    assert np.all(_curve_rms(fit, p.law) <= limit), _curve_rms(fit, p.law)
    assert fit.linearity["reject_linear_at_5pct"]


def test_missing_strain_pixels_are_left_out():
    p = make_particle(shape=(70, 120), pixel_size=4.0, noise=1e-3, seed=4)
    strain = p.strain.copy()
    rng = np.random.default_rng(0)
    holes = p.mask & (rng.random(p.mask.shape) < 0.08)
    strain[:, holes] = np.nan
    before = strain.copy()
    fit = learn_law(strain, p.X_observed, p.pixel_size, Q_LFP, degree=1,
                    composition_resolution=0.0)
    np.testing.assert_array_equal(strain, before)  # input untouched
    np.testing.assert_allclose(fit.vegard["slopes"], p.law.slopes, rtol=0.02)


def test_monotonic_constraint():
    def wiggly(X):
        X = np.asarray(X, float)
        base = nonlinear_law(slopes=(0.05, -0.02), curvature=(0.03, 0.0))(X)
        return base

    p = make_particle(shape=(70, 120), pixel_size=4.0, law=wiggly, composition="smooth",
                      seed=2, noise=2e-4)
    free = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, basis="bspline", degree=5,
                     composition_resolution=0.0)
    mono = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, basis="bspline", degree=5,
                     composition_resolution=0.0, monotonic=True)
    g = np.linspace(*mono.x_range, 200)
    assert np.any(np.diff(free.evaluate(g)[0]) < 0)  # the truth is not monotonic
    assert np.all(np.diff(mono.evaluate(g)[0]) >= -1e-12)
    assert np.all(np.diff(mono.evaluate(g)[1]) <= 1e-12)


# ---------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small():
    return make_particle(shape=(40, 70), pixel_size=4.0, seed=1)


def test_composition_outside_unit_interval_is_an_error(small):
    X = small.X_observed.copy()
    X[small.mask] *= 1.2
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        learn_law(small.strain, X, 4.0, Q_LFP, degree=1)


def test_grid_mismatch_and_narrow_range(small):
    with pytest.raises(ValueError, match="grid"):
        learn_law(small.strain, small.X_observed[:, :-1], 4.0, Q_LFP)
    narrow = np.where(small.mask, 0.5 + 0.01 * small.X_observed, np.nan)
    with pytest.raises(ValueError, match="too narrow"):
        learn_law(small.strain, narrow, 4.0, Q_LFP)
    with pytest.raises(ValueError, match="shape"):
        learn_law(small.strain[:3], small.X_observed, 4.0, Q_LFP)
    mask = small.mask.copy()
    X = small.X_observed.copy()
    X[np.argwhere(mask)[0][0], np.argwhere(mask)[0][1]] = np.nan
    with pytest.raises(ValueError, match="NaN at 1 pixel"):
        learn_law(small.strain, X, 4.0, Q_LFP, mask=mask)
    with pytest.raises(ValueError, match="method"):
        learn_law(small.strain, small.X_observed, 4.0, Q_LFP, method="magic")
    with pytest.raises(ValueError, match="monotonic"):
        learn_law(small.strain, small.X_observed, 4.0, Q_LFP, monotonic=True)


@pytest.mark.parametrize("kw,match", [
    (dict(method="magic"), "method"), (dict(boundary="open"), "boundary"),
    (dict(selection="aic"), "selection"), (dict(uncertainty="guess"), "uncertainty"),
    (dict(dislocations="maybe"), "dislocations"), (dict(basis="fourier"), "basis"),
    (dict(basis="bspline"), "nested basis"), (dict(monotonic=True), "monotonic"),
])
def test_bad_options_are_named_before_any_mechanics(small, kw, match, monkeypatch):
    """Every option is checked when the options are packed, before a solver is built."""
    from hyperspy_chemomech import mechanics

    def no_solver(*args, **kwargs):
        pytest.fail("a solver was built before the options were checked")

    monkeypatch.setattr(mechanics, "get_solver", no_solver)
    with pytest.raises(ValueError, match=match):
        learn_law(small.strain, small.X_observed, small.pixel_size, Q_LFP, **kw)


# ---------------------------------------------------------------- HyperSpy face
def test_signal_api_round_trip(tmp_path):
    p = make_particle(shape=(60, 100), pixel_size=5.0, blur_factor=3, noise=5e-4, seed=8)
    strain, comp = p.strain_field(), p.composition_map()
    data_before = strain.data.copy()
    law = strain.learn_eigenstrain(comp, degree=1)
    np.testing.assert_array_equal(strain.data, data_before)
    assert type(law).__name__ == "EigenstrainLaw"
    info = law.metadata.Chemomech.law
    # the X-ray pixel size recorded by the registration bounds the blur from below
    assert "registration" in info.resolution_source
    assert info.resolution_sigma_px >= 0.85 * 0.5 * 15.0 / 5.0 - 1e-9
    assert law.evaluate([0.0, 0.5, 1.0]).shape == (2, 3)
    np.testing.assert_allclose(law.evaluate([0.0]), 0.0, atol=1e-15)
    v = law.vegard()
    np.testing.assert_allclose(v["slopes"], p.law.slopes, rtol=0.03)
    law.save(tmp_path / "law.hspy")
    back = hs.load(tmp_path / "law.hspy")
    assert type(back).__name__ == "EigenstrainLaw"
    np.testing.assert_allclose(back.evaluate([0.3, 0.7]), law.evaluate([0.3, 0.7]))
    np.testing.assert_allclose(back.vegard()["ci95"], v["ci95"])
    fig = law.plot()
    assert len(fig.axes) >= 2
    conv = law.relative_to_end_member(0.5)
    scale = 1 + law.evaluate([0.5])[:, 0]
    np.testing.assert_allclose(conv.vegard()["slopes"], v["slopes"] * scale)
    np.testing.assert_allclose(law.vegard()["slopes"], v["slopes"])  # original untouched


def test_signal_api_rejects_mismatched_calibration():
    p = make_particle(shape=(40, 70), pixel_size=4.0, seed=1)
    strain, comp = p.strain_field(), p.composition_map()
    comp.axes_manager.signal_axes[0].scale = 5.0
    with pytest.raises(ValueError, match="pixel size"):
        strain.learn_eigenstrain(comp)


def test_rotate_basis_round_trip_and_invariants():
    p = make_particle(shape=(30, 50), pixel_size=4.0, seed=1, noise=1e-3)
    s = p.strain_field()
    r = s.rotate_basis(0.3)
    np.testing.assert_allclose(r.theta.data, s.theta.data)            # rotation unchanged
    np.testing.assert_allclose(r.e11.data + r.e22.data, s.e11.data + s.e22.data)  # trace
    back = r.rotate_basis(-0.3)
    np.testing.assert_allclose(back.data, s.data, atol=1e-15)
    assert back.metadata.Chemomech.basis.angle == pytest.approx(0.0)
    # a pure shear e12 = g along x, y is normal strain +-g along the diagonals
    g = np.zeros((4, 3, 3))
    g[2] = 0.01
    from hyperspy_chemomech.signals import StrainField

    d = StrainField.from_components(*g).rotate_basis(np.pi / 4)
    np.testing.assert_allclose(d.e11.data, 0.01, atol=1e-15)
    np.testing.assert_allclose(d.e22.data, -0.01, atol=1e-15)
    np.testing.assert_allclose(d.e12.data, 0.0, atol=1e-15)


def test_block_bootstrap_and_jackknife_agree_roughly(vegard_case):
    p = vegard_case
    kw = dict(degree=1, composition_resolution=2.0 * 2.3548 * p.pixel_size)
    jk = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, **kw)
    bs = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, uncertainty="bootstrap", **kw)
    np.testing.assert_allclose(bs.vegard["slopes"], jk.vegard["slopes"])  # same estimate
    ratio = bs.vegard["stderr"] / jk.vegard["stderr"]
    assert np.all((ratio > 0.4) & (ratio < 2.5)), ratio
    # both wider than the white-noise formula, which ignores spatial correlation. The
    # fit runs on rows pooled 2 x 2 (sigma = 2 px), which already removes a factor 2
    # of the oversampling the white formula would count as independent data.
    white = np.sqrt(np.diag(jk.covariance_white))[[0, 1]] * 2  # legendre phi_1 = 2X
    assert np.all(jk.vegard["stderr"] > 1.5 * white)
    with pytest.raises(ValueError, match="uncertainty"):
        learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, uncertainty="guess")


def _window(p, half):
    """A field of view inside the particle: its edges are cuts, not free surfaces."""
    ys, xs = np.nonzero(p.mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    win = (slice(cy - half[0], cy + half[0]), slice(cx - half[1], cx + half[1]))
    assert p.mask[win].all()
    return p.strain[(slice(None),) + win], p.X_observed[win]


@pytest.mark.parametrize("seed", [0, 1])
def test_dirichlet_boundary_for_a_window_that_cuts_the_particle(seed):
    p = make_particle(shape=(100, 160), noise=1e-3, n_dislocations=0, blur_factor=1, seed=seed)
    S, X = _window(p, (22, 45))
    before = S.copy()
    kw = dict(degree=1, composition_resolution=0.0)
    free = learn_law(S, X, p.pixel_size, Q_LFP, boundary="free", **kw)
    held = learn_law(S, X, p.pixel_size, Q_LFP, boundary="dirichlet", **kw)
    np.testing.assert_array_equal(S, before)
    # traction-free edges where the particle goes on are wrong: biased by several %
    assert np.max(np.abs(free.vegard["slopes"] / p.law.slopes - 1)) > 0.03
    np.testing.assert_allclose(held.vegard["slopes"], p.law.slopes, rtol=0.01)
    assert held.settings["boundary"] == "dirichlet"


def test_dirichlet_window_with_blur_and_dislocations():
    p = make_particle(shape=(150, 250), noise=2e-3, n_dislocations=5, blur_factor=4, seed=0)
    S, X = _window(p, (35, 70))
    fit = learn_law(S, X, p.pixel_size, Q_LFP, boundary="dirichlet")
    rel = fit.vegard["slopes"] / p.law.slopes - 1
    assert np.all(np.abs(rel) < 0.05), rel
    lo, hi = np.sort(fit.vegard["ci95"], axis=1).T
    assert np.all((lo <= p.law.slopes) & (p.law.slopes <= hi)), (fit.vegard["ci95"], p.law.slopes)
    with pytest.raises(ValueError, match="boundary"):
        from hyperspy_chemomech.mechanics import get_solver

        s = get_solver(np.isfinite(X), p.pixel_size, Q_LFP, boundary="free")
        learn_law(S, X, p.pixel_size, Q_LFP, boundary="dirichlet", solver=s)


def test_shear_component_and_rotated_crystal():
    slopes = np.array([0.05, -0.02, 0.01])  # [100], [001], tensor shear per unit X

    def law(X):
        X = np.asarray(X, float)
        return slopes.reshape((-1,) + (1,) * X.ndim) * X

    law.slopes = slopes
    p = make_particle(shape=(70, 120), pixel_size=4.0, noise=2e-4, law=law, crystal_angle=0.3,
                      blur_factor=1, seed=3)
    fit = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, crystal_angle=0.3, shear=True,
                    degree=1, composition_resolution=0.0)
    assert fit.n_components == 3
    np.testing.assert_allclose(fit.vegard["slopes"], slopes, rtol=0.02)
    # without the shear component the fit cannot explain the data as well
    two = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, crystal_angle=0.3, degree=1,
                    composition_resolution=0.0)
    assert np.all(two.noise >= fit.noise) and np.any(two.noise > 1.5 * fit.noise)


@pytest.mark.parametrize("kw", [dict(basis="linear"), dict(selection="bic"),
                                dict(basis="bspline", degree=3), dict(use_rotation=False)])
def test_other_bases_and_options_recover_vegard(kw):
    p = make_particle(shape=(70, 120), pixel_size=4.0, noise=5e-4, blur_factor=1, seed=5)
    fit = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, composition_resolution=0.0, **kw)
    np.testing.assert_allclose(fit.vegard["slopes"], p.law.slopes, rtol=0.02)
    np.testing.assert_allclose(fit.evaluate([0.0]), 0.0, atol=1e-12)


def test_plane_strain_particle_needs_plane_strain_stiffness():
    p = make_particle(shape=(70, 120), pixel_size=4.0, noise=2e-4, blur_factor=1, seed=6,
                      plane="strain")
    kw = dict(degree=1, composition_resolution=0.0)
    right = learn_law(p.strain, p.X_observed, p.pixel_size,
                      resolve_stiffness("LiFePO4", plane="strain"), **kw)
    wrong = learn_law(p.strain, p.X_observed, p.pixel_size, Q_LFP, **kw)  # plane stress
    err_right = np.max(np.abs(right.vegard["slopes"] / p.law.slopes - 1))
    err_wrong = np.max(np.abs(wrong.vegard["slopes"] / p.law.slopes - 1))
    assert err_right < 0.003 and err_wrong > 3 * err_right, (err_right, err_wrong)


def test_lazy_strain_field_learns_the_same_law():
    p = make_particle(shape=(60, 100), pixel_size=5.0, noise=5e-4, blur_factor=1, seed=8)
    strain, comp = p.strain_field(), p.composition_map()
    eager = strain.learn_eigenstrain(comp, degree=1, composition_resolution=0.0)
    lazy = strain.as_lazy().learn_eigenstrain(comp.as_lazy(), degree=1, composition_resolution=0.0)
    np.testing.assert_allclose(lazy.vegard()["slopes"], eager.vegard()["slopes"], rtol=1e-10)


def test_strain_variance_weights_the_fit():
    """Half the map five times noisier: weights 1/variance halve the standard errors."""
    from hyperspy_chemomech.signals import StrainField

    err, se = {True: [], False: []}, {True: [], False: []}
    for seed in range(3):
        p = make_particle(shape=(70, 120), pixel_size=4.0, noise=5e-4, n_dislocations=0,
                          blur_factor=1, seed=seed)
        rng = np.random.default_rng(100 + seed)
        sd = np.where(np.arange(120) > 60, 5e-3, 5e-4) * np.ones((70, 1))
        strain = p.strain + rng.normal(size=p.strain.shape) * np.sqrt(sd ** 2 - 5e-4 ** 2)
        var = np.broadcast_to(sd ** 2, strain.shape).copy()
        for weighted in (True, False):
            s = StrainField.from_components(*strain, scale=4.0, units="nm",
                                            variance=var if weighted else None)
            v = s.learn_eigenstrain(p.composition_map(), material="LiFePO4", degree=1,
                                    composition_resolution=0.0).vegard()
            err[weighted].append(v["slopes"] / p.law.slopes - 1)
            se[weighted].append(v["stderr"] / np.abs(p.law.slopes))
    assert np.all(np.array(se[True]) < 0.7 * np.array(se[False]))
    assert np.sqrt(np.mean(np.square(err[True]))) < np.sqrt(np.mean(np.square(err[False])))
    assert np.all(np.abs(err[True]) < 0.005)
    bad = StrainField.from_components(*strain, scale=4.0, units="nm")
    bad.metadata.set_item("Signal.Noise_properties.variance", np.ones((3, 70, 120)))
    with pytest.raises(ValueError, match="variance has shape"):
        bad.learn_eigenstrain(p.composition_map(), degree=1)


def test_held_edge_warns_only_for_a_particle_wholly_in_view():
    import warnings

    from hyperspy_chemomech.learning._inputs import warn_held_edge_on_whole_particle

    inside = np.zeros((40, 60), bool)
    inside[5:35, 8:50] = True
    with pytest.warns(UserWarning, match="wholly inside the map"):
        assert warn_held_edge_on_whole_particle(inside)
    cut = inside.copy()
    cut[5:35, 8:] = True   # the window cuts the particle: the held edge is its physics
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_held_edge_on_whole_particle(cut)


def test_law_band_one_contract_for_fit_and_signal():
    from hyperspy_chemomech.simulate import make_particle

    p = make_particle(shape=(40, 60), noise=1e-4)
    law = p.strain_field().learn_eigenstrain(p.composition_map(), degree=1, material="LiFePO4",
                                             show_progressbar=False)
    # the band on the grid is the one stored at fit time (same function, same numbers)
    np.testing.assert_allclose(law.band(), law.metadata.Chemomech.law.band95, rtol=1e-12)
    X = np.array([0.2, np.nan, 0.7])
    before = X.copy()
    b = law.band(X, level=0.68)
    assert np.isnan(b[:, 1]).all() and np.all(b[:, [0, 2]] < law.band(X)[:, [0, 2]])
    np.testing.assert_array_equal(X, before)
    with pytest.raises(ValueError, match=r"X must lie in \[0, 1\]"):
        law.band([1.5])
    with pytest.raises(ValueError, match="level"):
        law.band(level=1.2)
