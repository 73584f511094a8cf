"""The particle in a thickness map: Otsu's threshold kept below the thin rim."""

import numpy as np

from ._compiled import kernels, use_compiled_pass


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
        compiled = use_compiled_pass(v.size)
        lo, hi, n = (kernels()["range_finite"](v) if compiled
                     else (v.min(initial=np.inf), v.max(initial=-np.inf), v.size))
        if n < 2 or lo == hi:
            raise ValueError("cannot find the particle: no thickness contrast (give a mask)")
        otsu = float(threshold_otsu(hist=_histogram_256(v, lo, hi, compiled)))
        bg, fg = v[v <= otsu], v[v > otsu]
        med = _median(bg, overwrite=True)
        np.subtract(bg, med, out=bg)      # bg is ours: its deviations in place
        np.abs(bg, out=bg)
        # sorted, not partitioned: the deviations of the many exact zeros of NNLS's
        # background all equal med, ties on which introselect is ~2x slower than the sort
        bg.sort()
        mad = _median(bg, overwrite=True)
        med_fg = _median(fg, overwrite=True)
        floor = med + n_sigma * 1.4826 * mad
        threshold = min(otsu, max(floor, fraction * med_fg))
    mask = np.greater(thickness, threshold, where=finite, out=np.zeros(thickness.shape, bool))
    return mask, float(threshold)


def _histogram_256(v, lo=None, hi=None, compiled=False):
    """(counts, bin centres) of scikit-image's 256-bin histogram of ``v`` over [lo, hi].

    ``lo`` and ``hi`` (default: computed) are the extremes of the finite values.
    ``np.histogram``'s bins, counted by one ``bincount`` (its uniform-bin path checks
    each value against the edges again: 3x the time here), which needs ``v`` finite,
    or (``compiled``) by one compiled loop, which skips NaN.
    """
    lo = float(np.nanmin(v) if lo is None else lo)
    hi = float(np.nanmax(v) if hi is None else hi)
    edges = np.linspace(lo, hi, 257)
    if compiled:
        counts = np.zeros(256, dtype=np.intp)
        kernels()["bin_256"](v, lo, edges, counts)
        return counts, 0.5 * (edges[:-1] + edges[1:])
    idx = ((v - lo) * (256.0 / (hi - lo))).astype(np.intp)
    np.minimum(idx, 255, out=idx)        # the last edge belongs to the last bin
    # values on an edge go where np.histogram puts them (its rounding correction)
    idx -= v < edges[idx]
    idx += (v >= edges[idx + 1]) & (idx != 255)
    return np.bincount(idx, minlength=256), 0.5 * (edges[:-1] + edges[1:])


def _median(v, overwrite=False):
    """Median of finite values (``np.median`` less its NaN handling).

    ``overwrite``: partition ``v`` itself (its order is lost), not a copy.
    """
    n = v.size
    k = n // 2
    kth = k if n % 2 else (k - 1, k)
    if overwrite:
        v.partition(kth)
        p = v
    else:
        p = np.partition(v, kth)
    return float(p[k]) if n % 2 else 0.5 * float(p[k - 1] + p[k])
