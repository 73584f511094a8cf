"""Correlative image pairs with a known transform: X-ray thickness (moving) vs 4D-STEM dark field (fixed)."""

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .composition_fields import _smooth_random, composition_field
from .shapes import platelet_mask

CONTRASTS = ("linear", "inverted", "gamma", "inverted_gamma")


class CorrelativePair(NamedTuple):
    """What :func:`correlative_image_pair` returns.

    Attributes
    ----------
    moving : hyperspy.signals.Signal2D
        Coarse X-ray thickness image (moving), calibrated in nm.
    fixed : hyperspy.signals.Signal2D
        Fine 4D-STEM-like dark-field image (fixed), calibrated in nm.
    transform : CorrelativeTransform
        The true map, moving (x, y) nm -> fixed (x, y) nm.
    composition : CompositionMap
        Composition on the moving (X-ray) grid, area-averaged, NaN outside.
    particle : numpy.ndarray of bool
        The particle on the fixed grid.
    composition_truth : numpy.ndarray
        The composition on the fixed grid (NaN outside).
    thickness : numpy.ndarray
        The particle thickness on the fixed grid (nm).
    """

    moving: object
    fixed: object
    transform: object
    composition: object
    particle: np.ndarray
    composition_truth: np.ndarray
    thickness: np.ndarray


def _particle(shape, kind, rng):
    """An irregular platelet outline (smoothly perturbed, not symmetric)."""
    aspect = min(rng.uniform(1.7, 2.1), 0.8 * shape[1] / shape[0] / 0.65)
    base = platelet_mask(shape, kind=kind, fill=0.65, angle=rng.uniform(-0.15, 0.15),
                         aspect=aspect)
    size = np.sqrt(base.sum())
    soft = ndimage.gaussian_filter(base.astype(float), 0.04 * size)
    soft += 0.12 * _smooth_random(shape, 0.1 * size, rng)
    mask = soft > 0.5
    labels, n = ndimage.label(mask)
    if n > 1:
        mask = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    return ndimage.binary_fill_holes(mask)


def _thickness(mask, rng, t0=100.0):
    """Thickness (nm): edge taper, a wedge and smooth random variation."""
    ny, nx = mask.shape
    depth = ndimage.distance_transform_edt(mask)
    size = np.sqrt(mask.sum())
    yy, xx = np.indices(mask.shape)
    a = rng.uniform(0, 2 * np.pi)
    wedge = (np.cos(a) * (xx - nx / 2) + np.sin(a) * (yy - ny / 2)) / size
    rough = _smooth_random(mask.shape, 0.12 * size, rng)
    t = t0 * (1.0 + 0.3 * wedge + 0.15 * rough) * (1.0 - np.exp(-depth / (0.04 * size)))
    return np.where(mask, np.clip(t, 0.0, None), 0.0)


def _blobs(shape, mask, rng, n):
    """Dark-field attenuation by strong diffraction: dark blobs and bend contours, in [0, 0.9]."""
    ys, xs = np.nonzero(mask)
    size = np.sqrt(mask.sum())
    yy, xx = np.indices(shape, dtype=float)
    att = np.zeros(shape)
    for _ in range(n):
        k = rng.integers(len(ys))
        w = rng.uniform(0.03, 0.08) * size
        amp = rng.uniform(0.4, 0.8)
        if rng.random() < 0.3:  # a bend contour: long, thin
            a = rng.uniform(0, np.pi)
            u = np.cos(a) * (xx - xs[k]) + np.sin(a) * (yy - ys[k])
            v = -np.sin(a) * (xx - xs[k]) + np.cos(a) * (yy - ys[k])
            att += amp * np.exp(-0.5 * ((u / (4 * w)) ** 2 + (v / (0.4 * w)) ** 2))
        else:
            att += amp * np.exp(-0.5 * ((xx - xs[k]) ** 2 + (yy - ys[k]) ** 2) / w ** 2)
    return np.clip(att, 0.0, 0.9)


def _measured_like_dark_field(t, mask, rng, n_blobs, noise, scan_step):
    """A dark-field image as the measured P1 pair shows one (``dark_field="bend_contours"``).

    What the measured pair taught that the blob model did not: the background is one
    flat level (masked / saturated) lying *above* the particle, whose plateau differs
    from it by only a quarter of the range; its contrast follows the diffraction
    condition, not the thickness (a smooth field unrelated to it); dark bend contours
    and blobs reach zero, as dark as anything in the image, and crowd along the
    outline; the coarse 4D-STEM scan is upsampled (blocks of ``scan_step`` px).
    """
    shape = mask.shape
    size = np.sqrt(mask.sum())
    ys, xs = np.nonzero(mask & ~ndimage.binary_erosion(mask, iterations=max(1, int(0.06 * size))))
    yy, xx = np.indices(shape, dtype=float)
    att = np.zeros(shape)
    for _ in range(n_blobs):
        k = rng.integers(len(ys))
        w = rng.uniform(0.03, 0.06) * size
        att += rng.uniform(1.0, 1.5) * np.exp(-0.5 * ((xx - xs[k]) ** 2 + (yy - ys[k]) ** 2) / w ** 2)
    diffraction = 0.7 + 0.08 * _smooth_random(shape, 0.15 * size, rng)
    df = np.where(mask, diffraction * (1.0 - np.clip(att, 0.0, 1.0)), 1.0)
    df = np.where(mask, df + noise * rng.standard_normal(shape), df)
    step = max(1, int(scan_step))
    df = np.repeat(np.repeat(df[::step, ::step], step, axis=0), step, axis=1)[:shape[0], :shape[1]]
    return np.clip(df, 0.0, 1.0)


def _image_signal(data, pixel, offset, title, cls=None):
    import hyperspy.api as hs

    from .._metadata import set_image_axes

    s = (cls or hs.signals.Signal2D)(data)
    set_image_axes(s, scale=pixel, offset=offset)
    s.metadata.General.title = title
    return s


def correlative_image_pair(shape=(180, 360), pixel_size=4.0, coarsening=None, rotation=None,
                           mirror=None, scale=None, contrast=None, noise=0.03, kind="hexagon",
                           n_blobs=8, composition_contrast=0.05, dark_field="blobs", scan_step=3,
                           seed=None):
    """A fine 4D-STEM-like and a coarse X-ray-like image of one particle, with the true map.

    The particle is an irregular platelet with a varying thickness and a
    two-phase composition. The fixed image is a virtual dark-field image on the
    fine grid: thickness times a diffraction attenuation with dark blobs and
    bend contours, plus noise. The moving image is an X-ray thickness (optical
    density) image on a grid ``coarsening`` times coarser, rotated by
    ``rotation``, optionally mirrored, each pixel averaging the particle over
    its area, blurred by a beam of half a pixel, with an (inverted, gamma)
    contrast, a weak composition contrast, noise and two hot pixels.

    Parameters
    ----------
    shape : (int, int)
        Fixed image (ny, nx) in px.
    pixel_size : float
        Fixed pixel size (nm).
    coarsening : float, optional
        Moving/fixed pixel-size ratio; default random in [2, 6].
    rotation : float, optional
        Rotation of the moving frame (deg); default random in [0, 360).
    mirror : bool, optional
        Mirror the moving image; default random.
    scale : float, optional
        Moving-to-fixed calibration ratio (1 = both calibrations right); default
        random in [0.95, 1.05].
    contrast : {"linear", "inverted", "gamma", "inverted_gamma"}, optional
        X-ray contrast: optical density, transmission (dark particle), or either
        with a gamma in [0.5, 2]; default random.
    noise : float
        Gaussian noise, as a fraction of each image's particle signal.
    kind : str
        Platelet outline, see :func:`~hyperspy_chemomech.simulate.platelet_mask`.
    n_blobs : int
        Dark diffraction blobs / bend contours in the dark-field image.
    composition_contrast : float
        Relative change of the X-ray signal from X = 0 to X = 1 (what a thickness
        image keeps of the chemical contrast).
    dark_field : {"blobs", "bend_contours"}
        "blobs": thickness times a diffraction attenuation on a dark vacuum.
        "bend_contours": as a measured 4D-STEM dark field (the published P1 pair)
        looks: a flat background level above the particle, a plateau close to it
        whose contrast does not follow the thickness, dark contours and blobs
        (``n_blobs``) reaching zero along the outline, the scan upsampled in
        blocks of ``scan_step`` px. Its intensities are unrelated to the X-ray
        image in parts: only the outline is shared.
    scan_step : int
        Block size (px) of the "bend_contours" dark field.
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    CorrelativePair
        ``(moving, fixed, transform, composition, particle, composition_truth, thickness)``.

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import correlative_image_pair
    >>> pair = correlative_image_pair(seed=0, coarsening=4, mirror=True)
    >>> pair.transform.reflection
    True
    >>> float(pair.moving.axes_manager[0].scale) / float(pair.fixed.axes_manager[0].scale)
    4.0
    """
    from ..registration import CorrelativeTransform, Grid, resample, similarity_linear
    from ..signals import CompositionMap

    rng = np.random.default_rng(seed)
    coarsening = rng.uniform(2, 6) if coarsening is None else float(coarsening)
    rotation = rng.uniform(0, 360) if rotation is None else float(rotation)
    mirror = bool(rng.random() < 0.5) if mirror is None else bool(mirror)
    scale = rng.uniform(0.95, 1.05) if scale is None else float(scale)
    contrast = CONTRASTS[rng.integers(len(CONTRASTS))] if contrast is None else contrast
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}; use one of {CONTRASTS}")
    if coarsening <= 0 or scale <= 0 or pixel_size <= 0:
        raise ValueError("pixel_size, coarsening and scale must be positive")
    if dark_field not in ("blobs", "bend_contours"):
        raise ValueError(f"unknown dark_field {dark_field!r}; use 'blobs' or 'bend_contours'")

    # the particle on the fixed grid
    mask = _particle(shape, kind, rng)
    t = _thickness(mask, rng)
    X = composition_field(mask, kind="two_phase", seed=rng)
    f_off = (round(rng.uniform(-2000, 2000), 1), round(rng.uniform(-2000, 2000), 1))
    g_f = Grid(tuple(shape), (pixel_size, pixel_size), f_off)

    # dark field: thickness x diffraction attenuation (dark blobs), vacuum ~ 0
    if dark_field == "blobs":
        df = t / t.max() * (1.0 - _blobs(shape, mask, rng, n_blobs))
        df = 0.02 + df + noise * rng.standard_normal(shape)
    else:
        df = _measured_like_dark_field(t, mask, rng, n_blobs, noise, scan_step)

    # the moving grid covers the particle in any orientation
    xy = g_f.centres_xy(mask)
    c_f = xy.mean(axis=0)
    radius = np.sqrt(((xy - c_f) ** 2).sum(axis=1).max())
    p_m = coarsening * pixel_size
    n_m = int(np.ceil(2.3 * radius / (scale * p_m)))
    m_off = (round(rng.uniform(-5000, 5000), 1), round(rng.uniform(-5000, 5000), 1))
    g_m = Grid((n_m, n_m), (p_m, p_m), m_off)
    c_m = np.array([m_off[1] + p_m * (n_m - 1) / 2, m_off[0] + p_m * (n_m - 1) / 2])
    shift = rng.uniform(-0.08, 0.08, 2) * radius
    lin = similarity_linear(np.deg2rad(rotation), scale, mirror)
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = c_f + shift - lin @ c_m
    truth = CorrelativeTransform(m)

    # X-ray: each coarse pixel averages the thickness over its area; beam blur
    inv = np.linalg.inv(m)
    t_m = resample(t, g_f, g_m, inv, order=1, area_average=True)
    t_m = ndimage.gaussian_filter(np.nan_to_num(t_m), 0.5)
    x_m = resample(np.where(mask, X, np.nan), g_f, g_m, inv, order=1, area_average=True)
    od = t_m / t.max() * (1.0 + composition_contrast * (np.nan_to_num(x_m, nan=0.5) - 0.5))
    gamma = rng.uniform(0.5, 2.0) if "gamma" in contrast else 1.0
    img = np.exp(-1.2 * od) if contrast.startswith("inverted") else od
    img = img ** gamma
    span = np.ptp(img)
    img = img + noise * span * rng.standard_normal(img.shape)
    for _ in range(2):  # hot pixels, away from the particle
        r, c = rng.integers(0, 2, 2) * (n_m - 1)
        img[r, c] += 5 * span

    moving = _image_signal(img, p_m, m_off, "X-ray thickness (simulated)")
    fixed = _image_signal(df, pixel_size, f_off, "4D-STEM dark field (simulated)")
    comp = _image_signal(x_m, p_m, m_off, "composition (simulated, X-ray grid)", CompositionMap)
    moving.metadata.set_item("Chemomech.simulation", {
        "rotation_deg": rotation, "mirror": mirror, "coarsening": coarsening,
        "scale": scale, "contrast": contrast, "gamma": gamma, "noise": noise,
        "dark_field": dark_field})
    return CorrelativePair(moving, fixed, truth, comp, mask, X, t)


def registration_error(estimated, pair):
    """Misregistration over the particle, in fixed-image pixels.

    For every particle pixel p of the fixed grid, the distance between
    ``estimated(truth^-1(p))`` and ``p``: how far the estimated map puts the moving
    content that truly belongs at p.

    Parameters
    ----------
    estimated : CorrelativeTransform or ndarray (3, 3)
    pair : CorrelativePair

    Returns
    -------
    numpy.ndarray
        One distance (fixed px) per particle pixel.
    """
    from ..registration import apply_matrix, grid_of

    m = estimated.matrix if hasattr(estimated, "matrix") else np.asarray(estimated, dtype=float)
    g = grid_of(pair.fixed, "fixed")
    p = g.centres_xy(pair.particle)
    q = apply_matrix(np.linalg.inv(pair.transform.matrix), p)
    return np.hypot(*(apply_matrix(m, q) - p).T) / g.pixel_size


class WarpedImage(NamedTuple):
    """What :func:`warped_image` returns.

    Attributes
    ----------
    moving : hyperspy.signals.Signal2D
        The warped, coarser, noisy copy, calibrated in nm.
    transform : CorrelativeTransform
        The true map, moving (x, y) nm -> the source image's (x, y) nm.
    """

    moving: object
    transform: object


def warped_image(image, rotation=None, mirror=None, coarsening=None, scale=None, noise=0.02,
                 shift=None, seed=None):
    """A copy of a calibrated image as another instrument would see it: turned, coarser, noisy.

    Made to test registration on measured images (e.g. the X-ray image of a
    published, already-registered pair): the copy's pixels average the source
    over their footprint (coarser pixels), its frame is rotated by ``rotation``
    and optionally mirrored, its calibration is off by ``scale``, and Gaussian
    noise is added. Where the copy reaches beyond the source, it holds the
    source's background (median of its border).

    Parameters
    ----------
    image : hyperspy.signals.Signal2D
        Calibrated source image (nm).
    rotation : float, optional
        Rotation of the copy's frame (deg); default random in [0, 360).
    mirror : bool, optional
        Mirror the copy; default random.
    coarsening : float, optional
        Copy/source pixel-size ratio; default random in [2, 4].
    scale : float, optional
        True copy-to-source scale over the nominal one (a calibration error);
        default random in [0.97, 1.03].
    noise : float
        Gaussian noise sigma as a fraction of the copy's maximum.
    shift : (float, float), optional
        Offset of the copy's centre from the source's centre (x, y) in source
        pixels; default random within 3 % of the image size.
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    WarpedImage
        ``(moving, transform)``; ``transform`` maps the copy's (x, y) nm onto the
        source's (x, y) nm.

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import correlative_image_pair, warped_image
    >>> pair = correlative_image_pair(seed=0, shape=(90, 180))
    >>> w = warped_image(pair.fixed, rotation=30.0, mirror=True, coarsening=3.0, seed=1)
    >>> w.transform.reflection, round(w.transform.rotation, 6)
    (True, 30.0)
    """
    from ..registration import CorrelativeTransform, Grid, grid_of, resample, similarity_linear

    rng = np.random.default_rng(seed)
    rotation = rng.uniform(0, 360) if rotation is None else float(rotation)
    mirror = bool(rng.random() < 0.5) if mirror is None else bool(mirror)
    coarsening = rng.uniform(2, 4) if coarsening is None else float(coarsening)
    scale = rng.uniform(0.97, 1.03) if scale is None else float(scale)
    if coarsening <= 0 or scale <= 0 or noise < 0:
        raise ValueError("coarsening and scale must be positive, noise not negative")
    g_s = grid_of(image, "image")
    src = np.array(image.data, dtype=float)  # a copy: the source is never touched
    if src.shape != tuple(g_s.shape) or not np.isfinite(src).all():
        raise ValueError("image must be a single finite image (no NaN, no navigation axes)")
    ny, nx = g_s.shape
    shift = rng.uniform(-0.03, 0.03, 2) * max(ny, nx) if shift is None else np.asarray(shift, float)

    # the copy's square grid covers the source in any orientation
    p_m = coarsening * g_s.pixel_size
    n_m = int(np.ceil(np.hypot(ny * g_s.scale[0], nx * g_s.scale[1]) / (scale * p_m))) + 2
    m_off = (round(rng.uniform(-5000, 5000), 1), round(rng.uniform(-5000, 5000), 1))
    c_m = np.array([m_off[1] + p_m * (n_m - 1) / 2, m_off[0] + p_m * (n_m - 1) / 2])
    c_s = np.array(g_s.to_xy((ny - 1) / 2, (nx - 1) / 2)) + shift * g_s.pixel_size
    lin = similarity_linear(np.deg2rad(rotation), scale, mirror)
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = c_s - lin @ c_m
    g_m = Grid((n_m, n_m), (p_m, p_m), m_off)
    warped = resample(src, g_s, g_m, np.linalg.inv(m), order=1, area_average=True)
    bg = np.median(np.concatenate([src[0], src[-1], src[:, 0], src[:, -1]]))
    warped = np.where(np.isfinite(warped), warped, bg)
    warped = warped + noise * np.max(np.abs(warped)) * rng.standard_normal(warped.shape)
    moving = _image_signal(warped, p_m, m_off, "warped copy of " + str(image.metadata.General.title))
    moving.metadata.set_item("Chemomech.simulation", {
        "rotation_deg": rotation, "mirror": mirror, "coarsening": coarsening,
        "scale": scale, "noise": noise})
    return WarpedImage(moving, CorrelativeTransform(m))
