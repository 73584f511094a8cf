"""CorrelativeTransform, resampling, metrics, masks and landmark fits (no image registration)."""

import numpy as np
import pytest

import hyperspy.api as hs

from hyperspy_chemomech.registration import (
    CorrelativeTransform, Grid, absolute_correlation, decompose, fit_landmarks,
    mutual_information, particle_mask,
)
from hyperspy_chemomech.registration._resample import resample
from hyperspy_chemomech._metadata import set_image_axes
from hyperspy_chemomech.signals.composition_map import CompositionMap


def _signal(data, scale=2.0, offset=(0.0, 0.0), cls=hs.signals.Signal2D):
    s = cls(data)
    set_image_axes(s, scale=scale, offset=offset)
    return s


# -- transform ---------------------------------------------------------------------

def test_readout_of_mirrored_similarity():
    tr = CorrelativeTransform.from_parameters(rotation=-123.0, scale=1.7, shift=(10.0, -4.0),
                                              reflection=True)
    assert tr.reflection
    assert tr.rotation == pytest.approx(-123.0)
    assert tr.scale == pytest.approx(1.7)
    assert tr.shear == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(tr.scale_xy, (1.7, 1.7))
    # mirror means y -> -y first: the moving +y axis maps to -R(theta) e_y * scale
    t = np.deg2rad(-123.0)
    ey = tr([[0.0, 1.0]])[0] - tr([[0.0, 0.0]])[0]
    assert np.allclose(ey, -1.7 * np.array([-np.sin(t), np.cos(t)]))


def test_decompose_affine_recomposes():
    rng = np.random.default_rng(3)
    for _ in range(20):
        lin = rng.normal(size=(2, 2))
        m = np.eye(3)
        m[:2, :2] = lin
        m[:2, 2] = rng.normal(size=2)
        d = decompose(m)
        t = np.deg2rad(d["rotation_deg"])
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        sx, sy = d["scale_xy"]
        up = np.array([[sx, d["shear"] * sy], [0.0, sy]])
        f = np.diag([1.0, -1.0]) if d["reflection"] else np.eye(2)
        assert np.allclose(rot @ up @ f, lin)
        assert sx > 0 and sy > 0
        assert d["reflection"] == (np.linalg.det(lin) < 0)


def test_inverse_and_dict_roundtrip():
    tr = CorrelativeTransform.from_parameters(rotation=40.0, scale=0.5, shift=(3.0, 2.0),
                                              reflection=True)
    tr.log = [{"stage": "x", "value": np.float64(1.5)}]
    pts = np.array([[1.0, 2.0], [-5.0, 7.0]])
    assert np.allclose(tr.inverse()(tr(pts)), pts)
    back = CorrelativeTransform.from_dict(tr.to_dict())
    assert np.allclose(back.matrix, tr.matrix)
    assert back.log == [{"stage": "x", "value": 1.5}]
    assert back.reflection


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.ones((2, 2)), np.full((3, 3), np.nan),
                                 [[1, 0, 0], [0, 1, 0], [1, 0, 1]]])
def test_bad_matrices_raise(bad):
    with pytest.raises(ValueError):
        CorrelativeTransform(bad)


# -- metrics -----------------------------------------------------------------------

def test_metrics_are_sign_agnostic_and_contrast_invariant(rng):
    a = rng.random(4000)
    mi = mutual_information(a, a)
    assert mutual_information(a, -a) == pytest.approx(mi, rel=1e-6)
    assert mutual_information(a, a ** 0.5) > 0.8 * mi   # gamma changes binning only
    assert mutual_information(a, rng.random(4000)) < 0.1
    assert absolute_correlation(a, -3 * a + 1) == pytest.approx(1.0)
    assert absolute_correlation(a, rng.random(4000)) < 0.1


# -- masks ---------------------------------------------------------------------------

@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_particle_mask_either_contrast(rng, sign):
    yy, xx = np.indices((80, 120))
    truth = ((xx - 60) / 35.0) ** 2 + ((yy - 40) / 20.0) ** 2 < 1
    img = 5.0 + sign * 2.0 * truth + 0.2 * rng.standard_normal(truth.shape)
    mask = particle_mask(img)
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.95


@pytest.mark.parametrize("image", ["noise", "uniform"])
def test_particle_mask_refuses_empty_images(rng, image):
    img = rng.standard_normal((64, 64)) if image == "noise" else np.ones((64, 64))
    with pytest.raises(ValueError, match="no particle"):
        particle_mask(img)


# -- landmarks -------------------------------------------------------------------------

@pytest.mark.parametrize("reflection", [False, True])
def test_landmark_fit_recovers_similarity(rng, reflection):
    tr = CorrelativeTransform.from_parameters(rotation=200.0, scale=1.3, shift=(50.0, -20.0),
                                              reflection=reflection)
    mov = rng.uniform(-100, 100, (5, 2))
    m = fit_landmarks(mov, tr(mov))
    assert np.allclose(m, tr.matrix)
    # not allowed to mirror: the best proper rotation instead, never a reflection
    m2 = fit_landmarks(mov, tr(mov), allow_reflection=False)
    assert np.linalg.det(m2[:2, :2]) > 0


def test_landmark_fit_affine_and_errors(rng):
    m = np.array([[1.1, 0.2, 5.0], [-0.1, 0.9, -3.0], [0, 0, 1]])
    mov = rng.uniform(-50, 50, (4, 2))
    fix = mov @ m[:2, :2].T + m[:2, 2]
    assert np.allclose(fit_landmarks(mov, fix, model="affine"), m)
    with pytest.raises(ValueError, match="3 non-collinear"):
        fit_landmarks(mov[:2], fix[:2], model="affine")
    with pytest.raises(ValueError, match="landmarks"):
        CorrelativeTransform.from_landmarks(mov, fix[:3])


# -- resampling --------------------------------------------------------------------------

def test_identity_and_integer_shift(rng):
    g = Grid((20, 30), (2.0, 2.0), (10.0, -4.0))
    data = rng.random((20, 30))
    assert np.allclose(resample(data, g, g, np.eye(3)), data)
    shift = np.eye(3)
    shift[0, 2] = 2 * 3.0  # 3 px along +x
    out = resample(data, g, g, shift)
    assert np.allclose(out[:, 3:], data[:, :-3])
    assert np.isnan(out[:, :3]).all()


def test_area_averaging_to_a_coarser_grid(rng):
    fine = Grid((40, 60), (1.0, 1.0), (0.0, 0.0))
    coarse = Grid((20, 30), (2.0, 2.0), (0.5, 0.5))  # pixel (0,0) covers fine 0..1
    data = rng.random((40, 60))
    out = resample(data, fine, coarse, np.eye(3))
    blocks = data.reshape(20, 2, 30, 2).mean(axis=(1, 3))
    assert np.allclose(out, blocks)


def test_nan_aware_and_boolean(rng):
    g = Grid((40, 40), (1.0, 1.0), (0.0, 0.0))
    yy, xx = np.indices((40, 40))
    inside = (xx - 20) ** 2 + (yy - 20) ** 2 < 15 ** 2
    comp = np.where(inside, 0.2 + 0.6 * rng.random((40, 40)), np.nan)
    tr = CorrelativeTransform.from_parameters(rotation=33.0, center=(20.0, 20.0), shift=(0.3, -0.7))
    out = resample(comp, g, g, tr.matrix)
    ok = np.isfinite(out)
    # NaN never leaks in, values never leave the data's range, the outline moves with the map
    assert 0.2 <= np.nanmin(out) and np.nanmax(out) <= 0.8
    mask_out = resample(inside, g, g, tr.matrix)
    assert mask_out.dtype == bool
    assert abs(int(mask_out.sum()) - int(inside.sum())) < 0.03 * inside.sum()
    assert (ok ^ mask_out).sum() < 0.05 * inside.sum()


def test_apply_keeps_class_records_metadata_and_leaves_input(tmp_path, rng):
    comp = _signal(np.where(rng.random((30, 30)) > 0.1, rng.random((30, 30)), np.nan),
                   scale=8.0, offset=(100.0, -50.0), cls=CompositionMap)
    before = comp.data.copy()
    target = _signal(np.zeros((100, 120)), scale=2.0, offset=(60.0, -120.0))
    tr = CorrelativeTransform.from_parameters(rotation=10.0, scale=1.05, reflection=True,
                                              center=(0.0, 200.0))
    out = tr.apply(comp, onto=target)
    assert isinstance(out, CompositionMap)
    assert out.data.shape == (100, 120)
    assert out.axes_manager.signal_axes[0].scale == 2.0
    assert np.array_equal(comp.data, before, equal_nan=True)
    assert not comp.metadata.has_item("Chemomech.registration")
    node = out.metadata.Chemomech.registration
    assert node.source_pixel_size_nm == pytest.approx(8.0 * 1.05)
    assert np.allclose(CorrelativeTransform.from_metadata(out).matrix, tr.matrix)
    out.save(tmp_path / "c.hspy")
    back = hs.load(tmp_path / "c.hspy")
    assert isinstance(back, CompositionMap)
    assert np.allclose(CorrelativeTransform.from_metadata(back).matrix, tr.matrix)


def test_apply_navigation_stack_and_roundtrip(rng):
    from scipy import ndimage

    base = ndimage.gaussian_filter(rng.standard_normal((4, 60, 60)), (0, 6, 6))
    stack = hs.signals.Signal2D(base)
    set_image_axes(stack, scale=3.0)
    coarse = _signal(np.zeros((30, 30)), scale=6.0, offset=(1.5, 1.5))  # 2x2 blocks
    tr = CorrelativeTransform.from_parameters(rotation=0.0)
    down = tr.apply(stack, onto=coarse)
    assert down.data.shape == (4, 30, 30)
    assert down.metadata.Chemomech.registration.source_pixel_size_nm == pytest.approx(3.0)
    # area averaging of aligned 2x2 blocks
    assert np.allclose(down.data, base.reshape(4, 30, 2, 30, 2).mean(axis=(2, 4)))
    up = tr.inverse().apply(down, onto=stack)
    # the coarsest resolution the data went through is what is recorded
    assert up.metadata.Chemomech.registration.source_pixel_size_nm == pytest.approx(6.0)
    ok = np.isfinite(up.data)
    assert np.corrcoef(up.data[ok], base[ok])[0, 1] > 0.95


def test_apply_errors():
    s = _signal(np.ones((10, 10)))
    far = _signal(np.zeros((10, 10)), offset=(1e5, 1e5))
    tr = CorrelativeTransform(np.eye(3))
    with pytest.raises(ValueError, match="no overlap"):
        tr.apply(s, onto=far)
    with pytest.raises(TypeError):
        tr.apply(s, onto=np.zeros((10, 10)))
    uncal = hs.signals.Signal2D(np.ones((10, 10)))
    with pytest.raises(ValueError, match="calibration"):
        tr.apply(uncal, onto=s)
    with pytest.raises(ValueError, match="order"):
        tr.apply(s, onto=s, order=7)


def test_apply_lazy_signal_gives_same_class_in_memory(rng):
    comp = _signal(rng.random((20, 20)), scale=4.0, cls=CompositionMap).as_lazy()
    target = _signal(np.zeros((40, 40)), scale=2.0)
    out = CorrelativeTransform(np.eye(3)).apply(comp, onto=target)
    assert isinstance(out, CompositionMap) and not getattr(out, "_lazy", False)
    assert np.isfinite(out.data[1:-1, 1:-1]).all()


def test_landmark_picker_logic():
    import matplotlib.pyplot as plt
    from types import SimpleNamespace

    from hyperspy_chemomech.registration._pick import LandmarkPicker

    fig, (am, af) = plt.subplots(1, 2)
    picker = LandmarkPicker(am, af, 2)

    def click(ax, x, y, button=1):
        picker.on_click(SimpleNamespace(inaxes=ax, xdata=x, ydata=y, button=button))

    click(am, 1.0, 2.0)
    click(af, 10.0, 20.0)
    click(am, 9.0, 9.0)
    click(am, None, None)          # outside the image: ignored
    click(am, 0.0, 0.0, button=3)  # right click removes the last moving point
    with pytest.raises(ValueError, match="stopped early"):
        picker.result()
    click(am, 3.0, 4.0)
    click(af, 30.0, 40.0)
    mov, fix = picker.result()
    assert np.allclose(mov, [[1, 2], [3, 4]]) and np.allclose(fix, [[10, 20], [30, 40]])
    plt.close(fig)


@pytest.mark.parametrize("reflection", [False, True])
def test_strain_field_components_turn_with_the_frame(reflection):
    import hyperspy_chemomech as hcm

    e = np.array([0.01, -0.02, 0.005, 0.003])
    s = hcm.StrainField(np.broadcast_to(e[:, None, None], (4, 20, 20)).copy())
    set_image_axes(s, scale=1.0)
    tr = CorrelativeTransform.from_parameters(rotation=90.0, reflection=reflection,
                                              center=(9.5, 9.5))
    out = tr.apply(s, onto=s)
    c = out.data[:, 10, 10]
    # x -> y (rotation by 90 deg after an optional y-mirror): e11 <-> e22
    assert c[0] == pytest.approx(e[1]) and c[1] == pytest.approx(e[0])
    assert c[2] == pytest.approx(e[2] if reflection else -e[2])
    assert c[3] == pytest.approx(-e[3] if reflection else e[3])
    assert out.metadata.Chemomech.registration.strain_components_rotated
