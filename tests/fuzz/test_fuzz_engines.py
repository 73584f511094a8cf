"""Fuzz set (issue 15): the plain-array engines behind the signals.

learning.learn_law, decomposition.decompose / find_dislocations / convention_check,
fields.nye_tensor / incompatibility / validate_strain_composition, and the
spectra functions (optical density, unmixing, energy shift, drift). Same oracles
as for the signals; the same rules hold at both levels.
"""

import warnings

import numpy as np
import pytest
from _oracles import expect_error, expect_truth, run_truth, unchanged

from hyperspy_chemomech.simulate.particle import make_particle


@pytest.fixture(scope="module")
def arrays():
    p = make_particle(shape=(40, 60), noise=1e-4, material="LiFePO4")   # as `stiffness`
    return p.strain.copy(), p.composition_map().data.astype(float).copy(), p.pixel_size, p


@pytest.fixture(scope="module")
def stiffness():
    from hyperspy_chemomech.mechanics import resolve_stiffness

    return resolve_stiffness("LiFePO4", "stress")


# ---------------------------------------------------------------- learn_law
def _learn(strain, X, pixel, stiffness, **kw):
    from hyperspy_chemomech.learning import learn_law

    return learn_law(strain, X, pixel, stiffness, **dict({"degree": 1}, **kw))


LEARN_BAD = [
    ("strain_complex", {}, ("complex",)), ("X_complex", {}, ("complex",)),
    ("strain_shape", {}, ("shape",)), ("X_shape", {}, ("grid",)),
    ("pixel0", {}, ("pixel size",)), ("pixelnan", {}, ("pixel size",)),
    ("pixel-1", {}, ("pixel size",)), ("X_text", {}, (("number", "dtype"),)),
    ("ok", {"degree": 0}, ("degree",)), ("ok", {"max_degree": 0, "degree": "auto"}, ("max_degree",)),
    ("ok", {"variance": "nan"}, ("variance",)), ("ok", {"mask": "float"}, ("mask",)),
    ("ok", {"crystal_angle": np.nan}, ("crystal_angle",)), ("ok", {"n_folds": 1}, ("n_folds",)),
    ("ok", {"min_range": 2.0}, ("range",)), ("ok", {"extend_body": -3}, ("extend_body",)),
]


@pytest.mark.parametrize("case, kw, names", LEARN_BAD,
                         ids=[f"{c}-{sorted(k)}" for c, k, _ in LEARN_BAD])
def test_learn_law_bad(arrays, stiffness, case, kw, names):
    strain, X, pixel, _ = arrays
    s, x, px = strain.copy(), X.copy(), pixel
    if case == "strain_complex":
        s = s.astype(complex)
    elif case == "X_complex":
        x = x.astype(complex)
    elif case == "strain_shape":
        s = s[:3]
    elif case == "X_shape":
        x = x[:, :-1]
    elif case.startswith("pixel"):
        px = {"pixel0": 0.0, "pixelnan": np.nan, "pixel-1": -1.0}[case]
    elif case == "X_text":
        x = np.full(x.shape, "a")
    kw = dict(kw)
    if kw.get("variance") == "nan":
        kw["variance"] = np.full(s.shape, np.nan)
    if kw.get("mask") == "float":
        kw["mask"] = np.isfinite(x).astype(float) * 0.5
    with unchanged(s, x):
        expect_error(_learn, s, x, px, stiffness, names=names, **kw)


def test_learn_law_zero_filled_vacuum(arrays, stiffness):
    strain, X, pixel, _ = arrays
    x0 = np.nan_to_num(X, nan=0.0)
    with unchanged(strain, x0), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit = run_truth(_learn, strain, x0, pixel, stiffness)
    slopes = np.asarray(fit.vegard["slopes"])[:2]
    expect_truth(np.allclose(slopes, [0.052, -0.020], rtol=0.02)
                 and any("vacuum" in str(m.message) for m in w), f"slopes {slopes}")


# --------------------------------------------------------- decomposition engines
def test_decompose_law_not_callable(arrays, stiffness):
    from hyperspy_chemomech.decomposition import decompose

    strain, X, pixel, _ = arrays
    expect_error(decompose, strain, X, pixel, "vegard", stiffness, names=("law",))


@pytest.mark.parametrize("reference", [[1.0, 2.0], [np.inf, 0, 0, 0], "fit-it"])
def test_decompose_bad_reference(arrays, stiffness, reference):
    from hyperspy_chemomech.decomposition import decompose

    strain, X, pixel, _ = arrays
    expect_error(decompose, strain, X, pixel, lambda x: np.stack([0.05 * x, -0.02 * x]),
                 stiffness, reference=reference, names=("reference",))


@pytest.mark.parametrize("sigma", [-1.0, np.nan])
def test_decompose_bad_resolution(arrays, stiffness, sigma):
    from hyperspy_chemomech.decomposition import decompose

    strain, X, pixel, _ = arrays
    expect_error(decompose, strain, X, pixel, lambda x: np.stack([0.05 * x, -0.02 * x]),
                 stiffness, resolution_sigma_px=sigma, names=("resolution_sigma_px",))


def test_decompose_truth(arrays, stiffness):
    """The true law on the particle: the residual is the noise (1e-4)."""
    from hyperspy_chemomech.decomposition import decompose

    strain, X, pixel, p = arrays
    with unchanged(strain, X):
        d = run_truth(decompose, strain, X, pixel, p.law, stiffness)
    rms = float(np.sqrt(np.nanmean(d.residual[:3] ** 2)))
    expect_truth(rms < 1.5e-4, f"residual RMS {rms:.3g} with the true law")


FIND_BAD = [({"sigma": -1}, "sigma"), ({"sigma": np.nan}, "sigma"), ({"radius": 0}, "radius"),
            ({"radius": -1}, "radius"), ({"threshold": -1}, "threshold"),
            ({"threshold": np.nan}, "threshold"), ({"min_burgers": -1}, "min_burgers"),
            ({"false_alarms": 0}, "false_alarms"), ({"min_distance": 0}, "min_distance"),
            ({"min_distance": 1.5}, "min_distance"), ({"exclude_border": -2}, "exclude_border"),
            ({"exclude_border": 2.5}, "exclude_border")]


@pytest.mark.parametrize("kw, name", FIND_BAD, ids=[str(k) for k, _ in FIND_BAD])
def test_find_dislocations_engine_bad(arrays, kw, name):
    from hyperspy_chemomech.decomposition import find_dislocations

    strain, _, pixel, _ = arrays
    expect_error(find_dislocations, strain, pixel, names=(name,), **kw)


@pytest.mark.parametrize("tolerance", [-1.0, 0.5, np.nan, "x"])
def test_convention_check_engine_bad(arrays, tolerance):
    from hyperspy_chemomech.decomposition import convention_check

    strain, _, pixel, _ = arrays
    expect_error(convention_check, strain, pixel, tolerance=tolerance, names=("tolerance",))


@pytest.mark.parametrize("func", ["nye_tensor", "incompatibility"])
@pytest.mark.parametrize("case, names", [("complex", ("complex",)), ("shape", ("shape",)),
                                         ("pixel0", ("pixel_size",)), ("pixelnan", ("pixel_size",))])
def test_nye_engines_bad(arrays, func, case, names):
    from hyperspy_chemomech import fields

    strain, _, pixel, _ = arrays
    s, px = strain, pixel
    if case == "complex":
        s = strain.astype(complex)
    elif case == "shape":
        s = strain[:2]
    else:
        px = 0.0 if case == "pixel0" else np.nan
    expect_error(getattr(fields, func), s, px, names=names)


# ----------------------------------------------------------------- spectra engines
@pytest.fixture(scope="module")
def spectra():
    from hyperspy_chemomech.simulate import synthetic_xray_stack

    stack, truth = synthetic_xray_stack(shape=(24, 24), n_energies=30, max_drift=0.0, seed=4)
    e = truth["energies"]
    refs = [(r.axes_manager[-1].axis, np.asarray(r.data, float)) for r in truth["references"]]
    return np.asarray(truth["od"], float), e, refs, truth


@pytest.mark.parametrize("shift", [np.nan, np.inf])
def test_interpolate_references_bad_shift(spectra, shift):
    from hyperspy_chemomech.spectra import interpolate_references

    od, e, refs, _ = spectra
    expect_error(interpolate_references, refs, e, shift, names=(("shift", "covers"),))


def test_check_reference_spectra(spectra):
    from hyperspy_chemomech.spectra import check_reference_spectra

    _, _, refs, _ = spectra
    expect_error(check_reference_spectra, refs[::-1], names=("order",))


def test_check_reference_spectra_negated(spectra):
    from hyperspy_chemomech.spectra import check_reference_spectra

    _, _, refs, _ = spectra
    expect_error(check_reference_spectra, [refs[0], (refs[1][0], -refs[1][1])],
                 names=("reference 1", "negated"))


@pytest.mark.parametrize("kw, names", [({"threshold": np.nan}, ("threshold",)),
                                       ({"threshold": 1e9}, ("threshold",)),
                                       ({"mask": "empty"}, ("mask",))])
def test_unmix_stack_bad(spectra, kw, names):
    from hyperspy_chemomech.spectra import interpolate_references, unmix_stack

    od, e, refs, _ = spectra
    A = interpolate_references(refs, e)
    kw = dict(kw)
    if kw.get("mask") == "empty":
        kw["mask"] = np.zeros(od.shape[:2], bool)
    with unchanged(od):
        expect_error(unmix_stack, od, A, names=names, **kw)


def test_fit_energy_shift_exact_coverage(spectra):
    from hyperspy_chemomech.spectra import data_gram, fit_energy_shift

    od, e, refs, _ = spectra
    expect_error(fit_energy_shift, data_gram(od), refs, e, names=("references",))


@pytest.mark.parametrize("kw, name", [({"order": 7}, "order"), ({"order": -1}, "order")])
def test_apply_energy_drift_bad(spectra, kw, name):
    from hyperspy_chemomech.spectra import apply_energy_drift

    od = spectra[0]
    expect_error(apply_energy_drift, od, np.zeros((od.shape[-1], 2)), names=(name,), **kw)


@pytest.mark.parametrize("shape", [(1, 3), (3, 3), (10, 10)])
def test_estimate_energy_drift_tiny(shape):
    from hyperspy_chemomech.spectra import estimate_energy_drift

    expect_error(estimate_energy_drift, np.ones(shape + (5,)), names=("px",))


def test_estimate_energy_drift_nan_frame(spectra):
    from hyperspy_chemomech.spectra import estimate_energy_drift

    od = spectra[0].copy()
    od[..., 4] = np.nan
    with unchanged(od):
        expect_error(estimate_energy_drift, od, names=("frame",))


@pytest.mark.parametrize("i0", [0.0, -1.0, np.nan])
def test_optical_density_bad_i0(spectra, i0):
    from hyperspy_chemomech.spectra import optical_density

    od = spectra[0]
    expect_error(optical_density, np.exp(-od) * 1e4, np.full(od.shape[-1], i0), names=("I0",))
