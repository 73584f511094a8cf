"""Fuzz set (issue 15): the composition-map surface and the registration's apply.

CompositionMap (summary, histogram, carried maps) under isig / crop / rebin, and
CorrelativeTransform.apply on strain fields and composition maps. Each case has
its oracle (a clear error naming the problem, or the truth the result meets).
"""

import numpy as np
import pytest
from _oracles import expect_error, expect_truth, run_truth, unchanged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperspy_chemomech.simulate import synthetic_xray_stack


@pytest.fixture(scope="module")
def comp():
    stack, truth = synthetic_xray_stack(shape=(32, 32), n_energies=40, max_drift=0.0, seed=2)
    return stack.to_optical_density().get_composition_map(truth["references"])


CARRIED = ("thickness", "uncertainty", "residual")


# ------------------------------------------------------------------ isig / crop
@pytest.mark.parametrize("name", CARRIED + ("particle_mask", "coefficients"))
def test_isig_carries(comp, name):
    part = comp.isig[3:27, 5:20]
    got = getattr(part, name)
    full = getattr(comp, name)
    g = np.asarray(getattr(got, "data", got))
    f = np.asarray(getattr(full, "data", full))
    want = f[..., 5:20, 3:27] if g.ndim == 3 else f[5:20, 3:27]
    expect_truth(g.shape == want.shape and np.array_equal(g, want, equal_nan=True),
                 f"{name} did not follow isig ({g.shape} vs {want.shape})")


@pytest.mark.parametrize("name", CARRIED + ("particle_mask",))
def test_crop_carries(comp, name):
    part = comp.deepcopy()
    part.crop(0, 4, 28)
    part.crop(1, 2, 30)
    g = np.asarray(getattr(getattr(part, name), "data", getattr(part, name)))
    f = np.asarray(getattr(getattr(comp, name), "data", getattr(comp, name)))
    expect_truth(np.array_equal(g, f[2:30, 4:28], equal_nan=True), f"{name} did not follow crop")


def test_isig_calibrated_values(comp):
    ax = comp.axes_manager.signal_axes[0]
    lo, hi = ax.axis[4], ax.axis[20]
    part = comp.isig[lo:hi, :]
    expect_truth(part.thickness.data.shape == part.data.shape, "thickness shape after isig")


def test_summary_after_isig(comp):
    part = comp.isig[0:16, :]
    out = run_truth(part.summary)
    v = np.asarray(comp.data)[:, :16]
    v = v[np.isfinite(v)]
    expect_truth(out["n_pixels"] == v.size and np.isclose(out["mean"], v.mean()),
                 f"summary after isig: {out}")


# ------------------------------------------------------------------------- rebin
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=st.sampled_from([(2, 2), (4, 4), (2, 1), (1, 4), (8, 8)]))
def test_rebin_is_mean_and_stays_a_fraction(comp, f):
    fx, fy = f
    r = comp.rebin(scale=(fx, fy))
    X = np.asarray(comp.data)
    blocks = X.reshape(32 // fy, fy, 32 // fx, fx)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmean(blocks, axis=(1, 3))
    got = np.asarray(r.data)
    expect_truth(np.allclose(got, want, equal_nan=True) and np.nanmax(got) <= 1.0
                 and np.nanmin(got) >= 0.0, f"rebin {f}: not the mean or X outside [0, 1]")


def test_rebin_carried_maps(comp):
    r = comp.rebin(scale=(2, 2))
    th = np.asarray(comp.metadata.Chemomech.composition_maps.thickness)
    un = np.asarray(comp.metadata.Chemomech.composition_maps.uncertainty)
    mask = np.asarray(r.particle_mask)
    want_th = np.nanmean(th.reshape(16, 2, 16, 2), axis=(1, 3))
    full = np.isfinite(un).reshape(16, 2, 16, 2).all(axis=(1, 3))
    want_un = np.sqrt(np.sum(un.reshape(16, 2, 16, 2) ** 2, axis=(1, 3))) / 4
    ok = (np.allclose(r.thickness.data, want_th, equal_nan=True)
          and np.allclose(np.asarray(r.uncertainty.data)[full], want_un[full])
          and np.array_equal(mask, np.isfinite(np.asarray(r.data)))
          and r.coefficients.data.shape[-2:] == (16, 16))
    expect_truth(ok, "carried maps did not follow rebin (mean thickness, sigma of the mean)")


def test_rebin_integer_map_is_mean():
    import hyperspy.api as hs

    X = np.zeros((8, 8), int)
    X[:, 4:] = 1
    X[:, 3] = 1
    s = hs.signals.Signal2D(X)
    s.set_signal_type("composition_map")
    r = s.rebin(scale=(2, 2))
    expect_truth(np.allclose(np.asarray(r.data)[0], [0, 0.5, 1, 1]), f"{np.asarray(r.data)[0]}")


def test_plain_map_has_no_thickness():
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.full((8, 8), 0.5))
    s.set_signal_type("composition_map")
    expect_error(getattr, s, "thickness", exc=(AttributeError,), names=("thickness",))


def test_summary_all_nan():
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.full((8, 8), np.nan))
    s.set_signal_type("composition_map")
    expect_error(s.summary, names=(("no finite", "particle"),))


# ------------------------------------------------------- CorrelativeTransform.apply
@pytest.fixture(scope="module")
def grids():
    from hyperspy_chemomech.simulate.particle import make_particle

    p = make_particle(shape=(30, 40), noise=1e-4)
    return p.strain_field(), p.composition_map()


def _tr(angle=0.0, shift=(0.0, 0.0)):
    from hyperspy_chemomech.registration import CorrelativeTransform

    c, s = np.cos(angle), np.sin(angle)
    m = np.array([[c, -s, shift[1]], [s, c, shift[0]], [0, 0, 1.0]])
    return CorrelativeTransform(m)


def test_apply_three_component_strain(grids):
    strain, _ = grids
    import hyperspy.api as hs

    s3 = hs.signals.Signal2D(np.asarray(strain.data)[:3])
    s3.set_signal_type("strain_field")
    for ax, a0 in zip(s3.axes_manager.signal_axes, strain.axes_manager.signal_axes):
        ax.scale, ax.units, ax.offset = a0.scale, a0.units, a0.offset
    expect_error(_tr(0.3).apply, s3, strain, names=("4 components",))


@pytest.mark.parametrize("order", [-1, 6, 7, 2.5, "cubic"])
def test_apply_bad_order(grids, order):
    strain, comp = grids
    expect_error(_tr().apply, comp, strain, order=order, names=("order",))


def test_apply_onto_not_a_signal(grids):
    expect_error(_tr().apply, grids[1], np.zeros((30, 40)), names=("onto",))


def test_apply_complex(grids):
    c = grids[1].deepcopy()
    c.data = np.asarray(c.data).astype(complex)
    expect_error(_tr().apply, c, grids[0], names=("complex",))


def test_apply_no_overlap(grids):
    expect_error(_tr(0.0, (1e5, 1e5)).apply, grids[1], grids[0], names=("overlap",))


def test_apply_uncalibrated(grids):
    c = grids[1].deepcopy()
    for ax in c.axes_manager.signal_axes:
        ax.units = "<undefined>"
    expect_error(_tr().apply, c, grids[0], names=("calibration",))


def test_apply_identity_keeps_strain(grids):
    strain, _ = grids
    with unchanged(strain):
        out = run_truth(_tr().apply, strain, strain)
    expect_truth(np.allclose(np.asarray(out.data), np.asarray(strain.data), equal_nan=True,
                             atol=1e-12), "identity transform changed the strain")


def test_apply_carries_composition_maps(comp):
    """A composition map resampled onto another grid brings its thickness and mask along."""
    import hyperspy.api as hs

    target = hs.signals.Signal2D(np.zeros((20, 24)))
    for ax, a0 in zip(target.axes_manager.signal_axes, comp.axes_manager.signal_axes):
        ax.scale, ax.units, ax.offset = a0.scale * 1.5, a0.units, a0.offset
    out = run_truth(_tr().apply, comp, target)
    ok = (out.thickness.data.shape == (20, 24) and out.particle_mask.shape == (20, 24)
          and out.uncertainty.data.shape == (20, 24))
    expect_truth(ok, "carried maps left on the source grid after apply")


def test_apply_rotation_drops_variance_with_note(grids):
    import hyperspy.api as hs

    strain = grids[0].deepcopy()
    strain.metadata.set_item("Signal.Noise_properties.variance",
                             hs.signals.Signal2D(np.full(strain.data.shape, 1e-8)))
    out = run_truth(_tr(0.2).apply, strain, grids[0])
    expect_truth(not out.metadata.has_item("Signal.Noise_properties.variance")
                 and out.metadata.has_item("Chemomech.dropped.variance"),
                 "variance of turned components kept without a note")
