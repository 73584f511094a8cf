"""hcm.register on synthetic correlative pairs with known truth, and its failure modes."""

import warnings

import numpy as np
import pytest

import hyperspy.api as hs

import hyperspy_chemomech as hcm
from hyperspy_chemomech.registration import CorrelativeTransform, RegistrationWarning
from hyperspy_chemomech._metadata import set_image_axes
from hyperspy_chemomech.simulate.images import correlative_image_pair, registration_error

SHAPE = (90, 180)  # half the benchmark size keeps the suite fast (not for accuracy targets)


def _rot_err(a, b):
    return abs((a.rotation - b.rotation + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def pair():
    return correlative_image_pair(shape=SHAPE, seed=7, coarsening=3.0, mirror=True,
                                  contrast="inverted")


def test_small_benchmark_set():
    """The benchmark's criteria on its first six random cases (benchmarks/registration.py)."""
    mean_err, worst = [], 0.0
    for seed in range(1000, 1006):
        p = correlative_image_pair(shape=(180, 360), seed=seed)  # as the benchmark draws them
        with warnings.catch_warnings():
            warnings.simplefilter("error", RegistrationWarning)  # a confident answer
            tr = hcm.register(p.moving, p.fixed)
        e = registration_error(tr, p)
        mean_err.append(e.mean())
        worst = max(worst, e.max())
        assert tr.reflection == p.transform.reflection
        assert _rot_err(tr, p.transform) <= 0.5
    assert np.median(mean_err) <= 0.3
    assert worst <= 1.5


def test_result_readout_log_and_dict(pair):
    tr = hcm.register(pair.moving, pair.fixed)
    assert 0 < tr.score <= 1
    stages = [e["stage"] for e in tr.log]
    assert stages[0] == "masks" and "rotation search" in stages and stages[-1] == "result"
    assert "polish" in stages
    back = CorrelativeTransform.from_dict(tr.to_dict())
    assert np.allclose(back.matrix, tr.matrix) and back.score == tr.score
    assert [e["stage"] for e in back.log] == stages
    fig = tr.plot()
    assert len(fig.axes) >= 2


def test_apply_composition_onto_stem_grid(pair):
    tr = hcm.register(pair.moving, pair.fixed)
    comp = tr.apply(pair.composition, onto=pair.fixed)
    assert type(comp) is type(pair.composition)
    assert comp.data.shape == pair.fixed.data.shape
    truth = pair.composition_truth
    both = np.isfinite(comp.data) & np.isfinite(truth)
    # the coarse map covers the particle and matches the true composition where both exist
    assert both.sum() > 0.9 * pair.particle.sum()
    assert np.corrcoef(comp.data[both], truth[both])[0, 1] > 0.8
    assert np.isnan(comp.data[~pair.particle]).mean() > 0.95
    src = comp.metadata.Chemomech.registration.source_pixel_size_nm
    assert src == pytest.approx(pair.moving.axes_manager[0].scale * tr.scale)


@pytest.mark.parametrize("metric", ["correlation", "mutual_information"])
def test_metrics_both_work(metric):
    p = correlative_image_pair(shape=SHAPE, seed=11, contrast="linear", mirror=False,
                               coarsening=4.0)
    tr = hcm.register(p.moving, p.fixed, metric=metric)
    assert not tr.reflection
    assert tr.scale == pytest.approx(p.transform.scale, rel=0.005)
    assert registration_error(tr, p).mean() < 0.5


def test_affine_model_recovers_shear(rng):
    # same-modality pair with a known affine map (shear + anisotropic scale)
    from hyperspy_chemomech.registration._resample import resample
    from hyperspy_chemomech.registration._signals import grid_of

    p = correlative_image_pair(shape=SHAPE, seed=5, n_blobs=0, coarsening=1.0, noise=0.0)
    fixed = p.fixed
    gf = grid_of(fixed)
    m = np.eye(3)
    m[:2, :2] = [[1.06, 0.08], [-0.03, 0.95]]
    c = gf.centres_xy(p.particle).mean(axis=0)
    m[:2, 2] = c - m[:2, :2] @ c + [3.0, -5.0]
    moving = fixed.deepcopy()
    set_image_axes(moving, scale=2 * gf.scale[0], offset=(gf.offset[0] - 20, gf.offset[1] - 60))
    gm = grid_of(moving)
    moving = hs.signals.Signal2D(
        np.nan_to_num(resample(fixed.data, gf, gm._replace(shape=(60, 120)), np.linalg.inv(m)),
                      nan=float(np.median(fixed.data))))
    set_image_axes(moving, scale=gm.scale, offset=gm.offset)
    p2 = p._replace(moving=moving, transform=CorrelativeTransform(m))
    tr = hcm.register(moving, fixed, model="affine", allow_reflection=False)
    assert registration_error(tr, p2).max() < 1.0
    assert tr.shear == pytest.approx(CorrelativeTransform(m).shear, abs=0.02)


def test_initial_and_landmarks(pair, rng):
    truth = pair.transform
    # a start 3 degrees and ~9 fine px off (about the particle centre) converges back
    centre = truth.inverse()(np.array([[pair.fixed.axes_manager[0].offset + 90 * 4.0,
                                        pair.fixed.axes_manager[1].offset + 45 * 4.0]]))[0]
    start = truth.matrix @ CorrelativeTransform.from_parameters(
        rotation=3.0, shift=(30.0, -20.0), center=centre).matrix
    tr = hcm.register(pair.moving, pair.fixed, initial=start)
    assert registration_error(tr, pair).mean() < 0.5
    # landmarks: clicked with ~1 moving pixel of error, as the whole fit and as constraints
    mov_xy = centre + rng.uniform(-1, 1, (4, 2)) * 150
    fix_xy = truth(mov_xy) + rng.normal(0, 6.0, (4, 2))
    only = hcm.register(pair.moving, pair.fixed, landmarks=(mov_xy, fix_xy), landmarks_only=True)
    assert np.allclose(only.matrix, CorrelativeTransform.from_landmarks(mov_xy, fix_xy).matrix)
    assert only.reflection
    con = hcm.register(pair.moving, pair.fixed, landmarks={"moving": mov_xy, "fixed": fix_xy})
    assert registration_error(con, pair).mean() < min(0.5, registration_error(only, pair).mean())


def test_ambiguous_mirror_warns():
    # a centred, uniform ellipse: mirrored and not mirrored fit equally well
    yy, xx = np.indices((80, 120))
    ell = (((xx - 59.5) / 40) ** 2 + ((yy - 39.5) / 20) ** 2 < 1).astype(float)
    fixed = hs.signals.Signal2D(ell + 0.01 * np.random.default_rng(0).standard_normal(ell.shape))
    set_image_axes(fixed, scale=2.0)
    small = ell.reshape(40, 2, 60, 2).mean(axis=(1, 3)) + 0.01 * np.random.default_rng(1).standard_normal((40, 60))
    moving = hs.signals.Signal2D(small)
    set_image_axes(moving, scale=4.0)
    with pytest.warns(RegistrationWarning, match="ambiguous mirror"):
        hcm.register(moving, fixed)


def test_different_particles_warn(pair):
    other = correlative_image_pair(shape=SHAPE, seed=8)
    with pytest.warns(RegistrationWarning):
        hcm.register(pair.moving, other.fixed)


# -- bad input --------------------------------------------------------------------------

def _snapshot(*signals):
    return [(s.data.copy(), s.metadata.as_dictionary(), s.axes_manager[0].scale) for s in signals]


def _unchanged(snap, *signals):
    for (d, md, sc), s in zip(snap, signals):
        assert np.array_equal(d, s.data, equal_nan=True)
        assert md == s.metadata.as_dictionary()
        assert sc == s.axes_manager[0].scale


def test_bad_inputs_raise_and_leave_inputs_untouched(pair, rng):
    mov, fix = pair.moving, pair.fixed
    snap = _snapshot(mov, fix)

    uncal = hs.signals.Signal2D(mov.data.copy())
    with pytest.raises(ValueError, match="calibration"):
        hcm.register(uncal, fix)
    nan = fix.deepcopy()
    nan.data[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hcm.register(mov, nan)
    empty = fix.deepcopy()
    empty.data = rng.standard_normal(fix.data.shape)
    with pytest.raises(ValueError, match="no particle found in fixed"):
        hcm.register(mov, empty)
    empty_m = mov.deepcopy()
    empty_m.data = np.full(mov.data.shape, 3.0)
    with pytest.raises(ValueError, match="no particle found in moving"):
        hcm.register(empty_m, fix)
    far = CorrelativeTransform.from_parameters(shift=(1e6, 0.0)).matrix @ pair.transform.matrix
    with pytest.raises(ValueError, match="no overlap"):
        hcm.register(mov, fix, initial=far)
    with pytest.raises(TypeError):
        hcm.register(mov.data, fix)
    with pytest.raises(ValueError, match="single image"):
        hcm.register(hs.stack([mov, mov]), fix)
    with pytest.raises(ValueError, match="model"):
        hcm.register(mov, fix, model="projective")
    with pytest.raises(ValueError, match="metric"):
        hcm.register(mov, fix, metric="ssd")
    with pytest.raises(ValueError, match="shape"):
        hcm.register(mov, fix, moving_mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="landmarks"):
        hcm.register(mov, fix, landmarks=(np.zeros((3, 2)), np.zeros((2, 2))))
    with pytest.raises(ValueError, match="landmarks_only"):
        hcm.register(mov, fix, landmarks_only=True)

    hcm.register(mov, fix)  # a successful run does not touch them either
    _unchanged(snap, mov, fix)


def test_units_are_converted(pair):
    # the same moving image calibrated in µm gives the same map (in nm)
    um = pair.moving.deepcopy()
    for ax in um.axes_manager.signal_axes:
        ax.scale, ax.offset, ax.units = ax.scale / 1e3, ax.offset / 1e3, "µm"
    a = hcm.register(pair.moving, pair.fixed)
    b = hcm.register(um, pair.fixed)
    assert np.allclose(a.matrix, b.matrix, atol=1e-6)
    comp = pair.composition.deepcopy()
    for ax in comp.axes_manager.signal_axes:
        ax.scale, ax.offset, ax.units = ax.scale / 1e3, ax.offset / 1e3, "µm"
    assert np.allclose(a.apply(comp, onto=pair.fixed).data, a.apply(pair.composition, onto=pair.fixed).data,
                       equal_nan=True)


def test_explicit_masks(pair):
    from hyperspy_chemomech.registration import particle_mask

    m_mask = particle_mask(pair.moving.data)
    f_mask = pair.fixed._deepcopy_with_new_data(pair.particle.copy())  # a boolean signal
    tr = hcm.register(pair.moving, pair.fixed, moving_mask=m_mask, fixed_mask=f_mask)
    assert tr.reflection and registration_error(tr, pair).mean() < 0.3
    with pytest.raises(TypeError, match="boolean"):
        hcm.register(pair.moving, pair.fixed, moving_mask=m_mask.astype(float))


def test_order_of_images_does_not_matter(pair):
    fwd = hcm.register(pair.moving, pair.fixed)
    rev = hcm.register(pair.fixed, pair.moving)  # fine image as moving: roles swap inside
    assert rev.log[0]["stage"] == "roles swapped"
    assert np.allclose(rev.inverse().matrix, fwd.matrix)


def test_measured_like_dark_field_keeps_the_whole_particle_and_registers():
    """What the measured P1 pair taught (simulate: dark_field="bend_contours"): a flat
    background above the particle, a plateau unrelated to thickness, dark contours to
    zero along the outline. The mask must hold the whole particle, not the contours."""
    from hyperspy_chemomech.registration import particle_mask

    p = correlative_image_pair(shape=(180, 360), seed=3, coarsening=3.0,
                               dark_field="bend_contours")
    mask = particle_mask(p.fixed.data)
    assert (mask & p.particle).sum() / (mask | p.particle).sum() > 0.9
    # the dark contours are darker than anything else: the strongest class is not the particle
    assert p.fixed.data[p.particle].min() < 0.05 < np.median(p.fixed.data[p.particle])
    tr = hcm.register(p.moving, p.fixed)
    assert tr.reflection == p.transform.reflection
    e = registration_error(tr, p)
    # only the outline is shared: within one moving pixel (3 fixed px); measured 2.0
    assert np.median(e) < 3.0
    with pytest.raises(ValueError, match="dark_field"):
        correlative_image_pair(shape=SHAPE, seed=3, dark_field="nope")
