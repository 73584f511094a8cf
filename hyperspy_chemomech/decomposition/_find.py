"""Locate edge dislocations as peaks of the Nye map and measure their Burgers vectors.

Peaks of the smoothed Nye-tensor magnitude above a threshold set by the noise
(a false-alarm bound for white noise) are candidate cores; each core's Burgers
vector is the Nye content integrated over a disc around it (split between
neighbouring cores by distance), which by Stokes' theorem is the closure failure of
a circuit around it and so does not depend on the smoothing.
"""

import numpy as np
from scipy import ndimage

from ..fields import nye_tensor, pixel_size_pair, smooth_in_mask

#: Fields of the array :func:`find_dislocations` returns.
DISLOCATION_DTYPE = np.dtype([("x", float), ("y", float), ("b_x", float), ("b_y", float),
                              ("snr", float)])


def _mad_std(v):
    v = v[np.isfinite(v)]
    if v.size < 10:
        return np.nan
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def _content_noise(araw, inner, radius, area):
    """Robust std (nm) of the Nye content integrated over a disc centred in ``inner``."""
    from scipy.signal import fftconvolve

    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = ((yy ** 2 + xx ** 2) <= radius ** 2).astype(float)
    stds = [_mad_std(fftconvolve(a, disc, mode="same")[inner] * area) for a in araw]
    return float(np.sqrt(np.nanmean(np.square(stds))))


def find_dislocations(strain, pixel_size, mask=None, sigma=1.0, threshold=None,
                      min_burgers=None, false_alarms=0.05, min_distance=None, radius=None,
                      exclude_border=2, offset=(0.0, 0.0), full_output=False):
    """Find edge dislocations (lines along the beam) in a strain + rotation map.

    Meant for the residual of a decomposition, where the chemistry is removed; any
    compatible field (e.g. coherency strain) has no Nye content anyway.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad), image frame; NaN = no data.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
        Where to look (default where all components are finite).
    sigma : float
        Gaussian smoothing of the Nye map used for detection (pixels).
    threshold : float, optional
        Detection threshold on the smoothed Nye magnitude (1/nm). Default: from the
        noise, ``s * sqrt(2 ln(N_eff / false_alarms))`` where ``s`` is the robust
        (MAD) standard deviation of the smoothed Nye components inside the particle
        and ``N_eff`` the number of independent pixels (pixels / (4 pi sigma^2)),
        so white noise alone gives few peaks (the content test below removes the rest).
    min_burgers : float, optional
        Smallest integrated Burgers content ``|b|`` (nm) of a reported core. Default:
        from the noise, ``s_b * sqrt(2 ln(N_b / false_alarms))`` with ``s_b`` the
        robust standard deviation of the content integrated over a disc of
        ``radius`` centred anywhere in the particle (the null distribution: a
        compatible field, chemistry included, has zero content) and ``N_b`` the
        number of independent discs. 0 disables the test.
    false_alarms : float
        Expected number of false detections from noise, for the default thresholds.
    min_distance : int, optional
        Smallest separation of two cores (pixels); default ``max(2, 2 sigma + 1)``.
    radius : float, optional
        Radius (pixels) of the disc over which the Burgers content is integrated;
        default ``max(4, 3 sigma + 2)``.
    exclude_border : int
        Cores within this many pixels of the particle's edge are not reported (there
        the derivatives are one-sided and twice as noisy).
    offset : (float, float)
        Calibrated position (y, x) (nm) of the first pixel centre.
    full_output : bool
        Also return a dict with the threshold, noise level, and the Nye maps.

    Returns
    -------
    numpy.ndarray
        Structured array (dtype :data:`DISLOCATION_DTYPE`), one row per core: ``x``,
        ``y`` (nm, calibrated), ``b_x``, ``b_y`` (integrated Burgers content, nm,
        image frame, sign as a counter-clockwise circuit in x, y) and ``snr`` (peak
        height over the noise level).
    dict, optional
        With ``full_output``: ``threshold`` and ``noise`` (1/nm), ``nye`` (raw) and
        ``nye_smoothed`` (2, ny, nx) maps, ``mask``, ``min_burgers`` (nm) and
        ``content_noise`` (nm), ``rejected`` (candidates below ``min_burgers``).
    """
    dy, dx = pixel_size_pair(pixel_size)
    sigma = float(sigma or 0.0)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 (pixels), got {sigma}")
    alpha = nye_tensor(strain, (dy, dx), mask=mask)
    ok = np.isfinite(alpha).all(axis=0)
    smooth = smooth_in_mask(alpha, ok, sigma)
    mag = np.hypot(smooth[0], smooth[1])
    inner = ndimage.binary_erosion(ok, iterations=int(exclude_border)) if exclude_border else ok
    if not inner.any():
        raise ValueError("no pixel of the particle lies farther than exclude_border from its edge")
    noise = float(np.sqrt(np.nanmean([_mad_std(smooth[0][inner]) ** 2,
                                      _mad_std(smooth[1][inner]) ** 2])))
    if threshold is None:
        if not np.isfinite(noise) or noise <= 0:
            raise ValueError("cannot estimate the noise level of the Nye map; pass threshold=")
        if not false_alarms > 0:
            raise ValueError(f"false_alarms must be positive, got {false_alarms}")
        n_eff = max(inner.sum() / max(1.0, 4 * np.pi * sigma ** 2), 1.0)
        threshold = noise * np.sqrt(2 * np.log(max(n_eff / false_alarms, np.e)))
    threshold = float(threshold)
    if radius is None:
        radius = max(4.0, 3 * sigma + 2)
    area = dy * dx
    araw = np.where(ok, alpha, 0.0)
    content_noise = np.nan
    if min_burgers is None:
        content_noise = _content_noise(araw, inner, radius, area)
        if not np.isfinite(content_noise):
            raise ValueError("cannot estimate the noise of the Burgers content; pass min_burgers=")
        n_b = max(inner.sum() / (np.pi * radius ** 2), 1.0)
        min_burgers = content_noise * np.sqrt(2 * np.log(max(n_b / false_alarms, np.e)))
    min_burgers = float(min_burgers)
    if min_distance is None:
        min_distance = int(max(2, round(2 * sigma + 1)))

    from skimage.feature import peak_local_max

    peaks = peak_local_max(np.where(inner, mag, 0.0), min_distance=int(min_distance),
                           threshold_abs=threshold, labels=inner.astype(np.int32),
                           exclude_border=False)
    out = np.zeros(len(peaks), dtype=DISLOCATION_DTYPE)
    if len(peaks):
        r = int(np.ceil(radius))
        for k, (py, px) in enumerate(peaks):
            # local window; pixels are split between neighbouring cores by distance
            y0, y1 = max(py - r, 0), min(py + r + 1, ok.shape[0])
            x0, x1 = max(px - r, 0), min(px + r + 1, ok.shape[1])
            yy, xx = np.mgrid[y0:y1, x0:x1]
            d2 = (yy - py) ** 2 + (xx - px) ** 2
            others = peaks[(np.abs(peaks[:, 0] - py) <= 2 * r) & (np.abs(peaks[:, 1] - px) <= 2 * r)]
            closest = np.min((yy[None] - others[:, 0, None, None]) ** 2
                             + (xx[None] - others[:, 1, None, None]) ** 2, axis=0)
            okw = ok[y0:y1, x0:x1]
            region = okw & (d2 <= closest) & (d2 <= radius ** 2)
            b = araw[:, y0:y1, x0:x1][:, region].sum(axis=1) * area
            # sub-pixel core: centroid of the smoothed content along b near the peak
            sw = smooth[:, y0:y1, x0:x1]
            bn = np.hypot(*b)
            proj = (sw[0] * b[0] + sw[1] * b[1]) / bn if bn > 0 else mag[y0:y1, x0:x1]
            near = okw & (d2 <= max(2.0, 2 * sigma) ** 2)
            w = np.where(near, np.clip(np.nan_to_num(proj), 0, None), 0.0)
            if w.sum() > 0:
                cy, cx = (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()
            else:
                cy, cx = float(py), float(px)
            out[k] = (offset[1] + cx * dx, offset[0] + cy * dy, b[0], b[1],
                      mag[py, px] / noise if noise > 0 else np.inf)
    keep = np.hypot(out["b_x"], out["b_y"]) >= min_burgers
    rejected, out = out[~keep], out[keep]
    out = out[np.argsort(-out["snr"], kind="stable")]
    if full_output:
        return out, {"threshold": threshold, "noise": noise, "nye": alpha,
                     "nye_smoothed": smooth, "mask": inner, "min_burgers": min_burgers,
                     "content_noise": content_noise, "rejected": rejected}
    return out
