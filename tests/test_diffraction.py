"""4D-STEM -> StrainField without pyxem: conventions, accuracy, reference, bad input."""

import numpy as np
import pytest

import hyperspy.api as hs

import hyperspy_chemomech as hcm
from hyperspy_chemomech.diffraction import strain_from_diffraction
from hyperspy_chemomech.diffraction._disk_detection import DiskFinder, disk_image
from hyperspy_chemomech.diffraction._lattice_fit import (displacement_gradient, fit_lattice,
                                                         reduce_basis)
from hyperspy_chemomech.fields import components_from_gradient, gradient_from_components
from hyperspy_chemomech.simulate import synthetic_4dstem


@pytest.fixture(scope="module")
def small():
    """A small noisy dataset shared by the quick tests."""
    return synthetic_4dstem(scan_shape=(12, 12), detector_shape=(96, 96), signal_type="",
                            seed=3)


def _inside(sf, truth):
    m = truth["mask"]
    return sf.data[:, m], truth["components"][:, m]


# -- numerics ---------------------------------------------------------------------
def test_reduce_basis():
    b = reduce_basis([0.1, 0.0], [0.3, 0.12])
    np.testing.assert_allclose(b, [[0.1, 0.0], [0.0, 0.12]], atol=1e-12)
    b = reduce_basis([-0.1, 0.0], [0.0, -0.12])  # canonical sign, right-handed
    assert b[0, 0] > 0 and b[0, 0] * b[1, 1] - b[0, 1] * b[1, 0] > 0
    with pytest.raises(ValueError, match="collinear"):
        reduce_basis([1.0, 0.0], [2.0, 0.0])


def test_gradient_round_trip_and_exact_inverse(rng):
    comps = rng.normal(0, 0.03, (4, 3, 5))
    H = gradient_from_components(*comps)
    np.testing.assert_allclose(components_from_gradient(H), comps, atol=1e-15)
    M_ref = np.array([[0.1, -0.02], [0.03, 0.12]])
    M = np.swapaxes(np.linalg.inv(np.eye(2) + H), -1, -2) @ M_ref  # g = F^-T g_ref
    np.testing.assert_allclose(displacement_gradient(M, M_ref), H, atol=1e-12)


def test_fit_lattice_recovers_offset_and_fails_cleanly(rng):
    M = np.array([[10.0, 1.0], [-2.0, 12.0]])
    c = np.array([0.7, -1.3])
    hk = np.array([(h, k) for h in range(-2, 3) for k in range(-2, 3)], float)
    p = hk @ M.T + c
    out = fit_lattice(p, np.ones(len(p)), M + 0.3, c + 0.4)
    np.testing.assert_allclose(out[:4], M.ravel(), atol=1e-10)
    np.testing.assert_allclose(out[4:6], c, atol=1e-10)
    assert out[11] == len(p)
    # collinear disks do not determine a 2D lattice: NaN, not a guess
    line = np.array([[0, 0], [1, 0], [2, 0], [-1, 0]], float) @ M.T
    assert np.isnan(fit_lattice(line, np.ones(4), M, np.zeros(2))[:4]).all()
    assert np.isnan(fit_lattice(p[:2], np.ones(2), M, c)[:4]).all()


def test_template_match_equals_skimage(rng):
    """Our cached-FFT match is skimage's match_template (what pyxem's template_match_disk runs)."""
    from skimage.feature import match_template

    img = rng.poisson(disk_image((70, 64), rng.uniform(8, 56, (6, 2)), 3.0, 5.0)).astype(float)
    finder = DiskFinder(img.shape, 3.0)
    want = match_template(img, finder.template, pad_input=True)
    np.testing.assert_allclose(finder.match(img), want, atol=1e-9)
    with pytest.raises(ValueError, match="detector"):
        finder.match(img[:10])


def test_disk_finder_subpixel():
    centers = np.array([[30.3, 40.6], [60.75, 20.2]])
    img = disk_image((96, 96), centers, 3.0, [5.0, 2.0])
    pos, counts = DiskFinder(img.shape, 3.0).find(img)
    order = np.argsort(pos[:, 0])
    np.testing.assert_allclose(pos[order], centers, atol=0.02)
    assert counts[order][0] > counts[order][1]


# -- conventions, pinned on hand-built patterns ----------------------------------------
def _hand_built(e, phi, shape=(4, 6), det=96, k=0.005, radius=2.5):
    """Left half: reference lattice; right half: expanded by `e` along a1, rotated by `phi`.

    Real space: a1 = a (1 + e) (cos phi, sin phi), a2 = b (-sin phi, cos phi), so the
    reciprocal vectors (a rectangular lattice) are g1 = (cos phi, sin phi) / (a (1 + e)),
    g2 = (-sin phi, cos phi) / b. Detector column = kx, row = ky (y points down the
    rows, like the scan).
    """
    a, b = 10.0, 8.0
    ny, nx = shape
    data = np.zeros((ny, nx, det, det))
    c0 = (det - 1) / 2
    for iy in range(ny):
        for ix in range(nx):
            ee, ph = (e, phi) if ix >= nx // 2 else (0.0, 0.0)
            g1 = np.array([np.cos(ph), np.sin(ph)]) / (a * (1 + ee))
            g2 = np.array([-np.sin(ph), np.cos(ph)]) / b
            pts = [(0.0, 0.0)] + [h * g1 + kk * g2 for h in range(-4, 5) for kk in range(-4, 5)
                                  if (h, kk) != (0, 0)]
            rc = [(c0 + gy / k, c0 + gx / k) for gx, gy in pts]
            data[iy, ix] = disk_image((det, det), rc, radius) * 100
    dp = hs.signals.Signal2D(data)
    for ax, n in zip(dp.axes_manager.navigation_axes, "xy"):
        ax.name, ax.units, ax.scale = n, "nm", 1.5
    for ax in dp.axes_manager.signal_axes:
        ax.units, ax.scale, ax.offset = "1/Å", k, -c0 * k
    F = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]]) @ np.diag([1 + e, 1])
    return dp, components_from_gradient(F - np.eye(2))


@pytest.mark.parametrize("e, phi", [(0.01, 0.005), (-0.008, -0.004)])
def test_signs_on_hand_built_patterns(e, phi):
    dp, expected = _hand_built(e, phi)
    sf = strain_from_diffraction(dp, reference=((0, 4), (0, 3)), disk_radius=2.5)
    right = sf.data[:, :, 3:].reshape(4, -1)
    left = sf.data[:, :, :3].reshape(4, -1)
    np.testing.assert_allclose(left, 0.0, atol=5e-5)
    # noise-free, so what is left is the centroid's pixelation bias (~0.01 px per
    # disk, ~1e-4 in strain); the signals are 50-100 times larger
    for i in range(4):
        np.testing.assert_allclose(right[i], expected[i], atol=3e-4)
    # a real-space expansion along x is a positive e11 (the disks moved inward)
    assert np.sign(right[0]).tolist() == [np.sign(e)] * right.shape[1]
    # a lattice turned from +x toward +y (down the rows) is a positive theta
    assert np.sign(right[3]).tolist() == [np.sign(phi)] * right.shape[1]


# -- the Must-show figure: synthetic particle, dose 1e4, Poisson -------------------
def test_synthetic_particle_accuracy():
    dp, truth = synthetic_4dstem(scan_shape=(20, 20), dose=1e4, signal_type="", seed=1)
    sf = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=2.0)
    assert isinstance(sf, hcm.StrainField)
    m = truth["mask"]
    assert np.isfinite(sf.data[:, m]).all()  # every particle pattern fitted
    assert np.isnan(sf.data[:, ~m]).all()  # vacuum: no lattice, NaN
    got, want = _inside(sf, truth)
    err = got - want
    strain_rms = np.sqrt(np.mean(err[:3] ** 2))
    theta_rms = np.sqrt(np.mean(err[3] ** 2))
    assert strain_rms <= 5e-4, strain_rms
    assert theta_rms <= 1e-3, theta_rms
    assert np.abs(err[3]).max() <= 1e-3  # every pixel within 1 mrad
    # right signs and scale: each map follows its truth (amplitudes 2e-3 .. 5e-3)
    for i in range(4):
        slope = np.sum(got[i] * want[i]) / np.sum(want[i] ** 2)
        assert 0.9 < slope < 1.1, (i, slope)
    # the per-pixel variance predicts the actual scatter
    var = sf.metadata.Signal.Noise_properties.variance.data[:, m]
    ratio = np.mean(err**2, axis=1) / np.mean(var, axis=1)
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
    # calibration and metadata
    assert [ax.scale for ax in sf.axes_manager.signal_axes] == [2.0, 2.0]
    md = sf.metadata.Chemomech.strain_from_diffraction
    assert np.isclose(md.crystal_angle, truth["crystal_angle"], atol=2e-3)
    # the same angle in the frame node that learning and decomposition read
    frame = sf.metadata.Chemomech.frame
    assert np.isclose(np.cos(2 * (frame.crystal_angle - truth["crystal_angle"])), 1, atol=1e-5)
    assert frame.source.startswith("diffraction")
    # the median of ~50 reference pixels, each good to ~4e-4 relative
    np.testing.assert_allclose(md.reference_lattice.T, truth["basis"], atol=6e-5)


def test_diffuse_background():
    """30 % of the electrons in a halo: the ring-median background keeps centroids unbiased."""
    dp, truth = synthetic_4dstem(scan_shape=(20, 20), signal_type="", seed=1, background=0.3)
    sf = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=2.0)
    got, want = _inside(sf, truth)
    err = got - want
    assert np.sqrt(np.mean(err[:3] ** 2)) <= 6e-4  # 3.3e-4 without the halo
    for i in range(4):
        slope = np.sum(got[i] * want[i]) / np.sum(want[i] ** 2)
        assert 0.9 < slope < 1.1, (i, slope)
    # the variance stays an honest (slightly conservative) error bar
    var = sf.metadata.Signal.Noise_properties.variance.data[:, truth["mask"]]
    ratio = np.mean(err**2, axis=1) / np.mean(var, axis=1)
    assert np.all((ratio > 0.4) & (ratio < 1.6)), ratio


def test_scan_rotation_and_flip():
    kw = dict(scan_shape=(10, 10), detector_shape=(96, 96), signal_type="", seed=5,
              amplitude=1e-2, dose=1e5)
    dp, truth = synthetic_4dstem(scan_rotation=0.5, flip=True, **kw)
    ref = truth["reference_mask"]
    sf = strain_from_diffraction(dp, reference=ref, disk_radius=2.0, scan_rotation=0.5,
                                 flip=True)
    got, want = _inside(sf, truth)
    assert np.sqrt(np.mean((got - want) ** 2)) < 5e-4
    wrong = strain_from_diffraction(dp, reference=ref, disk_radius=2.0)
    got, _ = _inside(wrong, truth)
    assert np.sqrt(np.mean((got - want) ** 2)) > 2e-3


def test_descan_lazy_equals_eager():
    dp, truth = synthetic_4dstem(scan_shape=(10, 10), detector_shape=(96, 96),
                                 beam_shift=4.0, signal_type="", seed=2)
    eager = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=2.0)
    lazy = strain_from_diffraction(dp.as_lazy(), reference=truth["reference_mask"],
                                   disk_radius=2.0, show_progressbar=True)
    np.testing.assert_array_equal(eager.data, lazy.data)
    got, want = _inside(eager, truth)
    assert np.sqrt(np.mean((got - want) ** 2)) < 1e-3  # descan absorbed by the fit
    centers = eager.metadata.Chemomech.strain_from_diffraction.beam_center
    m = truth["mask"]
    # the fitted beam position moves across the scan by the simulated descan (in 1/Å)
    k = dp.axes_manager.signal_axes[0].scale
    span = np.nanmax(centers[..., 0][m]) - np.nanmin(centers[..., 0][m])
    assert 2.0 < span / k < 4.5


# -- reference region and basis ---------------------------------------------------
def test_reference_forms_agree(small):
    dp, truth = small
    region = ((3, 8), (2, 5))
    mask = np.zeros((12, 12), bool)
    mask[3:8, 2:5] = True
    a = strain_from_diffraction(dp, reference=region, disk_radius=2.0)
    b = strain_from_diffraction(dp, reference=mask, disk_radius=2.0)
    c = strain_from_diffraction(dp, reference=(slice(3, 8), slice(2, 5)), disk_radius=2.0)
    roi = hs.roi.RectangularROI(left=2 * 2.0, right=5 * 2.0, top=3 * 2.0, bottom=8 * 2.0)
    d = strain_from_diffraction(dp, reference=roi, disk_radius=2.0)
    for other in (b, c, d):
        np.testing.assert_array_equal(a.data, other.data)
    one = strain_from_diffraction(dp, reference=(5, 3), disk_radius=2.0)  # one pattern
    np.testing.assert_allclose(one.data[:, 5, 3], 0.0, atol=1e-12)
    # median over the region is zero by construction
    np.testing.assert_allclose(np.median(a.data[:, mask], axis=1)[:2], 0.0, atol=1e-4)
    e = strain_from_diffraction(dp, disk_radius=2.0)  # "median" of the whole particle
    assert not np.allclose(e.data[:, truth["mask"]], a.data[:, truth["mask"]])


def test_given_basis_matches_automatic(small):
    dp, truth = small
    auto = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=2.0)
    g = auto.metadata.Chemomech.strain_from_diffraction.reference_lattice.T
    # a different but equivalent basis (g2 + g1, -g1) indexes the same disks
    given = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=2.0,
                                    basis=[g[1] + g[0], -g[0]])
    # the same disks are fitted; only the element-wise median of the reference
    # lattice (not basis-invariant) differs, which shifts every pixel alike
    np.testing.assert_array_equal(np.isnan(given.data), np.isnan(auto.data))
    diff = (given.data - auto.data)[:, truth["mask"]]
    assert np.abs(diff).max() < 3e-4
    assert np.ptp(diff, axis=1).max() < 5e-6


def test_public_names_resolve():
    assert hcm.strain_from_diffraction is strain_from_diffraction
    assert hcm.io.load_correlative_mat.__module__ == "hyperspy_chemomech.io.strain_files"
    assert hcm.simulate.synthetic_4dstem is synthetic_4dstem
    assert hcm.diffraction.from_pyxem.__name__ == "from_pyxem"


def test_synthetic_4dstem_truth():
    dp, truth = synthetic_4dstem(scan_shape=(8, 8), detector_shape=(64, 64), noise=False,
                                 signal_type="")
    assert dp.data.shape == (8, 8, 64, 64)
    np.testing.assert_allclose(dp.data.sum(axis=(2, 3)), 1e4, rtol=1e-5)
    m = truth["mask"]
    assert np.isnan(truth["components"][:, ~m]).all()
    assert np.all(truth["components"][:, truth["reference_mask"]] == 0)
    # a vacuum pattern holds the direct beam only
    vac = dp.data[0, 0]
    assert np.count_nonzero(vac) < 40


# -- bad input --------------------------------------------------------------------
def test_bad_input(small):
    dp, truth = small
    with pytest.raises(ValueError, match="disk_radius"):
        strain_from_diffraction(dp, disk_radius=-1.0)
    with pytest.raises(ValueError, match="disk_radius"):
        strain_from_diffraction(dp, disk_radius=np.nan)
    with pytest.raises(ValueError, match="outside the scan"):
        strain_from_diffraction(dp, reference=((10, 20), (0, 3)), disk_radius=2.0)
    with pytest.raises(ValueError, match="reference region x 12:13 lies outside the scan"):
        strain_from_diffraction(dp, reference=(5, 12), disk_radius=2.0)
    with pytest.raises(ValueError, match="outside the scan"):
        roi = hs.roi.RectangularROI(left=100, right=120, top=0, bottom=4)
        strain_from_diffraction(dp, reference=roi, disk_radius=2.0)
    with pytest.raises(ValueError, match="shape"):
        strain_from_diffraction(dp, reference=np.ones((3, 3), bool), disk_radius=2.0)
    with pytest.raises(TypeError, match="reference"):
        strain_from_diffraction(dp, reference=np.ones((12, 12)), disk_radius=2.0)
    with pytest.raises(ValueError, match="collinear"):
        strain_from_diffraction(dp, disk_radius=2.0, basis=[[0.1, 0], [0.2, 0]])
    uncal = dp.deepcopy()
    uncal.axes_manager.navigation_axes[1].units = "<undefined>"
    with pytest.raises(ValueError, match="scan axis 'y' has no length calibration"):
        strain_from_diffraction(uncal, disk_radius=2.0)
    with pytest.raises(ValueError, match="2 navigation"):
        strain_from_diffraction(dp.inav[0], disk_radius=2.0)
    blank = dp.deepcopy()
    blank.data[:] = 0
    with pytest.raises(ValueError, match="no Bragg disks found"):
        strain_from_diffraction(blank, disk_radius=2.0)
    # only the direct beam: disks exist, but no lattice anywhere
    beam_only = dp.deepcopy()
    beam_only.data[:] = dp.data[0, 0]
    with pytest.raises(ValueError, match="no Bragg disks found|Bragg disk"):
        strain_from_diffraction(beam_only, disk_radius=2.0)
    # the reference region lies in vacuum: nothing to compare with
    vac = np.zeros((12, 12), bool)
    vac[0, 0] = True
    with pytest.raises(ValueError, match="reference region|Bragg disk"):
        strain_from_diffraction(dp, reference=vac, disk_radius=2.0)


# -- disk radius from the data, chunking, the window fit ------------------------------
@pytest.mark.parametrize("radius", [1.5, 2.5, 3.5])
def test_disk_radius_estimated_when_not_given(radius):
    dp, truth = synthetic_4dstem(scan_shape=(8, 8), detector_shape=(96, 96), signal_type="",
                                 disk_radius=radius, beam_shift=3.0, seed=4)
    sf = strain_from_diffraction(dp, reference=truth["reference_mask"])
    md = sf.metadata.Chemomech.strain_from_diffraction
    assert md.disk_radius_estimated
    assert abs(md.disk_radius - radius) < 0.15, md.disk_radius
    given = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=radius)
    assert not given.metadata.Chemomech.strain_from_diffraction.disk_radius_estimated
    got, want = _inside(sf, truth)
    assert np.sqrt(np.nanmean((got - want) ** 2)) < 1e-3


def test_estimate_disk_radius_needs_a_beam():
    from hyperspy_chemomech.diffraction._disk_refine import estimate_disk_radius

    with pytest.raises(ValueError, match="disk_radius"):
        estimate_disk_radius(np.zeros((3, 32, 32)), (16, 16))


def test_chunked_equals_unchunked(small):
    dp, truth = small
    ref = truth["reference_mask"]
    whole = strain_from_diffraction(dp, reference=ref, disk_radius=2.0)
    lazy = dp.as_lazy()
    lazy.data = lazy.data.rechunk((5, 3, -1, -1))  # ragged chunks of 15 patterns or fewer
    chunked = strain_from_diffraction(lazy, reference=ref, disk_radius=2.0)
    np.testing.assert_allclose(chunked.data, whole.data, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(chunked.data), np.isnan(whole.data))
    single = dp.as_lazy()
    single.data = single.data.rechunk((1, 1, -1, -1))
    one = strain_from_diffraction(single, reference=ref, disk_radius=2.0)
    np.testing.assert_allclose(one.data, whole.data, rtol=0, atol=1e-12)


def test_window_fit_beats_the_centroid(rng):
    """The Poisson-weighted model fit is unbiased and has a smaller scatter than the centroid."""
    from hyperspy_chemomech.diffraction._disk_refine import WindowFitter

    centers = rng.uniform(20, 40, (300, 2))
    # 32 x 32 sub-samples per pixel: the default 8 x 8 quantise the disk edge by
    # ~0.02 px, more than the fit's own error
    clean = np.array([disk_image((64, 64), [c], 2.0, 30.0, supersample=32) for c in centers])
    noisy = rng.poisson(clean).astype(float)
    start = np.round(centers + rng.uniform(-1, 1, centers.shape))[:, None, :]
    fitter = WindowFitter((64, 64), 2.0)
    pos, counts, ncc = fitter.refine(clean, start)
    assert np.abs(pos[:, 0] - centers).max() < 0.02  # noise-free: the model's pixelation
    np.testing.assert_allclose(counts[:, 0], 30.0 * np.pi * 4, rtol=0.02)
    assert ncc.min() > 0.99
    pos, _, _ = fitter.refine(noisy, start)
    err_fit = np.sqrt(np.mean((pos[:, 0] - centers) ** 2))
    finder = DiskFinder((64, 64), 2.0)
    cen = np.array([finder.refine(img, np.round(c)[None])[0][0] for img, c in zip(noisy, centers)])
    err_centroid = np.sqrt(np.mean((cen - centers) ** 2))
    assert err_fit < 0.85 * err_centroid, (err_fit, err_centroid)
    assert np.abs(np.mean(pos[:, 0] - centers, axis=0)).max() < 0.01


def test_window_fit_numba_equals_numpy(rng):
    from hyperspy_chemomech.diffraction._disk_refine import WindowFitter, _numba_refine

    if _numba_refine() is None:
        pytest.skip("numba not installed")
    centers = rng.uniform(12, 50, (40, 2))
    block = rng.poisson(np.array([disk_image((64, 64), [c], 2.5, 20.0) for c in centers]))
    block = block.astype(float)
    start = np.round(centers + rng.uniform(-1, 1, centers.shape))[:, None, :]
    fitter = WindowFitter((64, 64), 2.5)
    fast = fitter.refine(block, start)
    fitter.use_numba = False
    slow = fitter.refine(block, start)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
