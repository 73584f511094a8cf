"""Composition and registration errors carried into the law (issue 18).

The resampled composition keeps its uncertainty and records how it was made;
the SIMEX extrapolation is the line through its levels; the end-to-end chain
records which error sources entered the band and corrects the slopes by the
extrapolation of its own draws (the coverage study is
benchmarks/learning_uncertainty.py).
"""

import numpy as np
import pytest

from hyperspy_chemomech.learning import CompositionErrors, ErrorPropagationOptions
from hyperspy_chemomech.learning._composition_errors import extrapolation_weights


def _composition(shape=(20, 24), scale=20.0, sigma=0.03):
    from hyperspy_chemomech.signals.composition_map import make_composition_map

    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    mask = (yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < (0.4 * min(shape)) ** 2
    X = np.clip(0.5 + 0.4 * np.sin(xx / 4.0), 0, 1)
    t = np.stack([1 - X, X], axis=-1) * 50.0
    cov = np.zeros(shape + (3,))
    cov[..., 0] = cov[..., 2] = 1.0
    axes = [{"size": shape[1], "scale": scale, "units": "nm", "name": "x", "navigate": True},
            {"size": shape[0], "scale": scale, "units": "nm", "name": "y", "navigate": True}]
    from hyperspy.axes import UniformDataAxis

    nav = [UniformDataAxis(**a) for a in axes]
    return make_composition_map(X, nav, mask, thickness=t.sum(-1),
                                uncertainty=np.where(mask, sigma, np.nan), residual=X * 0,
                                coefficients=t, coefficient_covariance=cov)


def _target(shape=(70, 90), scale=5.0):
    from hyperspy.signals import Signal2D

    s = Signal2D(np.zeros(shape))
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = scale, "nm"
    return s


def test_apply_carries_uncertainty_and_mask():
    from hyperspy_chemomech import CorrelativeTransform

    comp = _composition()
    before = {k: np.array(v) for k, v in
              comp.metadata.Chemomech.composition_maps.as_dictionary().items()}
    tr = CorrelativeTransform.from_parameters(rotation=20.0, shift=(10.0, -5.0),
                                              center=(240.0, 200.0))
    onto = _target()
    out = tr.apply(comp, onto=onto)
    shape = onto.data.shape
    assert out.uncertainty.data.shape == shape  # kept, and the stored arrays fit the new grid
    assert out.particle_mask.shape == shape and out.particle_mask.dtype == bool
    assert out.coefficients.data.shape[-2:] == shape or out.coefficients.data.shape[:2] == shape
    unc = out.uncertainty.data
    inside = out.particle_mask & np.isfinite(unc)
    assert inside.sum() > 100
    np.testing.assert_allclose(unc[inside], 0.03, rtol=1e-9)  # a constant sigma stays one
    # the mask lies where X is
    assert np.isfinite(np.asarray(out.data))[out.particle_mask].mean() > 0.95
    # the X-ray grid, its sigma and X are recorded so the bootstrap can redraw there
    reg = out.metadata.Chemomech.registration
    assert tuple(reg.source_shape) == comp.data.shape
    np.testing.assert_array_equal(reg.source_uncertainty, before["uncertainty"])
    np.testing.assert_array_equal(reg.source_composition, comp.data)
    # the user's map is untouched
    for k, v in comp.metadata.Chemomech.composition_maps.as_dictionary().items():
        np.testing.assert_array_equal(np.asarray(v), before[k])


def test_auto_error_model_redraws_through_the_unmixing():
    from hyperspy_chemomech import CorrelativeTransform
    from hyperspy_chemomech.signals._composition_errors import error_model

    comp = _composition()
    A = np.array([[1.0, 0.2], [0.3, 1.0], [0.5, 0.5]])
    comp.metadata.set_item("Chemomech.composition_map.reference_spectra", A.T)
    comp.metadata.set_item("Chemomech.composition_map.method", "nnls")
    tr = CorrelativeTransform.from_parameters(rotation=10.0)
    onto = _target(shape=(90, 100))
    out = tr.apply(comp, onto=onto)
    model = error_model(out, "auto", onto)
    assert isinstance(model, CompositionErrors) and model.source_draw is not None
    rng = np.random.default_rng(0)
    e = model.source_draw(rng, 200, 1.0)
    mask = comp.particle_mask
    assert np.isnan(e[:, ~mask]).all()
    # X = t1 / (t0 + t1) with Cov(t) = I: the delta method gives sigma(X)
    t = np.asarray(comp.metadata.Chemomech.composition_maps.coefficients)[mask]
    s = t.sum(-1)
    sd = np.sqrt((t[:, 0] ** 2 + t[:, 1] ** 2)) / s ** 2
    np.testing.assert_allclose(np.nanstd(e[:, mask], axis=0).mean(), sd.mean(), rtol=0.1)
    on_strain = model.draw("composition", rng, 2, onto.data.shape, 1.0)
    assert on_strain.shape == (2,) + onto.data.shape and np.isfinite(on_strain).all()
    assert error_model(out, None, onto) is None
    with pytest.raises(ValueError, match="composition_uncertainty"):
        error_model(out, "bootstrap", onto)


def test_extrapolation_is_the_line_through_the_levels():
    for levels in [(1.0,), (1.0, 2.0), (0.5, 1.0, 1.5, 2.0)]:
        w = extrapolation_weights(levels)
        lam = np.r_[0.0, levels]
        for a, b in [(1.0, 0.0), (0.3, -0.7), (2.0, 5.0)]:
            assert np.isclose(w @ (a + b * lam), a - b)  # theta(lambda = -1)
    np.testing.assert_allclose(extrapolation_weights((1.0,)), [2.0, -1.0])


def test_bad_error_models_are_refused():
    with pytest.raises(ValueError, match="negative"):
        CompositionErrors(np.full((4, 4), -0.1))
    with pytest.raises(ValueError, match="2D"):
        CompositionErrors(np.ones(5))
    with pytest.raises(ValueError, match="no finite"):
        CompositionErrors(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="6 x 6"):
        CompositionErrors(np.ones((3, 3)), matrix_covariance=np.eye(4))
    with pytest.raises(ValueError, match="levels"):
        ErrorPropagationOptions(levels=(0.0,))
    with pytest.raises(ValueError, match="n_draws"):
        ErrorPropagationOptions(n_draws=1)
    with pytest.raises(ValueError, match="resolution"):
        ErrorPropagationOptions(resolution="fixed")


def test_learn_law_refuses_a_mismatched_uncertainty_map():
    from hyperspy_chemomech.learning import learn_law
    from hyperspy_chemomech.mechanics import resolve_stiffness
    from hyperspy_chemomech.simulate.particle import make_particle

    p = make_particle(shape=(40, 60), seed=1)
    with pytest.raises(ValueError, match="uncertainty map has shape"):
        learn_law(p.strain, p.X_observed, p.pixel_size, resolve_stiffness("LiFePO4"),
                  degree=1, composition_uncertainty=np.ones((3, 3)))


@pytest.fixture(scope="module")
def low_dose_chain():
    """The demo chain at a tenth of the demo's X-ray dose (two seeds)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from learning_uncertainty import chain

    return [chain(seed, 1e3) for seed in (3, 4)]


def test_end_to_end_band_records_its_sources_and_corrects(low_dose_chain):
    import hyperspy_chemomech.learning._composition_errors as ce

    for c, comp, strain, cs in low_dose_chain:
        plain = strain.learn_eigenstrain(cs, composition_uncertainty=None,
                                         show_progressbar=False).vegard()
        seen = {}
        orig = ce.propagate

        def spy(*a, **k):
            seen["prop"] = orig(*a, **k)
            return seen["prop"]

        ce_prop, ce.propagate = ce.propagate, spy
        import hyperspy_chemomech.learning._learn as learn_mod

        learn_prop, learn_mod.propagate = learn_mod.propagate, spy
        try:
            law = strain.learn_eigenstrain(cs, show_progressbar=False)
        finally:
            ce.propagate, learn_mod.propagate = ce_prop, learn_prop
        v = law.vegard()
        # the fit without propagation is the naive estimate of the fit with it
        np.testing.assert_allclose(v["slopes_uncorrected"], plain["slopes"], rtol=1e-10)
        np.testing.assert_allclose(v["stderr_uncorrected"], plain["stderr"], rtol=1e-10)
        assert any(s.startswith("composition") for s in v["error_sources"])
        # the registration's covariance (from the polish) came along with the map
        cov = np.asarray(cs.metadata.Chemomech.registration.transform_covariance)
        assert cov.shape == (6, 6) and np.all(np.linalg.eigvalsh(cov) > -1e-12)
        assert np.all(np.diag(cov) > 0)
        assert law.metadata.Chemomech.law.errors.sources == ["composition", "registration"]
        assert any(s.startswith("registration") for s in v["error_sources"])
        assert np.all(v["stderr_by_source"]["registration"] >= 0)
        assert law.metadata.Chemomech.law.errors.resolution == "estimated"
        assert law.metadata.Chemomech.law.errors.below_floor
        assert law.metadata.Chemomech.law.errors.n_draws.as_dictionary() == {
            "composition": 4, "registration": 2}
        share = v["stderr_by_source"]["composition"]
        assert np.all(share > 0) and np.all(share < 2 * v["stderr"])
        # intervals widened by the correction's own uncertainty, never narrowed
        assert np.all(v["stderr"] >= v["stderr_uncorrected"] * (1 - 1e-12))
        # the correction is the extrapolation of its own draws, nothing else
        vg = seen["prop"]["vegard"]
        np.testing.assert_allclose(v["slopes"], vg["corrected"])
        assert not np.allclose(vg["corrected"], vg["naive"])
        assert "composition errors" in law.metadata.Chemomech.law.selection.timings_s


def test_resolution_term_is_the_slopes_sensitivity_times_the_sigma_spread(low_dose_chain):
    """The estimated resolution's share of the band is |d slope / d sigma| x SD(sigma):
    the fit's band against the same fit with the resolution given at its estimate,
    the sensitivity by refits at sigma -+ 0.25 px; SD(sigma) is the block bootstrap's
    (the degree chosen again in each replicate) and the spread of the Gaussian-equivalent
    width across data sets (PSF_WIDTH_SPREAD)."""
    from hyperspy_chemomech.fields import FWHM_PER_SIGMA
    from hyperspy_chemomech.learning._resolution import PSF_WIDTH_SPREAD

    for c, comp, strain, cs in low_dose_chain:
        law = strain.learn_eigenstrain(cs, composition_uncertainty=None, show_progressbar=False)
        md = law.metadata.Chemomech.law
        res = md.selection.resolution
        sigma, sd = float(md.resolution_sigma_px), float(res.sd_px)
        assert md.resolution_source.startswith("estimated")
        np.testing.assert_allclose(sd, np.hypot(res.sd_bootstrap_px, PSF_WIDTH_SPREAD * sigma))
        assert 0 <= res.degree_switch_fraction <= 1 and res.sd_bootstrap_px > 0
        kw = dict(composition_uncertainty=None, show_progressbar=False, degree=int(md.degree),
                  block_size=int(md.settings.block_size_px))
        fwhm_nm = FWHM_PER_SIGMA * float(md.settings.pixel_size_nm)

        def at(s):
            return strain.learn_eigenstrain(cs, composition_resolution=s * fwhm_nm, **kw).vegard()

        h = 0.25
        J = (at(sigma + h)["slopes"] - at(sigma - h)["slopes"]) / (2 * h)
        se, se_held = law.vegard()["stderr"], at(sigma)["stderr"]
        assert np.all(se > se_held)
        np.testing.assert_allclose(np.sqrt(se ** 2 - se_held ** 2), np.abs(J) * sd, rtol=0.15)


def _tradeoff_profiles(gap, seed=0):
    """Block loss profiles (sigma, degree, block) of two degrees whose best sigmas differ
    (2.8 and 2.2 px: curvature trades against blur); the second's held-out loss lower by
    ``gap`` per row."""
    rng = np.random.default_rng(seed)
    sig = np.array([1.5, 2.0, 2.5, 3.0, 3.5])
    G, F = 40, 5
    counts = np.full(G, 100.0)
    onehot = (np.arange(G)[:, None] % F == np.arange(F)).astype(float)
    shift = 0.5 * rng.standard_normal(G)  # where each block's loss is least
    loss = 0.1 * (sig[:, None, None] - np.array([2.8, 2.2])[None, :, None] - shift) ** 2 + 1
    cv = loss + 0.01 + 0.02 * rng.standard_normal((1, 2, G)) - np.array([0.0, gap])[:, None]
    return sig, loss * counts, cv * counts, counts, onehot


def test_resolution_bootstrap_chooses_the_degree_again():
    """Where the held-out losses cannot tell two degrees apart, the estimate jumps with
    the degree chosen: each bootstrap replicate chooses it again, and the spread is the
    jump's, several times that of sigma at one degree; where one degree clearly wins
    (or only one is tried) the spread is that of sigma alone."""
    from hyperspy_chemomech.learning._resolution import _block_bootstrap

    tied, k = _block_bootstrap(*_tradeoff_profiles(0.002), 300, 0)
    assert 0.2 < np.mean(k == 1) < 0.8
    held = max(tied[k == j].std(ddof=1) for j in (0, 1))
    assert held < 0.1 and 0.2 < tied.std(ddof=1) < 0.45 and tied.std(ddof=1) > 3 * held
    clear, k = _block_bootstrap(*_tradeoff_profiles(0.05), 300, 0)
    assert np.all(k == 1) and clear.std(ddof=1) < 0.1
    sig, loss, cv, counts, onehot = _tradeoff_profiles(0.002)
    one, k = _block_bootstrap(sig, loss[:, :1], cv[:, :1], counts, onehot, 300, 0)
    assert np.all(k == 0) and one.std(ddof=1) < 0.1


def test_resolution_bootstrap_on_a_boundary_piles_up():
    """Where the data would put sigma below a floor, the replicates of the bounded
    estimate pile up on it (their spread 0, whatever the data say); those of the
    estimator free of it spread as the blocks do."""
    from hyperspy_chemomech.learning._resolution import _block_bootstrap

    rng = np.random.default_rng(1)
    sig = np.array([0.0, 0.5, 1.0, 1.35, 1.7, 2.0, 2.5, 3.0])
    G, F = 40, 5
    counts = np.full(G, 100.0)
    onehot = (np.arange(G)[:, None] % F == np.arange(F)).astype(float)
    best = 1.0 + 0.6 * rng.standard_normal(G)  # each block's least loss, below the floor 1.7
    loss = (0.1 * (sig[:, None] - best) ** 2 + 1)[:, None, :] * counts
    cv = loss + 0.01 * counts
    bounded, _ = _block_bootstrap(sig[4:], loss[4:], cv[4:], counts, onehot, 300, 0)
    free, _ = _block_bootstrap(sig, loss, cv, counts, onehot, 300, 0)
    assert np.all(bounded == sig[4])
    assert 0.05 < free.std(ddof=1) < 0.2 and abs(free.mean() - best.mean()) < 0.2


def test_resolution_bootstrap_is_free_of_the_floor(low_dose_chain, monkeypatch):
    """With the X-ray pixel known its floor bounds the estimate; the block bootstrap is
    that of the estimator free of it (the candidates below it down to 0 added), which
    moves the spread only: the estimate, its degree and the fit are those without."""
    import hyperspy_chemomech.learning._resolution as res_mod

    grids = []
    orig = res_mod._block_bootstrap

    def spy(sig, *a):
        grids.append(np.array(sig))
        return orig(sig, *a)

    monkeypatch.setattr(res_mod, "_block_bootstrap", spy)
    for c, comp, strain, cs in low_dose_chain[:1]:
        law = strain.learn_eigenstrain(cs, composition_uncertainty=None, show_progressbar=False)
        md = law.metadata.Chemomech.law
        res = md.selection.resolution
        floor = float(np.min(res.sigma_px))
        assert "lower bound" in md.resolution_source and res.bootstrap_below_floor
        np.testing.assert_allclose(grids[-1], np.r_[res_mod.below_floor_sigmas([floor]),
                                                    np.asarray(res.sigma_px)])
        assert grids[-1][0] == 0 and float(md.resolution_sigma_px) >= floor
        monkeypatch.setattr(res_mod, "BELOW_FLOOR_FACTORS", ())
        without = strain.learn_eigenstrain(cs, composition_uncertainty=None,
                                           show_progressbar=False)
        mw = without.metadata.Chemomech.law
        assert not mw.selection.resolution.bootstrap_below_floor
        assert float(mw.resolution_sigma_px) == float(md.resolution_sigma_px)
        assert int(mw.degree) == int(md.degree)
        np.testing.assert_allclose(without.vegard()["slopes"], law.vegard()["slopes"],
                                   rtol=1e-12)


def _two_phase_model(shape=(24, 26)):
    """Coefficient maps (ny, nx, 2) of a particle with a phase boundary, and references."""
    from scipy import ndimage

    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    body = ndimage.gaussian_filter(((yy - 12) ** 2 + (xx - 13) ** 2 < 81).astype(float), 1.0)
    lith = ndimage.gaussian_filter((xx > 13).astype(float), 1.0)
    t = np.stack([body * (1 - lith), body * lith], axis=-1) * 60.0
    e = np.linspace(0, 1, 12)
    A = np.stack([0.010 + 0.004 * e, 0.012 + 0.006 * np.exp(-((e - 0.4) / 0.1) ** 2)], axis=1)
    return t, A


def test_drift_redraw_is_the_joint_fit_linearised():
    """The drift estimate's error in the draws is the Gauss-Newton step of the joint
    drift + unmixing fit for the drawn noise; against frame 0 every frame moves by
    that frame's error (its own step is then zero)."""
    from hyperspy_chemomech.signals._composition_errors import _drift_linearised
    from hyperspy_chemomech.spectra import apply_energy_drift
    from hyperspy_chemomech.spectra._energy_alignment import _joint_step

    t, A = _two_phase_model()
    model = t @ A.T
    rng = np.random.default_rng(2)
    free, ref0 = _drift_linearised(t, A), _drift_linearised(t, A, reference=0)
    pinv = np.linalg.pinv(A)
    a, b = [], []
    for _ in range(6):
        e = 0.005 * rng.standard_normal(model.shape)  # small: the linear regime
        step = _joint_step(model + e, A, pinv)[0]
        a.append(np.nan_to_num(apply_energy_drift(model + e, step, 3) - model)[4:-4, 4:-4] - e[4:-4, 4:-4])
        b.append((free(e) - e)[4:-4, 4:-4])
        # against frame 0: frame 0 is not moved, the others by their step less frame 0's
        d0 = ref0(e) - e
        assert np.abs(d0[..., 0]).max() < 1e-12 * np.abs(model).max() + 1e-15
        assert np.abs(b[-1]).max() > 10 * np.abs(d0[4:-4, 4:-4, 0]).max()
    a, b = np.array(a), np.array(b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9
    np.testing.assert_allclose(np.sqrt(np.mean(b ** 2)), np.sqrt(np.mean(a ** 2)), rtol=0.2)


def test_antithetic_draws_come_in_negated_pairs():
    model = CompositionErrors(np.full((5, 6), 0.02))
    e = model.draw("composition", np.random.default_rng(0), 4, (5, 6), antithetic=True)
    np.testing.assert_allclose(e[1], -e[0])
    np.testing.assert_allclose(e[3], -e[2])
    assert not np.allclose(e[2], e[0])
    e = model.draw("composition", np.random.default_rng(0), 4, (5, 6))
    assert not np.allclose(e[1], -e[0])  # independent without
    with pytest.raises(ValueError, match="even"):
        ErrorPropagationOptions(n_draws=3)
    assert ErrorPropagationOptions(n_draws=3, antithetic=False).n_draws == 3


def test_draws_carry_the_drift_estimate_error(low_dose_chain):
    """On the demo chain the errors of X are dominated at low spatial frequencies by
    the drift estimate's (measured: 2-4x the Poisson noise's power after a 1.5 px
    blur, against the whole X-ray chain redrawn): the map records what the draws
    need, and the draws carry that part."""
    from scipy import ndimage

    from hyperspy_chemomech.signals._composition_errors import _resampled_errors, error_model

    c, comp, strain, cs = low_dose_chain[0]
    made = comp.metadata.Chemomech.composition_map
    assert int(made.noise_n_background) > 100 and made.drift_reference == 0
    assert bool(made.drift_model_refined)
    model = error_model(cs, "auto", strain)
    node = cs.metadata.Chemomech.registration.as_dictionary()
    node.update(references=np.asarray(made.reference_spectra, float).T,
                reference_gram=(lambda A: A.T @ A)(np.asarray(made.reference_spectra, float).T),
                noise_i0=np.asarray(made.noise_i0), drift_shifts=np.asarray(made.drift_shifts))
    poisson_only = _resampled_errors(node, strain)  # no drift re-estimation, no I0 error
    mask = ndimage.binary_erosion(np.asarray(comp.particle_mask), iterations=1)

    def low_power(m):
        e = np.nan_to_num(m.source_draw(np.random.default_rng(1), 8, 1.0))
        return np.mean(np.array([ndimage.gaussian_filter(f, 1.5) for f in e])[:, mask] ** 2)

    assert low_power(model) > 1.5 * low_power(poisson_only)
