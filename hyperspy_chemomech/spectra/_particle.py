"""The particle in a thickness map: Otsu's threshold kept below the thin rim."""

import numpy as np


def particle_mask(thickness, threshold=None, fraction=0.25, n_sigma=5.0):
    """The particle: pixels whose fitted thickness stands out of the background.

    Parameters
    ----------
    thickness : numpy.ndarray, shape (ny, nx)
        Sum of the unmixing coefficients (NaN where no fit).
    threshold : float, optional
        Explicit threshold (thickness units). By default Otsu's threshold [1]_ splits
        background from particle, and the threshold is lowered to ``fraction`` of the
        particle class's median thickness (but kept above the background median plus
        ``n_sigma`` robust standard deviations), so that the thin rim of a platelet,
        which Otsu's split between the two class means would cut off, stays in.
    fraction : float
        Fraction of the typical particle thickness taken as its edge.
    n_sigma : float
        Background-noise multiple below which nothing counts as particle.

    Returns
    -------
    mask : numpy.ndarray of bool
    threshold : float
        The threshold used.

    References
    ----------
    .. [1] N. Otsu, IEEE Trans. Syst. Man Cybern. 9, 62 (1979).
    """
    thickness = np.asarray(thickness, dtype=float)
    finite = np.isfinite(thickness)
    if threshold is None:
        from skimage.filters import threshold_otsu

        v = thickness[finite]
        if v.size < 2 or np.ptp(v) == 0:
            raise ValueError("cannot find the particle: no thickness contrast (give a mask)")
        otsu = float(threshold_otsu(hist=_histogram_256(v)))
        bg, fg = v[v <= otsu], v[v > otsu]
        med = _median(bg)
        floor = med + n_sigma * 1.4826 * _median(np.abs(bg - med))
        threshold = min(otsu, max(floor, fraction * _median(fg)))
    mask = finite & (np.where(finite, thickness, -np.inf) > threshold)
    return mask, float(threshold)


def _histogram_256(v):
    """(counts, bin centres) of scikit-image's 256-bin histogram over the range of ``v``.

    ``np.histogram``'s bins, counted by one ``bincount`` (its uniform-bin path checks
    each value against the edges again: 3x the time here).
    """
    lo, hi = float(v.min()), float(v.max())
    edges = np.linspace(lo, hi, 257)
    idx = ((v - lo) * (256.0 / (hi - lo))).astype(np.intp)
    np.minimum(idx, 255, out=idx)        # the last edge belongs to the last bin
    # values on an edge go where np.histogram puts them (its rounding correction)
    idx -= v < edges[idx]
    idx += (v >= edges[idx + 1]) & (idx != 255)
    return np.bincount(idx, minlength=256), 0.5 * (edges[:-1] + edges[1:])


def _median(v):
    """Median of finite values (``np.median`` less its NaN handling)."""
    n = v.size
    k = n // 2
    if n % 2:
        return float(np.partition(v, k)[k])
    p = np.partition(v, (k - 1, k))
    return 0.5 * float(p[k - 1] + p[k])
