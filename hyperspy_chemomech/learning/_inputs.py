"""Inputs of a fit: the maps checked (:mod:`hyperspy_chemomech.fields`), the body completed.

Bad input gets a clear error naming the problem; nothing here modifies the
caller's arrays (the body extension returns a new composition map).
"""

import warnings

import numpy as np
from scipy import ndimage

from ..fields import validate_strain_composition


def mean_pixel_size(pixel_size):
    """One pixel size (nm) from ``dy`` or ``(dy, dx)``: their mean."""
    return float(np.mean(np.broadcast_to(np.asarray(pixel_size, float), (2,))))


def validate_variance(variance, strain):
    """``variance`` as a float array of the strain's shape (4, ny, nx), or None."""
    if variance is None:
        return None
    from ..fields import require_real

    variance = np.asarray(require_real(variance, "variance"), float)
    if variance.shape != strain.shape:
        raise ValueError(f"variance shape {variance.shape} differs from strain {strain.shape}")
    finite = np.isfinite(variance)
    if not finite.any():
        raise ValueError("variance is NaN everywhere: give finite variances (or variance=None)")
    if (variance[finite] <= 0).any():
        raise ValueError(f"variance must be > 0 where finite; {int((variance[finite] <= 0).sum())} "
                         "value(s) are <= 0")
    return variance


def check_identifiable(X, mask, min_range):
    """Raise unless X spans at least ``min_range`` (5-95 %) and varies in space."""
    lo, hi = np.quantile(X[mask], [0.05, 0.95])
    if hi - lo < min_range:
        raise ValueError(
            f"composition range too narrow to identify a law: 90 % of the particle lies in "
            f"X = [{lo:.3f}, {hi:.3f}] (span {hi - lo:.3f} < {min_range}); only eps0 "
            "differences between compositions present in the particle can be learned"
        )
    gy, gx = np.gradient(np.where(mask, X, np.nan))
    grad = np.hypot(gx, gy)
    frac = np.mean(np.nan_to_num(grad[mask]) > 0.01)
    if frac < 0.01:
        raise ValueError(
            f"composition barely varies in space ({100 * frac:.2f} % of pixels with |grad X| > "
            "0.01 /px): a uniform composition gives no coherency strain to learn from"
        )


def extend_body(strain, X, reach_px):
    """Add to the body the strain-finite pixels just outside the composition's support.

    An X-ray composition map loses the thin rim of a particle (its thickness
    threshold), while the 4D-STEM strain map still sees it. The body of the
    mechanics must be the whole particle: a traction-free edge a few pixels inside
    the real one biases the law by several per cent. Pixels with finite strain
    within ``reach_px`` of the composition's support join the body with the
    composition of the nearest pixel that has one.

    Returns
    -------
    X_ext : numpy.ndarray
        Composition, extended (a new array).
    n_added : int
    """
    have = np.isfinite(X)
    dist, idx = ndimage.distance_transform_edt(~have, return_indices=True)
    seen = np.isfinite(strain).any(axis=0)
    # only pixels connected to the body through strain-finite pixels within reach
    grow = have.copy()
    add = seen & ~have & (dist <= reach_px)
    for _ in range(int(np.ceil(reach_px))):
        new = add & ndimage.binary_dilation(grow) & ~grow
        if not new.any():
            break
        grow |= new
    X_ext = np.where(grow & ~have, X[tuple(idx)], X)
    return X_ext, int((grow & ~have).sum())


def prepare_body(strain, X, mask, pixel_size, variance, body, report=None):
    """The checked maps and the body of the mechanics, extended to the strain's rim.

    Parameters
    ----------
    strain, X, mask, pixel_size, variance
        As :func:`~hyperspy_chemomech.learning.learn_law`.
    body : BodyOptions
    report : dict, optional
        Filled as :func:`~hyperspy_chemomech.fields.validate_strain_composition` does
        (holes filled, vacuum excluded, outliers).

    Returns
    -------
    strain, X, mask, variance : numpy.ndarray (new arrays where changed)
    n_extended : int
        Pixels added to the body (0 with an explicit mask).
    """
    given_mask = mask
    strain, X, mask = validate_strain_composition(strain, X, mask, pixel_size, report=report)
    n_extended = 0
    if given_mask is None and body.extend_body:
        X, n_extended = extend_body(strain, X, body.reach_px)
        mask = np.isfinite(X)
    check_identifiable(X, mask, body.min_range)
    if body.boundary == "dirichlet":
        warn_held_edge_on_whole_particle(mask)
    return strain, X, mask, validate_variance(variance, strain), n_extended


def warn_held_edge_on_whole_particle(mask, max_border_fraction=0.1):
    """Warn when ``boundary="dirichlet"`` is asked for a particle wholly inside the map.

    A held edge is for a field of view that cuts the particle (or a clamped one). When
    the whole particle is in view its edges are free, and holding them at the measured
    displacement brings in the 4D-STEM reference strain (not elastic, but in that
    displacement): with a composition-dependent stiffness it cannot be told from the
    law (measured on LFP50_P2: [100] 0.000 +- 0.038 held, against 0.046 +- 0.003 free).
    A map cropped to the particle touches the border at a few outline pixels; a window
    that cuts the particle runs along it.

    Parameters
    ----------
    mask : numpy.ndarray of bool
        The body.
    max_border_fraction : float
        Largest fraction of the body's outline on the map's border (outermost pixel
        ring) for which the particle counts as wholly in view.

    Returns
    -------
    bool
        True when the particle is wholly in view (and the warning was given).
    """
    outline = mask & ~ndimage.binary_erosion(mask)
    border = np.zeros_like(mask)
    border[[0, -1], :] = border[:, [0, -1]] = True
    fraction = (outline & border).sum() / max(int(outline.sum()), 1)
    inside = bool(fraction < max_border_fraction)
    if inside:
        warnings.warn(
            f"boundary='dirichlet' on a particle that lies wholly inside the map ({100 * fraction:.0f} % "
            "of its outline on the map's border): its edges are free, so boundary='free' is the "
            "physics; a held edge mixes the 4D-STEM reference strain into the boundary and, with "
            "a composition-dependent stiffness, can confound it with the law (on noisy data "
            "the law moves far from the free fit)", UserWarning,
            stacklevel=4)
    return inside
