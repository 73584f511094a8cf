"""Sign-agnostic similarity of two multimodal images: mutual information, |correlation|.

The X-ray thickness image and the 4D-STEM dark-field image of one particle can
relate either way (bright or dark particle) and nonlinearly (gamma, saturation,
diffraction blobs), so the metrics here never assume a sign: mutual information
depends only on the joint distribution, and the correlation score is ``|r|``.
"""

import numpy as np


def histogram_bins(n_samples):
    """Number of histogram bins per axis for ``n_samples`` joint samples (8..32)."""
    return int(np.clip(np.sqrt(n_samples / 10.0), 8, 32))


def bin_coordinates(values, lo, hi, bins):
    """Fractional bin coordinates in [0, bins - 1] of ``values`` clipped to [lo, hi]."""
    span = hi - lo if hi > lo else 1.0
    a = np.clip((np.asarray(values, dtype=float) - lo) / span, 0.0, 1.0) * (bins - 1)
    i0 = np.minimum(a.astype(np.intp), bins - 2)
    return i0, a - i0


def joint_histogram(i0a, wa, i0b, wb, bins):
    """Joint histogram with linear (Parzen triangle) kernel: smooth in the sample values.

    Each sample spreads over the 2 x 2 nearest bins with bilinear weights, so the
    histogram, and the mutual information built from it, change continuously as
    the samples move: what a derivative-free optimiser needs.
    """
    base = i0a * bins + i0b
    h = np.bincount(base, (1 - wa) * (1 - wb), minlength=bins * bins)
    h += np.bincount(base + 1, (1 - wa) * wb, minlength=bins * bins)
    h += np.bincount(base + bins, wa * (1 - wb), minlength=bins * bins)
    h += np.bincount(base + bins + 1, wa * wb, minlength=bins * bins)
    return h.reshape(bins, bins)


def entropy_correlation(hist):
    """Entropy correlation coefficient ``2 I(A;B) / (H(A) + H(B))`` of a joint histogram.

    Normalised mutual information in [0, 1]: 0 for independent images, 1 when one
    image is any one-to-one function of the other (whatever its sign or shape).

    References
    ----------
    .. [1] F. Maes, A. Collignon, D. Vandermeulen, G. Marchal, P. Suetens,
       "Multimodality image registration by maximization of mutual information",
       IEEE Trans. Med. Imaging 16, 187 (1997).
    """
    total = hist.sum()
    if total <= 0:
        return 0.0
    p = hist / total
    pa = p.sum(axis=1)
    pb = p.sum(axis=0)

    def _h(q):
        q = q[q > 0]
        return float(-np.sum(q * np.log(q)))

    ha, hb, hab = _h(pa), _h(pb), _h(p.ravel())
    if ha + hb <= 0:
        return 0.0
    return max(0.0, 2.0 * (ha + hb - hab) / (ha + hb))


def _paired(a, b):
    """Flattened float samples with the pairs holding a NaN (or inf) left out."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"samples differ in length: {a.size} vs {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def mutual_information(a, b, bins=None, range_a=None, range_b=None):
    """Normalised mutual information (entropy correlation coefficient) of two samples.

    Parameters
    ----------
    a, b : array_like
        Paired samples (same length), e.g. the two images at the same points.
        NaN pairs are ignored.
    bins : int, optional
        Bins per axis; default from the number of samples.
    range_a, range_b : (float, float), optional
        Intensity ranges mapped onto the bins; default 1st-99th percentiles.

    Returns
    -------
    float
        In [0, 1]; larger is more similar. Unchanged by inverting or applying any
        monotonic (e.g. gamma) contrast to either image, up to binning.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random(5000)
    >>> mutual_information(a, 1 - a**2) > 0.5 > mutual_information(a, a[::-1])
    True
    """
    a, b = _paired(a, b)
    if a.size < 4:
        return 0.0
    bins = histogram_bins(a.size) if bins is None else int(bins)
    range_a = np.percentile(a, [1, 99]) if range_a is None else range_a
    range_b = np.percentile(b, [1, 99]) if range_b is None else range_b
    ia, wa = bin_coordinates(a, *range_a, bins)
    ib, wb = bin_coordinates(b, *range_b, bins)
    return entropy_correlation(joint_histogram(ia, wa, ib, wb, bins))


def absolute_correlation(a, b):
    """Absolute Pearson correlation ``|r|`` of paired samples (NaN pairs ignored).

    Parameters
    ----------
    a, b : array_like
        Same length.

    Returns
    -------
    float
        In [0, 1]; the same for ``b`` and ``-b`` (sign-agnostic).
    """
    a, b = _paired(a, b)
    if a.size < 3:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(abs(np.dot(a, b)) / den) if den > 0 else 0.0


class PairedMetric:
    """A metric against a fixed set of moving samples, evaluated for many fixed samples.

    The moving samples do not change during the optimisation, so their bin
    coordinates (MI) or centred values (correlation) are computed once.

    Parameters
    ----------
    moving_values : ndarray (N,)
    fixed_range : (float, float)
        Intensity range of the fixed image mapped onto the bins (MI only).
    metric : {"mutual_information", "correlation"}
    """

    def __init__(self, moving_values, fixed_range, metric="mutual_information"):
        self.metric = metric
        v = np.asarray(moving_values, dtype=float)
        self.n = v.size
        if metric == "mutual_information":
            self.bins = histogram_bins(v.size)
            lo, hi = np.percentile(v, [1, 99])
            self.ia, self.wa = bin_coordinates(v, lo, hi, self.bins)
            self.fixed_range = fixed_range
        elif metric == "correlation":
            self.v = v
        else:
            raise ValueError(f"unknown metric {metric!r}; use 'mutual_information' or 'correlation'")

    def __call__(self, fixed_values, keep=None):
        """Score (in [0, 1]) of the fixed samples paired with the moving ones (``keep``: subset)."""
        if self.metric == "mutual_information":
            ib, wb = bin_coordinates(fixed_values, *self.fixed_range, self.bins)
            ia, wa = self.ia, self.wa
            if keep is not None:
                ia, wa, ib, wb = ia[keep], wa[keep], ib[keep], wb[keep]
            return entropy_correlation(joint_histogram(ia, wa, ib, wb, self.bins))
        v = self.v if keep is None else self.v[keep]
        f = fixed_values if keep is None else fixed_values[keep]
        return absolute_correlation(v, f)

