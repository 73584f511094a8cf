"""Locate edge dislocations as peaks of the Nye map and measure their Burgers vectors.

Peaks of the smoothed Nye-tensor magnitude above a threshold set by the noise
(a false-alarm bound whose number of independent samples is measured from the
map's own spatial correlation, not assumed white) are candidate cores; each core's
Burgers vector is the Nye content integrated over a disc around it (split between
neighbouring cores by distance), which by Stokes' theorem is the closure failure of
a circuit around it and so does not depend on the smoothing. Given the crystal's
lattice, a core is kept only if that content is a lattice translation within its
uncertainty (a real dislocation's Burgers vector is one).
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


def _content_maps(araw, radius, area):
    """The Nye content (nm) integrated over a disc of ``radius`` px centred on each pixel."""
    from scipy.signal import fftconvolve

    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = ((yy ** 2 + xx ** 2) <= radius ** 2).astype(float)
    return np.stack([fftconvolve(a, disc, mode="same") * area for a in araw])


def _content_noise(content, inner):
    """Robust std (nm) of the disc-integrated content over the pixels of ``inner``."""
    stds = [_mad_std(c[inner]) for c in content]
    return float(np.sqrt(np.nanmean(np.square(stds))))


def independent_samples(fields, inner):
    """Number of independent samples of random maps over ``inner``, from their correlation.

    For a smooth stationary field with a Gaussian-shaped correlation of length l,
    ``var(grad f) / var(f) = 1 / l^2`` per axis and the expected number of
    independent excursions over an area A is ``A / (2 pi l^2)``. Measured on the
    maps themselves (robust, MAD), this holds whatever made them correlated (probe
    overlap, resampling, smoothing): a white-noise model that counts pixels / (4 pi
    sigma^2) gets the false-alarm rate wrong when the noise is not white.

    Parameters
    ----------
    fields : numpy.ndarray, shape (k, ny, nx)
        Maps of zero-mean noise (outliers such as cores are tolerated: MAD).
    inner : numpy.ndarray of bool, shape (ny, nx)

    Returns
    -------
    float
        Between 1 and the number of pixels of ``inner``.
    """
    n_px = float(inner.sum())
    ratios = []
    for f in fields:
        var = _mad_std(f[inner]) ** 2
        both_x = inner[:, 1:] & inner[:, :-1]
        both_y = inner[1:] & inner[:-1]
        dx = np.diff(f, axis=1)[both_x]
        dy = np.diff(f, axis=0)[both_y]
        gvar = 0.5 * (_mad_std(dx) ** 2 + _mad_std(dy) ** 2)
        if np.isfinite(var) and var > 0 and np.isfinite(gvar):
            ratios.append(gvar / var)
    if not ratios:
        return max(n_px, 1.0)
    return float(np.clip(n_px * np.mean(ratios) / (2 * np.pi), 1.0, max(n_px, 1.0)))


def _translations(lattice, crystal_angle, tolerance):
    """Lattice translations (m, 2) nm to test Burgers contents against (None: no test)."""
    if lattice is None:
        return None
    cells = np.atleast_2d(np.asarray(lattice, dtype=float))
    if cells.ndim != 2 or cells.shape[1] != 2 or not np.all(np.isfinite(cells)) \
            or np.any(cells <= 0):
        raise ValueError(f"lattice must be in-plane lattice parameters (a, c) in nm, positive, "
                         f"shape (2,) or (k, 2); got {lattice!r}")
    if not (np.isfinite(tolerance) and 0 <= tolerance < 1):
        raise ValueError(f"lattice_tolerance must lie in [0, 1), got {tolerance!r}")
    phi = 0.0 if crystal_angle is None else float(crystal_angle)
    if not np.isfinite(phi):
        raise ValueError(f"crystal_angle must be a finite angle (rad), got {crystal_angle!r}")
    e1 = np.array([np.cos(phi), np.sin(phi)])
    e2 = np.array([-np.sin(phi), np.cos(phi)])
    # the shortest translations: a perfect dislocation with a longer one would dissociate
    ij = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)])
    return np.concatenate([(ij[:, :1] * a) * e1 + (ij[:, 1:] * c) * e2 for a, c in cells])


def find_dislocations(strain, pixel_size, mask=None, sigma=1.0, threshold=None,
                      min_burgers=None, false_alarms=0.05, min_distance=None, radius=None,
                      exclude_border=2, offset=(0.0, 0.0), lattice=None, crystal_angle=None,
                      lattice_tolerance=0.15, full_output=False):
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
        and ``N_eff`` the number of independent samples, measured from the maps' own
        spatial correlation (:func:`independent_samples`), not a white-noise model:
        correlated noise (probe overlap, resampling) has fewer, broader excursions.
    min_burgers : float, optional
        Smallest integrated Burgers content ``|b|`` (nm) of a reported core. Default:
        from the noise, ``s_b * sqrt(2 ln(N_b / false_alarms))`` with ``s_b`` the
        robust standard deviation of the content integrated over a disc of
        ``radius`` centred anywhere in the particle (the null distribution: a
        compatible field, chemistry included, has zero content) and ``N_b`` the
        number of independent samples of that content map (measured as for
        ``threshold``). 0 disables the test.
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
    lattice : array_like, shape (2,) or (k, 2), optional
        In-plane lattice parameters (nm) of the crystal along its first and second
        in-plane axes (beam along [010]: a along [100], c along [001]); several rows
        for several cells (e.g. both end members of a solid solution). A core is
        kept only if its Burgers content is a lattice translation ``i a e1 + j c e2``
        (``|i|, |j| <= 1``: the shortest ones) within its uncertainty: ``|b - t| <= 3 s_b +
        lattice_tolerance |t|`` (``s_b`` the content noise). Default None: no test.
    crystal_angle : float, optional
        Angle (rad) from +x to the first in-plane axis, toward +y. With it the
        Burgers vector's direction is tested too; without it only its length.
    lattice_tolerance : float
        Relative allowance for a lattice translation (strain of the lattice, the
        composition's range, the integral's discretisation).
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
        ``content_noise`` (nm), ``n_independent`` (of the Nye map and of the content
        map), ``rejected`` (candidates below ``min_burgers`` or off the lattice,
        with ``off_lattice`` saying which) and ``settings`` (the arguments).
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
        n_eff = independent_samples(np.where(inner, smooth, np.nan), inner)
        threshold = noise * np.sqrt(2 * np.log(max(n_eff / false_alarms, np.e)))
    else:
        n_eff = np.nan
    threshold = float(threshold)
    translations = _translations(lattice, crystal_angle, lattice_tolerance)
    if radius is None:
        radius = max(4.0, 3 * sigma + 2)
    area = dy * dx
    araw = np.where(ok, alpha, 0.0)
    content_noise, n_b = np.nan, np.nan
    if min_burgers is None or lattice is not None:
        content = _content_maps(araw, radius, area)
        content_noise = _content_noise(content, inner)
        if not np.isfinite(content_noise):
            raise ValueError("cannot estimate the noise of the Burgers content; pass min_burgers=")
        n_b = independent_samples(content, inner)
    if min_burgers is None:
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
    strong = np.hypot(out["b_x"], out["b_y"]) >= min_burgers
    on_lattice = np.ones(len(out), bool)
    if translations is not None and len(out):
        b = np.column_stack([out["b_x"], out["b_y"]])
        if crystal_angle is None:      # orientation unknown: lengths only
            miss = np.abs(np.hypot(*b.T)[:, None] - np.hypot(*translations.T)[None])
        else:
            miss = np.hypot(*(b[:, None, :] - translations[None]).transpose(2, 0, 1))
        allow = 3 * content_noise + lattice_tolerance * np.hypot(*translations.T)[None]
        on_lattice = np.any(miss <= allow, axis=1)
    keep = strong & on_lattice
    rejected, out = out[~keep], out[keep]
    off_lattice = ~on_lattice[~keep]
    out = out[np.argsort(-out["snr"], kind="stable")]
    if full_output:
        return out, {"threshold": threshold, "noise": noise, "nye": alpha,
                     "nye_smoothed": smooth, "mask": inner, "min_burgers": min_burgers,
                     "content_noise": content_noise, "rejected": rejected,
                     "off_lattice": off_lattice,
                     "n_independent": {"nye": n_eff, "content": n_b},
                     "settings": {"sigma": sigma, "threshold": threshold,
                                  "min_burgers": min_burgers, "false_alarms": false_alarms,
                                  "min_distance": int(min_distance), "radius": float(radius),
                                  "exclude_border": int(exclude_border),
                                  "lattice": None if lattice is None else
                                  np.atleast_2d(np.asarray(lattice, float)).tolist(),
                                  "crystal_angle": crystal_angle,
                                  "lattice_tolerance": lattice_tolerance}}
    return out
