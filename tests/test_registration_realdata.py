"""hcm.register on measured image pairs (../shared/realdata): the P1 pair and LFP50_P2's images.

The P1 pair (X-ray thickness, 4D-STEM dark field with bend contours) is published as
registered to about 1 px: the identity is the truth to that accuracy. Warped copies of
the X-ray image (known rotation, mirror, coarser pixels, scale, noise) are registered
back onto the dark field; the error is measured over the dark-field particle pixels.
LFP50_P2's HAADF and FP + LFP maps share one grid: the warning thresholds, derived on
P1, are checked there.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest

import hyperspy.api as hs

import hyperspy_chemomech as hcm
from hyperspy_chemomech._metadata import set_image_axes
from hyperspy_chemomech.registration import RegistrationWarning, apply_matrix, grid_of, particle_mask
from hyperspy_chemomech.simulate import warped_image

REALDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata"
P1_XRAY = "gray_P1_xray_thickness_0_to_1.png"
P1_DF = "gray_P1_4DSTEM_DF_-2_to_1.png"
LFP50 = "LFP50_P2.mat"
PIXEL_NM = 10.0  # the files store no pixel size; any common value will do


def _need(name):
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"measured data {path} absent (the authors' files live in ../shared/realdata)")
    return path


def _signal(data, title):
    s = hs.signals.Signal2D(np.asarray(data, dtype=float))
    set_image_axes(s, scale=PIXEL_NM, offset=(0.0, 0.0))
    s.metadata.General.title = title
    return s


@pytest.fixture(scope="module")
def p1():
    from skimage import io

    xray = io.imread(_need(P1_XRAY))[..., 0]
    df = io.imread(_need(P1_DF))[..., 0]
    return _signal(xray, "P1 X-ray thickness"), _signal(df, "P1 4D-STEM dark field")


@pytest.fixture(scope="module")
def lfp50():
    from scipy.io import loadmat

    m = loadmat(_need(LFP50))
    return _signal(m["FP"] + m["LFP"], "LFP50_P2 FP + LFP"), _signal(m["HAADF"], "LFP50_P2 HAADF")


def _register(moving, fixed, **kw):
    """Register, returning the transform and the RegistrationWarnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr = hcm.register(moving=moving, fixed=fixed, **kw)
    return tr, [w for w in caught if issubclass(w.category, RegistrationWarning)]


def _error_px(matrix, truth, fixed):
    """|T_est(T_true^-1(p)) - p| over the fixed particle pixels p, in fixed px."""
    g = grid_of(fixed)
    p = g.centres_xy(particle_mask(np.asarray(fixed.data, dtype=float)))
    q = apply_matrix(np.linalg.inv(truth), p)
    return np.hypot(*(apply_matrix(matrix, q) - p).T) / g.pixel_size


def _turned(truth, moving, mirror=False, angle=np.pi):
    """``truth`` composed with a turn (and mirror) about the moving particle's centroid."""
    from hyperspy_chemomech.registration import similarity_linear

    g = grid_of(moving)
    c = g.centres_xy(particle_mask(np.asarray(moving.data, dtype=float))).mean(axis=0)
    a = np.eye(3)
    a[:2, :2] = similarity_linear(angle, 1.0, mirror)
    a[:2, 2] = c - a[:2, :2] @ c
    return truth @ a


def test_dark_field_mask_holds_the_whole_particle(p1):
    # the dark field's background is one saturated level: everything else is particle
    df = p1[1].data
    support = df != df[0, 0]
    mask = particle_mask(df)
    assert (mask & support).sum() / (mask | support).sum() > 0.95
    # and the X-ray outline covers the same area (published as registered)
    xmask = particle_mask(p1[0].data)
    assert xmask.sum() == pytest.approx(support.sum(), rel=0.03)


def test_published_p1_pair_is_near_identity_without_warning(p1):
    tr, caught = _register(*p1)
    assert not caught, [str(w.message) for w in caught]
    assert not tr.reflection
    assert abs((tr.rotation + 180.0) % 360.0 - 180.0) < 0.5
    assert tr.scale == pytest.approx(1.0, abs=0.015)
    g = grid_of(p1[1])
    c = g.centres_xy(particle_mask(p1[1].data)).mean(axis=0)
    assert np.hypot(*(apply_matrix(tr.matrix, c[None])[0] - c)) / g.pixel_size < 2.0
    assert np.median(_error_px(tr.matrix, np.eye(3), p1[1])) < 1.2


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_warped_p1_xray_registers_back(p1, seed):
    w = warped_image(p1[0], noise=0.02, seed=seed)
    tr, caught = _register(w.moving, p1[1])
    assert not caught, [str(c.message) for c in caught]
    assert tr.reflection == w.transform.reflection
    e = _error_px(tr.matrix, w.transform.matrix, p1[1])
    assert np.median(e) <= 1.2
    assert e.max() <= 3.0


def test_wrong_solution_and_other_particle_warn(p1, lfp50):
    w = warped_image(p1[0], noise=0.02, seed=1)
    # a 180-degree wrong start refined locally (no global search): must not pass quietly
    tr, caught = _register(w.moving, p1[1], initial=_turned(w.transform.matrix, w.moving))
    assert np.median(_error_px(tr.matrix, w.transform.matrix, p1[1])) > 20
    assert caught
    # the P1 X-ray image against another particle (LFP50_P2's HAADF)
    _, caught = _register(w.moving, lfp50[1])
    assert caught


@pytest.mark.parametrize("seed", [100, 103])
def test_thresholds_hold_on_lfp50_haadf_against_fp_plus_lfp(lfp50, seed):
    """Thresholds derived on P1, checked on a pair they were not derived on."""
    comp, haadf = lfp50
    w = warped_image(comp, noise=0.02, seed=seed)
    tr, caught = _register(w.moving, haadf)
    assert not caught, [str(c.message) for c in caught]
    assert tr.reflection == w.transform.reflection
    # FP/LFP were registered onto the strain grid by the authors: ~1 px agreement expected
    assert np.median(_error_px(tr.matrix, w.transform.matrix, haadf)) < 2.0
    for mirror, angle in ((False, np.pi), (True, 0.0)):
        tr, caught = _register(w.moving, haadf, initial=_turned(w.transform.matrix, w.moving,
                                                                  mirror, angle))
        assert np.median(_error_px(tr.matrix, w.transform.matrix, haadf)) > 20
        assert caught
