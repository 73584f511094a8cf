"""Fuzz set (issue 15) on the authors' real particle LFP50_P2 (../shared/realdata).

The rules found on synthetic data must hold on data nobody here made: no false
vacuum on a real composition map, the zero-filled version of it detected and
given the same body, HyperSpy operations and the option checks as on synthetic maps.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest
from _oracles import expect_error, expect_truth, run_truth, unchanged
from scipy import ndimage

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata" / "LFP50_P2.mat"


@pytest.fixture(scope="module")
def real():
    if not REAL.exists():
        pytest.skip(f"real data absent ({REAL}); see ../shared/realdata/README.md")
    from hyperspy_chemomech.io import load_correlative_mat

    strain, comp, _ = load_correlative_mat(REAL, pixel_size=5.0)
    return strain, comp


def _validate(strain, X, mask=None):
    from hyperspy_chemomech.fields import validate_strain_composition

    report = {}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        e, x, m = validate_strain_composition(strain, X, mask, 5.0, report=report)
    return e, x, m, report, [str(v.message) for v in w]


def _expected_body(strain, X):
    """The body by the rule of design.md: finite X, holes filled where the strain is finite."""
    have = np.isfinite(X)
    holes = ndimage.binary_fill_holes(have) & ~have & np.isfinite(strain).any(axis=0)
    return have | holes


def test_real_no_false_vacuum(real):
    s, c = real
    strain, X = np.asarray(s.data, float), np.asarray(c.data, float)
    with unchanged(strain, X):
        _, x, m, rep, msgs = run_truth(_validate, strain, X)
    expect_truth(not rep["vacuum_excluded"] and np.array_equal(m, _expected_body(strain, X))
                 and np.isfinite(x[m]).all(), f"report {rep}, warnings {msgs}")


def test_real_zero_filled_composition_gets_the_same_body(real):
    s, c = real
    strain, X = np.asarray(s.data, float), np.asarray(c.data, float)
    X0 = np.nan_to_num(X, nan=0.0)
    _, _, m, rep, msgs = run_truth(_validate, strain, X0)
    want = _expected_body(strain, X)
    overlap = (m & want).sum() / want.sum()
    extra = (m & ~want).sum() / want.sum()
    expect_truth(rep["vacuum_excluded"] and overlap > 0.98 and extra < 0.02
                 and any("vacuum" in t for t in msgs),
                 f"zero-filled real map: body overlap {overlap:.3f}, extra {extra:.3f}")


def test_real_wild_pixel_is_a_failed_fit(real):
    s, c = real
    strain = np.array(s.data, float)
    iy, ix = np.argwhere(np.isfinite(strain[0]))[len(strain[0]) // 2]
    strain[0, iy, ix] = 1e6
    e, _, _, rep, _ = run_truth(_validate, strain, np.asarray(c.data, float))
    expect_truth(np.isnan(e[0, iy, ix]) and rep["n_outliers"] == 1 and strain[0, iy, ix] == 1e6,
                 "the 1e6 pixel was kept (or the input changed)")


def test_real_rebin_is_mean(real):
    s, _ = real
    r = run_truth(s.rebin, scale=(1, 5, 5))
    d = np.asarray(s.data, float)
    ny, nx = d.shape[1] // 5 * 5, d.shape[2] // 5 * 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmean(d[:, :ny, :nx].reshape(4, ny // 5, 5, nx // 5, 5), axis=(2, 4))
    expect_truth(np.allclose(np.asarray(r.data), want, equal_nan=True), "real rebin not the mean")


def test_real_composition_rebin_stays_a_fraction(real):
    _, c = real
    r = run_truth(c.rebin, scale=(5, 5))
    X = np.asarray(r.data)
    expect_truth(np.nanmin(X) >= 0 and np.nanmax(X) <= 1, f"X in [{np.nanmin(X)}, {np.nanmax(X)}]")


@pytest.mark.parametrize("method, kwargs, name", [
    ("find_dislocations", {"radius": 0}, "radius"),
    ("find_dislocations", {"exclude_border": -1}, "exclude_border"),
    ("check_conventions", {"tolerance": -1}, "tolerance"),
    ("dislocation_density", {"smoothing": -1}, "smoothing"),
    ("incompatibility", {"smoothing": np.nan}, "smoothing"),
])
def test_real_bad_options(real, method, kwargs, name):
    s, _ = real
    with unchanged(s):
        expect_error(getattr(s, method), names=(name,), **kwargs)


def test_real_complex(real):
    s, c = real
    bad = s.deepcopy()
    bad.data = bad.data.astype(complex)
    expect_error(bad.learn_eigenstrain, c, names=("complex",))
