"""Masked, NaN-aware smoothing and pooling of pixel maps (the body never mixes with vacuum).

Used wherever two maps are compared at a common resolution (learning's resolution
matching, the decomposition's residual, the Nye maps), so it is written once here.
"""

import numpy as np
from scipy import ndimage

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def masked_gaussian(data, mask, sigma, weight=None):
    """Gaussian blur restricted to ``mask`` (normalised convolution), NaN-aware.

    Parameters
    ----------
    data : numpy.ndarray, shape (..., ny, nx)
        Maps to blur; NaN entries are missing data and get no weight.
    mask : numpy.ndarray of bool, shape (ny, nx)
        Where the body is; values outside never leak in.
    sigma : float
        Standard deviation of the Gaussian in pixels (0 returns a copy).
    weight : numpy.ndarray, shape (ny, nx) or like ``data``, optional
        Relative weight of each pixel (e.g. the fraction of a pooled pixel that
        lies in the body, from :func:`pool`); default 1.

    Returns
    -------
    numpy.ndarray, same shape as ``data``
        Blurred maps; NaN outside ``mask`` and where no valid neighbour exists.
    """
    data = np.asarray(data, dtype=float)
    out = np.full(data.shape, np.nan)
    if not mask.any():
        return out
    # outside the mask nothing leaks in: work in its bounding box plus the kernel
    r = int(np.ceil(3.5 * max(sigma, 0.0))) + 1
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(max(ys[0] - r, 0), ys[-1] + r + 1), slice(max(xs[0] - r, 0), xs[-1] + r + 1))
    m = mask[box]
    flat = data[(...,) + box].reshape((-1,) + m.shape)
    w = m.astype(float)
    if weight is not None:
        weight = np.asarray(weight, dtype=float)
        w = np.where(m, np.broadcast_to(weight[(...,) + box], data[(...,) + box].shape)
                     .reshape(flat.shape), 0.0)
    valid = np.isfinite(flat) & m
    wi = np.where(valid, w, 0.0)  # (n, ny, nx)
    if sigma <= 0:
        res = np.where(wi > 0, flat, np.nan)
    else:
        num = ndimage.gaussian_filter(np.where(valid, flat * wi, 0.0), (0, sigma, sigma),
                                      mode="constant", truncate=3.5)
        # the normalisation depends only on the weights: one per distinct pattern
        same = bool(np.all(wi == wi[:1]))
        den = ndimage.gaussian_filter(wi[:1] if same else wi, (0, sigma, sigma),
                                      mode="constant", truncate=3.5)
        with np.errstate(invalid="ignore", divide="ignore"):
            res = np.where(m & (den > 1e-3), num / den, np.nan)
    out[(...,) + box] = res.reshape(data[(...,) + box].shape)
    return out


def _block_sum(a, f, shape):
    """Sum of ``f`` x ``f`` blocks over the last two axes (the last blocks may be partial)."""
    ny, nx = a.shape[-2:]
    out = np.zeros(a.shape[:-2] + shape)
    # f^2 strided sums (no padding copy): far faster than reducing a 4D view
    for i in range(f):
        for j in range(f):
            out[..., :-(-(ny - i) // f), :-(-(nx - j) // f)] += a[..., i::f, j::f]
    return out


def pool(data, mask, factor, weight=None, finite=False):
    """Average ``factor`` x ``factor`` blocks of masked, NaN-aware maps.

    Blurred maps are oversampled: a Gaussian of sigma px on the fine grid is one
    of sigma / factor px on the pooled grid (both sides of a comparison pooled
    alike), at 1 / factor^3 of the cost.

    Parameters
    ----------
    data : numpy.ndarray, shape (..., ny, nx)
    mask : numpy.ndarray of bool, shape (ny, nx)
    factor : int
    weight : numpy.ndarray, shape (ny, nx) or like ``data``, optional
        Weight of each pixel (e.g. the body fraction of an already pooled grid);
        default 1.
    finite : bool
        The maps are finite wherever ``mask`` is (model fields), and ``weight`` is
        one (ny, nx) map: one normalisation serves all maps (faster).

    Returns
    -------
    values : numpy.ndarray, shape (..., ceil(ny / factor), ceil(nx / factor))
        Weighted mean of the valid (in ``mask``, finite) pixels of each block; NaN
        if none.
    weight : numpy.ndarray, same shape as ``values``
        Summed weight of the valid pixels over the block's area (the body
        fraction, for unit weights).
    pooled_mask : numpy.ndarray of bool
        Blocks with any pixel in ``mask``.
    """
    f = int(factor)
    data = np.asarray(data, dtype=float)
    ny, nx = mask.shape
    shp = (-(-ny // f), -(-nx // f))
    flat = data.reshape((-1, ny, nx))
    pooled_mask = _block_sum(mask.astype(float), f, shp) > 0
    values = np.empty((flat.shape[0],) + shp)
    step = max(1, 2 ** 16 // (ny * nx))  # maps in chunks of ~2^16 px: stay in cache
    if finite:
        w2 = mask * (1.0 if weight is None else np.asarray(weight, float))
        cnt = _block_sum(w2, f, shp)
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(cnt > 0, 1.0 / cnt, np.nan)
        for k0 in range(0, flat.shape[0], step):
            values[k0:k0 + step] = _block_sum(np.where(mask, flat[k0:k0 + step], 0.0) * w2,
                                              f, shp) * inv
        wout = np.broadcast_to(cnt / (f * f), values.shape)
        return values.reshape(data.shape[:-2] + shp), wout.reshape(data.shape[:-2] + shp), \
            pooled_mask
    wflat = None
    if weight is not None:
        wflat = np.broadcast_to(np.asarray(weight, float), data.shape).reshape(flat.shape)
    wout = np.empty_like(values)
    for k0 in range(0, flat.shape[0], step):
        d = flat[k0:k0 + step]
        wv = (mask & np.isfinite(d)).astype(float)
        if wflat is not None:
            wv *= wflat[k0:k0 + step]
        tot = _block_sum(np.where(wv > 0, d, 0.0) * wv, f, shp)
        cnt = _block_sum(wv, f, shp)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[k0:k0 + step] = np.where(cnt > 0, tot / cnt, np.nan)
        wout[k0:k0 + step] = cnt / (f * f)
    return values.reshape(data.shape[:-2] + shp), wout.reshape(data.shape[:-2] + shp), pooled_mask
