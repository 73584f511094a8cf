"""Automatic, sign-agnostic particle masks: the outline, thresholded at the foot of the particle's typical contrast."""

import numpy as np
from scipy import ndimage

#: minimum particle-to-background contrast, in units of the smoothed background noise
MIN_CONTRAST = 6.0
#: noise sigmas (of the smoothed border) a particle pixel must deviate from the background by
NOISE_SIGMAS = 4.0
#: candidate pixels deviate by at least this fraction of the strongest (99.5th percentile) deviation
CANDIDATE_FRACTION = 0.05
#: the outline lies where the deviation falls to this fraction of the particle's median deviation
EDGE_FRACTION = 0.25
#: Gaussian sigma (px) of the image the outline is read from
FINE_SMOOTHING = 0.7


def background_level(image, width=None):
    """Median and robust spread of the image border (taken as background).

    Parameters
    ----------
    image : ndarray (ny, nx)
    width : int, optional
        Border width (px); default 4 % of the smaller side, at least 2.

    Returns
    -------
    (float, float)
        Median and 1.4826 x median absolute deviation of the border pixels.
    """
    ny, nx = image.shape
    w = max(2, int(round(0.04 * min(ny, nx)))) if width is None else int(width)
    border = np.ones(image.shape, dtype=bool)
    border[w:-w, w:-w] = False
    vals = image[border]
    med = float(np.median(vals))
    return med, float(1.4826 * np.median(np.abs(vals - med)))


def particle_mask(image, smoothing=None, what="image"):
    """Mask of the whole particle in an image (its outline, not its inner contrast).

    A dark-field image of a crystal is not a thickness map: bend contours and
    diffraction blobs make parts of the particle as dark as (or darker than)
    anything else, and its plateau can lie close to the background level. So the
    threshold is not set between the two strongest intensity classes (Otsu would
    pick the blobs) but from the particle's *typical* contrast: the image is
    smoothed, the background level and noise are read from the border, every
    pixel deviating from it by more than a few noise sigmas (and 5 % of the
    strongest deviation) is a candidate, and the final threshold is a quarter of
    the median deviation of the candidates -- the foot of a blurred edge, so a
    soft X-ray outline and a sharp dark-field outline give the same area. Large
    pieces (at least a tenth of the largest) are joined by a closing (radius 3 %
    of the particle size: dark contours can cut a particle in two), holes are
    filled (blobs inside), and the largest body is the particle. Bright
    particles on a dark background and dark ones on a bright background are
    found alike.

    Parameters
    ----------
    image : ndarray (ny, nx)
        Finite values (any unit).
    smoothing : float, optional
        Gaussian sigma (px) before thresholding; default 1 % of the image size, >= 1.
    what : str
        Name used in error messages.

    Returns
    -------
    ndarray of bool (ny, nx)

    Raises
    ------
    ValueError
        When no particle stands out of the background (contrast below
        ``MIN_CONTRAST`` times the background noise, or an implausible size).
    """
    image = np.asarray(image, dtype=float)
    ny, nx = image.shape
    if min(ny, nx) < 8:
        raise ValueError(f"{what}: too small ({ny} x {nx} px) to find a particle")
    sigma = max(1.0, 0.01 * max(ny, nx)) if smoothing is None else float(smoothing)
    sm = ndimage.gaussian_filter(image, sigma, mode="nearest")
    bg, noise = background_level(sm)
    dev = np.abs(sm - bg)
    top = float(np.percentile(dev, 99.5))
    if not top > 0:
        raise ValueError(f"no particle found in {what}: the image is uniform")
    # candidates: clearly off the background (a masked, constant background has no noise)
    cand = dev > max(NOISE_SIGMAS * noise, CANDIDATE_FRACTION * top)
    if not cand.any():
        raise ValueError(f"no particle found in {what}")
    level = EDGE_FRACTION * float(np.median(dev[cand]))
    # the outline from a lightly smoothed image: smoothing moves a threshold below
    # half the contrast outward (0.67 sigma at a quarter), so keep sigma small where
    # the noise allows it
    fine = ndimage.gaussian_filter(image, FINE_SMOOTHING, mode="nearest")
    bg_fine, noise_fine = background_level(fine)
    if level > NOISE_SIGMAS * noise_fine:
        mask = np.abs(fine - bg_fine) > level
    else:
        mask = dev > max(level, NOISE_SIGMAS * noise)
    labels, n = ndimage.label(mask)
    if n == 0:
        raise ValueError(f"no particle found in {what}")
    sizes = np.bincount(labels.ravel())[1:]
    # a dark bend contour or blob can cut the particle into pieces: keep every
    # large piece, bridge narrow gaps by a closing, then keep the largest body
    keep = np.flatnonzero(sizes >= max(16, 0.1 * sizes.max())) + 1
    if keep.size == 0:
        raise ValueError(f"no particle found in {what}: no piece of 16 px or more stands out")
    mask = np.isin(labels, keep)
    r = max(1, int(round(0.03 * np.sqrt(mask.sum()))))
    disk = np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r
    padded = np.pad(mask, r + 1)  # closing must not glue the particle to the border
    mask = ndimage.binary_closing(padded, structure=disk)[r + 1:-r - 1, r + 1:-r - 1] | mask
    labels, _ = ndimage.label(ndimage.binary_fill_holes(mask))
    sizes = np.bincount(labels.ravel())[1:]
    mask = labels == (np.argmax(sizes) + 1)
    # contrast against the smoothed background noise, read robustly (MAD) from the
    # border away from the particle, so hot pixels or dust do not inflate it
    _, noise = background_level(np.where(mask, bg, sm))
    noise = max(noise, 1e-12 * max(abs(bg), 1.0))
    contrast = float(np.median(dev[mask])) / noise
    frac = mask.mean()
    if contrast < MIN_CONTRAST or mask.sum() < 16 or frac > 0.9:
        raise ValueError(
            f"no particle found in {what}: best candidate covers {100 * frac:.1f} % of the "
            f"image with contrast {contrast:.1f} x background noise (need >= {MIN_CONTRAST:g}); "
            "pass an explicit mask if the particle is there"
        )
    return mask
