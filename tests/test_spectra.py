"""spectra/: optical density, energy alignment and unmixing numerics (plain numpy)."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import nnls

from hyperspy_chemomech.spectra import (
    apply_energy_drift,
    background_mask,
    check_energies,
    composition_from_coefficients,
    estimate_energy_drift,
    fit_energy_shift,
    interpolate_references,
    optical_density,
    unmix,
    unmix_block,
    unpack,
)
from hyperspy_chemomech.simulate.xray_stack import _fe_l_edge_mu, edge_energies


# ----------------------------------------------------------- optical density
def test_optical_density_is_beer_lambert():
    I = np.array([[1000.0, 100.0], [10.0, 1.0]])[..., None] * np.ones(3)
    od = optical_density(I, 1000.0)
    np.testing.assert_allclose(od[..., 0], [[0, np.log(10)], [np.log(100), np.log(1000)]])


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan])
def test_optical_density_rejects_bad_intensity(bad):
    I = np.full((2, 2, 3), 50.0)
    I[1, 0, 2] = bad
    before = I.copy()
    with pytest.raises(ValueError, match="intensity"):
        optical_density(I, 100.0)
    np.testing.assert_array_equal(I, before)


@pytest.mark.parametrize("i0", [0.0, -1.0, np.array([1.0, 0.0, 2.0])])
def test_optical_density_rejects_bad_i0(i0):
    with pytest.raises(ValueError, match="I0"):
        optical_density(np.ones((2, 2, 3)), i0)


def test_background_mask_finds_empty_pixels_and_refuses_full_particle():
    img = np.full((40, 40), 100.0)
    img[10:30, 10:30] = 30.0  # absorbing particle
    bg = background_mask(img, margin=3)
    # particle and its margin excluded: every background pixel is > 3 px away
    dist = ndimage.distance_transform_edt(img > 50)
    assert bg.any() and (dist[bg] > 3).all()
    assert bg[0, 0] and bg[-1, -1]
    with pytest.raises(ValueError, match="particle-free"):
        background_mask(img, margin=3, min_pixels=10_000)


@pytest.mark.parametrize(
    "energies, units, match",
    [([700, 701, 701, 702], "eV", "strictly increasing"),
     ([702, 701, 700], "eV", "strictly increasing"),
     ([0.70, 0.71, 0.72], "keV", "eV"),
     ([700, 701], "<undefined>", "eV"),
     ([700], "eV", ">= 2")],
)
def test_check_energies_rejects(energies, units, match):
    with pytest.raises(ValueError, match=match):
        check_energies(energies, units)


# -------------------------------------------------------------- alignment
def _drifted_stack(rng, n=24, shape=(64, 64)):
    """Particle whose inner contrast inverts across 'energy' while it drifts."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    particle = ((y - 32) / 20.0) ** 2 + ((x - 30) / 24.0) ** 2 < 1
    half = particle & (x < 30)
    drift = np.cumsum(rng.normal(0, 0.6, (n, 2)), axis=0)
    frames = []
    for k in range(n):
        w = k / (n - 1)  # the left half goes from dark to bright relative to the right
        od = 0.4 * particle + (0.5 - w) * 0.4 * half
        od = ndimage.gaussian_filter(od.astype(float), 1.0)
        frames.append(ndimage.shift(od, drift[k], order=3, mode="nearest"))
    stack = np.stack(frames, axis=-1) + rng.normal(0, 0.01, shape + (n,))
    return stack, drift


def test_estimate_energy_drift_recovers_subpixel_drift_through_contrast_inversion(rng):
    stack, drift = _drifted_stack(rng)
    shifts = estimate_energy_drift(stack, upsample=20)
    err = (shifts - shifts.mean(0)) - (drift - drift.mean(0))
    assert np.abs(err).max() < 0.1
    # relative to a frame index: that frame has zero shift
    s5 = estimate_energy_drift(stack, reference=5)
    assert np.allclose(s5[5], 0)
    err5 = s5 - (drift - drift[5])
    assert np.abs(err5).max() < 0.15


def test_apply_energy_drift_undoes_drift_and_marks_new_pixels_nan(rng):
    y, x = np.mgrid[:48, :48]
    img = np.exp(-(((y - 24) / 8.0) ** 2 + ((x - 22) / 10.0) ** 2))
    drift = rng.uniform(-3, 3, (5, 2))
    stack = np.stack([ndimage.shift(img, d, order=5, mode="nearest") for d in drift], -1)
    before = stack.copy()
    out = apply_energy_drift(stack, drift)
    np.testing.assert_array_equal(stack, before)  # input untouched
    for k in range(5):  # every frame is back on the undrifted image
        ok = np.isfinite(out[..., k])
        assert ok.sum() > 0.7 * img.size
        assert np.abs(out[..., k][ok] - img[ok]).max() < 0.01
    # a shift of +2.5 px in x: the source of the last 3 columns lies outside -> NaN
    one = apply_energy_drift(stack[..., :1], np.array([[0.0, 2.5]]))
    assert np.isnan(one[:, -3:, 0]).all() and np.isfinite(one[:, :-3, 0]).all()


def test_apply_energy_drift_spreads_input_nan_not_zero():
    stack = np.ones((10, 10, 1))
    stack[5, 5, 0] = np.nan
    out = apply_energy_drift(stack, np.array([[0.5, 0.0]]), order=1)
    assert np.isnan(out[4:6, 5, 0]).all()
    assert np.isfinite(out[0:3, :, 0]).all()


def test_alignment_bad_input():
    with pytest.raises(ValueError, match="shifts must have shape"):
        apply_energy_drift(np.ones((4, 4, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reference image shape"):
        estimate_energy_drift(np.ones((16, 16, 3)), reference=np.ones((4, 4)))
    with pytest.raises(ValueError, match="out of range"):
        estimate_energy_drift(np.ones((16, 16, 3)), reference=7)


# --------------------------------------------------------------- unmixing
@pytest.fixture
def refs():
    e = edge_energies(60)
    A = np.stack([_fe_l_edge_mu(e, "FePO4"), _fe_l_edge_mu(e, "LiFePO4")], axis=1)
    return e, A


def test_lstsq_matches_numpy_lstsq(rng, refs):
    e, A = refs
    Y = rng.normal(0, 1, (7, 5, e.size))
    t, rms, _ = unpack(unmix(Y, A, method="lstsq"), 2)
    ref = np.linalg.lstsq(A, Y.reshape(-1, e.size).T, rcond=None)[0].T.reshape(7, 5, 2)
    np.testing.assert_allclose(t, ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())
    resid = Y - t @ A.T
    np.testing.assert_allclose(rms, np.sqrt((resid**2).mean(-1)), rtol=1e-8)


@pytest.mark.parametrize("K", [2, 3])
def test_vectorised_nnls_equals_scipy_nnls(rng, K):
    A = np.abs(rng.normal(0, 1, (40, K))) + np.linspace(0, 1, 40)[:, None]
    # many pixels with negative unconstrained solutions
    Y = rng.normal(0, 1, (300, 40)) + rng.normal(0, 1, (300, K)) @ A.T
    t, rms, _ = unpack(unmix_block(Y, A, method="nnls"), K)
    assert (t >= 0).all()
    lsq = np.linalg.lstsq(A, Y.T, rcond=None)[0].T
    assert (lsq < 0).any(axis=1).sum() > 50  # the constrained branch is exercised
    for y, tk, r in zip(Y, t, rms):
        tref, rnorm = nnls(A, y)
        np.testing.assert_allclose(tk, tref, atol=1e-9)
        np.testing.assert_allclose(r, rnorm / np.sqrt(40), rtol=1e-7, atol=1e-12)


def test_nan_pixels_give_nan_not_zero(refs):
    e, A = refs
    Y = np.ones((3, e.size)) * A.sum(1)
    Y[1, 4] = np.nan
    out = unmix_block(Y, A)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[0, :2], [1, 1], rtol=1e-10)


def test_uncertainty_matches_monte_carlo(rng, refs):
    """Poisson propagation: the predicted sigma(X) matches the scatter of X."""
    e, A = refs
    t_true = np.array([40.0, 60.0])  # nm FePO4, nm LiFePO4 -> X = 0.6
    od = A @ t_true
    i0 = 1e4
    n = 4000
    counts = rng.poisson(i0 * np.exp(-od), size=(n, e.size)).astype(float)
    Y = -np.log(counts / i0)
    packed = unmix_block(Y, A, "lstsq", variance=np.exp(Y) / i0)
    t, _, cov = unpack(packed, 2)
    X, sX, S = composition_from_coefficients(t, cov)
    assert abs(X.mean() - 0.6) < 3 * X.std() / np.sqrt(n) + 1e-3
    assert sX.mean() == pytest.approx(X.std(), rel=0.08)
    # homoscedastic noise: the residual-based estimate is the right one
    Yg = od + rng.normal(0, 0.02, (n, e.size))
    t2, _, cov2 = unpack(unmix_block(Yg, A, "lstsq"), 2)
    X2, sX2, _ = composition_from_coefficients(t2, cov2)
    assert np.median(sX2) == pytest.approx(X2.std(), rel=0.08)


def test_composition_from_coefficients_values():
    t = np.array([[1.0, 3.0], [0.0, 0.0]])
    X, s, S = composition_from_coefficients(t, np.zeros((2, 2, 2)))
    np.testing.assert_allclose(X[0], 0.75)
    np.testing.assert_allclose(S, [4.0, 0.0])
    assert np.isnan(X[1])


def test_interpolate_references_and_coverage(refs):
    e, A = refs
    fine = np.linspace(695, 735, 2001)
    pairs = [(fine, _fe_l_edge_mu(fine, "FePO4"))]
    np.testing.assert_allclose(interpolate_references(pairs, e)[:, 0], A[:, 0], rtol=2e-3)
    with pytest.raises(ValueError, match="covers"):
        interpolate_references([(fine[fine < 725], pairs[0][1][fine < 725])], e)
    with pytest.raises(ValueError, match="covers"):  # a shift pushes past the end
        interpolate_references([(e, A[:, 0])], e, shift=0.5)


def test_fit_energy_shift_recovers_calibration_offset(rng, refs):
    e, _ = refs
    fine = np.linspace(690, 740, 5001)
    # the references' beamline reads 0.35 eV high: features sit 0.35 eV higher
    pairs = [(fine + 0.35, _fe_l_edge_mu(fine, c)) for c in ("FePO4", "LiFePO4")]
    A_true = np.stack([_fe_l_edge_mu(e, c) for c in ("FePO4", "LiFePO4")], axis=1)
    T = rng.uniform(0, 80, (500, 2))
    Y = T @ A_true.T + rng.normal(0, 0.01, (500, e.size))
    shift = fit_energy_shift(Y.T @ Y, pairs, e, max_shift=1.0)
    assert shift == pytest.approx(-0.35, abs=0.02)
    with pytest.raises(ValueError, match="edge of the search range"):
        fit_energy_shift(Y.T @ Y, pairs, e, max_shift=0.2)


def test_linearly_dependent_references_are_refused(refs):
    e, A = refs
    with pytest.raises(ValueError, match="linearly dependent"):
        unmix(np.ones((2, 2, e.size)), np.stack([A[:, 0], 2 * A[:, 0]], axis=1))
    with pytest.raises(ValueError, match="energies"):
        unmix(np.ones((2, 2, 5)), A)


def test_model_refined_drift_beats_the_image_estimate():
    """Registering each frame to its model prediction halves the drift error."""
    from hyperspy_chemomech.simulate import correlative_particle

    c = correlative_particle(shape=(90, 150), seed=2, max_drift=2.0, n_energies=40)
    od = c.stack.to_optical_density(i0="auto")
    plain = od.deepcopy().align_energies(reference=0, features="outline", upsample=100)
    refined = od.deepcopy().align_energies(reference=0, features="outline", upsample=100,
                                           references=c.references)
    err_plain = np.abs(plain - c.drift).max()
    err_refined = np.abs(refined - c.drift).max()
    assert err_refined < 0.75 * err_plain, (err_plain, err_refined)
    assert np.allclose(refined[0], 0)
    counts = c.stack.deepcopy()
    with pytest.raises(ValueError, match="optical-density"):
        counts.align_energies(references=c.references)


def test_joint_drift_fit_reaches_the_least_squares_optimum():
    """Drift and maps fitted together: the same answer from the image estimate as from the truth.

    Frame-by-frame registration to the model, alternating with the model fit, stalls
    ~0.05 px off (frames dominated by one end member drag its map along); the joint
    (variable projection) Gauss-Newton fit does not.
    """
    from hyperspy_chemomech.simulate import correlative_particle
    from hyperspy_chemomech.spectra import (
        estimate_energy_drift,
        interpolate_references,
        refine_drift_with_model,
    )

    c = correlative_particle(shape=(60, 100), seed=1, n_energies=40)
    od = np.asarray(c.stack.to_optical_density(i0="auto").data)
    design = interpolate_references(
        [(r.axes_manager[-1].axis, np.asarray(r.data, float)) for r in c.references],
        c.stack.axes_manager[-1].axis)
    start = estimate_energy_drift(od, 0, features="outline")
    from_image = refine_drift_with_model(od, start, design, show_progressbar=False)
    from_truth = refine_drift_with_model(od, c.drift, design, show_progressbar=False)
    from_image -= from_image[0]
    from_truth -= from_truth[0]
    assert np.abs(from_image - from_truth).max() < 0.01
    assert np.abs(from_image - c.drift).max() < 0.06
    assert np.abs(start - c.drift).max() > 0.15  # the start was far enough to matter
    with pytest.raises(ValueError, match="shifts must have shape"):
        refine_drift_with_model(od, start[:-1], design)


# ------------------------------------------- the eager pass of get_composition_map (#16)
def _stack_and_refs(rng, n=96, K=2):
    e = np.linspace(700, 730, 60)
    A = np.abs(rng.normal(0.01, 0.004, (e.size, K))) + 0.004 * np.linspace(0, 1, e.size)[:, None]
    t = np.abs(rng.normal(40, 30, (n * n, K)))
    t[: n * n // 3] *= 0.01                      # a background third, many NNLS pixels
    i0 = np.full(e.size, 1e4)
    counts = rng.poisson(i0 * np.exp(-(t @ A.T))).astype(float)
    return -np.log(np.maximum(counts, 1) / i0).reshape(n, n, e.size), A, i0


@pytest.mark.parametrize("K", [2, 3])
def test_eager_unmixing_equals_the_reference_block(rng, K):
    """The row-wise eager pass (pair / subset NNLS, t.b misfit) equals unmix_block."""
    from hyperspy_chemomech.spectra._unmixing import _unmix_eager

    od, A, _ = _stack_and_refs(rng, n=40, K=K)
    od[3, 5, 7] = np.nan
    for method in ("nnls", "lstsq"):
        tt, rms, tri = _unmix_eager(od, A, method, True, False)
        t_ref, rms_ref, cov_ref = unpack(unmix_block(od, A, method), K)
        iu = np.triu_indices(K)
        np.testing.assert_allclose(tt.T.reshape(t_ref.shape), t_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rms.reshape(rms_ref.shape), rms_ref, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(tri.T.reshape(cov_ref.shape[:2] + (-1,)),
                                   cov_ref[..., iu[0], iu[1]], rtol=1e-7, atol=1e-18)
        assert np.isnan(tt.reshape(K, 40, 40)[:, 3, 5]).all() and np.isnan(rms[3 * 40 + 5])


def test_compiled_pass_equals_numpy_pass(rng, monkeypatch):
    pytest.importorskip("numba")
    from hyperspy_chemomech.spectra import _compiled as C
    from hyperspy_chemomech.spectra import _unmixing as U

    for K in (2, 3):
        od, A, _ = _stack_and_refs(rng, n=48, K=K)
        od[1, 2, 3] = np.nan
        for method in ("nnls", "lstsq"):
            monkeypatch.setattr(C, "COMPILED_MIN_VALUES", 0)
            assert C.use_compiled_pass(od.size)
            fast = U._unmix_eager(od, A, method, True, False)
            monkeypatch.setattr(C, "COMPILED_PASS", False)
            slow = U._unmix_eager(od, A, method, True, False)
            monkeypatch.undo()
            for a, b in zip(fast, slow):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
            assert np.isnan(fast[0][:, 1 * 48 + 2]).all() and np.isnan(fast[1][1 * 48 + 2])


def test_poisson_covariance_table_equals_the_model(rng):
    """The tabulated model covariance equals exp(A t) / I0 propagated pixel by pixel."""
    from hyperspy_chemomech.spectra import PoissonODVariance

    od, A, i0 = _stack_and_refs(rng, n=96)
    var = PoissonODVariance(i0)
    t = np.abs(rng.normal(40, 30, (2, 9000)))
    t[:, :50] = 0.0                                   # NNLS pixels on the bounds
    P = np.linalg.solve(A.T @ A, A.T)
    iu = np.triu_indices(2)
    direct = ((P[iu[0]] * P[iu[1]]) / i0) @ np.exp(A @ t)
    table = var.coefficient_covariance(t, A)
    W = (P[iu[0]] * P[iu[1]]) / i0
    assert var._table(t.min(axis=1), t.max(axis=1), A, W) is not None  # the table was used
    scale = np.sqrt(direct[0] * direct[2])
    assert np.max(np.abs(table - direct) / scale) < 1e-4
    # at the pixels of a mask (NaN elsewhere), NumPy's loop and the compiled one, the
    # amounts as rows of an (m, 2) array as a signal stores them
    from hyperspy_chemomech.spectra import _compiled as C

    mask = rng.random(t.shape[1]) < 0.8
    t_views = np.ascontiguousarray(t.T).T
    for flag in (False, True) if C.kernels() is not None else (False,):
        C.COMPILED_PASS = flag
        try:
            out = np.full((t.shape[1], 3), -1.0).T
            got = var.coefficient_covariance(t_views, A, mask=mask, out=out)
        finally:
            C.COMPILED_PASS = None
        assert got is out and np.isnan(out[:, ~mask]).all()
        assert np.max(np.abs(out[:, mask] - direct[:, mask]) / scale[mask]) < 1e-4
    # few pixels: evaluated directly
    np.testing.assert_allclose(var.coefficient_covariance(t[:, :10], A), direct[:, :10],
                               rtol=1e-12)


def test_poisson_model_covariance_matches_monte_carlo(rng, refs):
    """Evaluated at the model, the Poisson sigma(X) still matches the scatter of X."""
    from hyperspy_chemomech.spectra import PoissonODVariance, composition_from_rows
    from hyperspy_chemomech.spectra._unmixing import _unmix_eager

    e, A = refs
    t_true = np.array([40.0, 60.0])
    i0 = np.full(e.size, 300.0)                       # low dose: model and data differ most
    n = 6000
    counts = rng.poisson(i0 * np.exp(-(A @ t_true)), size=(n, e.size)).astype(float)
    Y = -np.log(np.maximum(counts, 1) / i0)
    tt, _, _ = _unmix_eager(Y[None], A, "lstsq", False, False)
    tri = PoissonODVariance(i0).coefficient_covariance(tt, A)
    X, sX, _ = composition_from_rows(tt, tri)
    assert np.mean(sX) == pytest.approx(X.std(), rel=0.06)


def test_composition_from_rows_equals_the_matrix_form(rng):
    from hyperspy_chemomech.spectra import composition_from_rows

    for K in (2, 3, 4):
        t = np.abs(rng.normal(1, 0.5, (50, K)))
        L = rng.normal(0, 0.1, (50, K, K))
        cov = L @ np.swapaxes(L, 1, 2)
        iu = np.triu_indices(K)
        a = composition_from_coefficients(t, cov)
        b = composition_from_rows(t.T.copy(), cov[:, iu[0], iu[1]].T.copy())
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-12)


def test_fast_otsu_and_median_equal_the_libraries(rng):
    from skimage.exposure import histogram
    from skimage.filters import threshold_otsu

    from hyperspy_chemomech.spectra._compiled import kernels
    from hyperspy_chemomech.spectra._particle import _histogram_256, _median

    passes = (False, True) if kernels() is not None else (False,)
    for trial in range(30):
        n = int(rng.integers(50, 20000))
        v = np.concatenate([rng.normal(0, 0.01, n), rng.gamma(2, 0.3, n // 2)])
        if trial % 3 == 0:
            v = np.round(v, 2)                        # ties on the bin edges
        expected = histogram(v, 256, source_range="image")[0]
        for compiled in passes:
            w = v.copy()
            if compiled:
                w[::7] = np.nan                       # the compiled loop skips NaN itself
                expected_w = histogram(w[np.isfinite(w)], 256, source_range="image")[0]
                lo, hi = np.nanmin(w), np.nanmax(w)
            else:
                expected_w, lo, hi = expected, v.min(), v.max()
            np.testing.assert_array_equal(_histogram_256(w, lo, hi, compiled)[0], expected_w)
        assert threshold_otsu(hist=_histogram_256(v)) == pytest.approx(threshold_otsu(v),
                                                                        abs=1e-12)
        assert _median(v) == np.median(v) and _median(v[:-1]) == np.median(v[:-1])
        w = v.copy()
        assert _median(w, overwrite=True) == np.median(v)           # partitioned in place
        np.testing.assert_array_equal(np.sort(w), np.sort(v))       # the same values


def test_composition_from_rows_names_a_shape_mismatch():
    from hyperspy_chemomech.spectra import composition_from_rows

    t, tri = np.ones((2, 5)), np.ones((3, 4))
    before = tri.copy()
    with pytest.raises(ValueError, match="tri"):
        composition_from_rows(t, tri)
    np.testing.assert_array_equal(tri, before)
    t[0, 1] = np.nan                                   # no data stays no data
    assert np.isnan(composition_from_rows(t, np.ones((3, 5)))[0][1])


@pytest.mark.parametrize("method", ["nnls", "lstsq"])
def test_composition_map_same_with_the_compiled_loops(monkeypatch, method):
    """get_composition_map: the compiled loops (unmixing on threads, histogram, tabulated
    covariance, X) give NumPy's map, NaN where NumPy's is NaN."""
    pytest.importorskip("numba")
    from hyperspy_chemomech.simulate import synthetic_xray_stack
    from hyperspy_chemomech.spectra import _compiled as C

    # 128 x 128: > 4096 particle pixels, so that the covariance is tabulated
    stack, truth = synthetic_xray_stack(shape=(128, 128), n_energies=40, i0=1e4, max_drift=0.0,
                                        spacing="uniform", seed=3)
    od = stack.to_optical_density()
    od.data[5, 7, 3] = np.nan                                 # a pixel with no fit
    refs = list(truth["references"])
    maps = {}
    for flag in (False, True):
        monkeypatch.setattr(C, "COMPILED_PASS", flag)
        maps[flag] = od.get_composition_map(refs, method=method, show_progressbar=False)
    a, b = maps[False], maps[True]
    np.testing.assert_array_equal(np.isnan(a.data), np.isnan(b.data))
    assert np.isnan(b.data[5, 7]) and np.isfinite(b.data).sum() > 4096
    np.testing.assert_allclose(b.data, a.data, rtol=1e-10, atol=1e-13, equal_nan=True)
    ma, mb = (m.metadata.Chemomech for m in (a, b))
    assert ma.composition_map.threshold == pytest.approx(mb.composition_map.threshold, rel=1e-12)
    for name in ("thickness", "uncertainty", "residual", "mask", "coefficients",
                 "coefficient_covariance"):
        np.testing.assert_allclose(mb.composition_maps[name], ma.composition_maps[name],
                                   rtol=1e-9, atol=1e-15, equal_nan=True, err_msg=name)


def test_run_chunks_runs_every_item_once_and_raises(monkeypatch):
    """Items handed out to the threads: each once, the caller's ``meanwhile`` run once,
    a worker's error raised in the caller."""
    import threading

    from hyperspy_chemomech._utils import run_chunks

    seen, lock, calls = [], threading.Lock(), []

    def func(i):
        with lock:
            seen.append(i)

    for threads in (1, 2, 3):
        seen.clear()
        calls.clear()
        run_chunks(func, range(23), threads, show_progressbar=False,
                   meanwhile=lambda: calls.append(1))
        assert sorted(seen) == list(range(23)) and calls == [1]

    def bad(i):
        if i == 5:
            raise KeyError("item 5")

    with pytest.raises(KeyError, match="item 5"):
        run_chunks(bad, range(12), 2, show_progressbar=False)


def test_masked_covariance_and_fraction_name_bad_input(rng):
    """A mask of the wrong length, wrong output arrays and a NaN amount: clear errors or
    NaN at that pixel, in both passes; the inputs unchanged."""
    from hyperspy_chemomech.spectra import PoissonODVariance, composition_from_rows
    from hyperspy_chemomech.spectra import _compiled as C

    _, A, i0 = _stack_and_refs(rng, n=8)
    var = PoissonODVariance(i0)
    t = np.abs(rng.normal(40, 30, (2, 6000)))
    t[:, 7] = np.nan
    mask = np.ones(6000, bool)
    t0, mask0 = t.copy(), mask.copy()
    for flag in (False, True) if C.kernels() is not None else (False,):
        C.COMPILED_PASS = flag
        try:
            with pytest.raises(ValueError, match="one value per pixel"):
                var.coefficient_covariance(t, A, mask=mask[:-1])
            with pytest.raises(ValueError, match="out must be"):
                var.coefficient_covariance(t, A, mask=mask, out=np.empty((3, 10)))
            with pytest.raises(ValueError, match="one row per reference"):
                var.coefficient_covariance(t[:1], A, mask=mask)
            tri = var.coefficient_covariance(t, A, mask=mask)
            assert np.isnan(tri[:, 7]).all() and np.isfinite(tri[:, 8]).all()
            with pytest.raises(ValueError, match="one value per pixel"):
                composition_from_rows(t, tri, mask=mask[:10])
            with pytest.raises(ValueError, match="out must be"):
                composition_from_rows(t, tri, mask=mask, out=(np.empty(5), np.empty(5)))
            X, sigma, _ = composition_from_rows(t, tri, mask=mask)
            assert np.isnan(X[7]) and np.isnan(sigma[7]) and np.isfinite(X[8])
        finally:
            C.COMPILED_PASS = None
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(mask, mask0)
