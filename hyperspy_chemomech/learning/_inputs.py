"""Inputs of a fit: the maps checked, the body completed, the stiffness resolved.

Bad input gets a clear error naming the problem; nothing here modifies the
caller's arrays (the body extension returns a new composition map).
"""

import numpy as np
from scipy import ndimage


def mean_pixel_size(pixel_size):
    """One pixel size (nm) from ``dy`` or ``(dy, dx)``: their mean."""
    return float(np.mean(np.broadcast_to(np.asarray(pixel_size, float), (2,))))


def validate_maps(strain, X, mask, pixel_size):
    """Check strain, composition, body and pixel size; return float copies and the body.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad); NaN = missing, never infinite.
    X : array_like, shape (ny, nx)
        Composition (fraction in [0, 1]) on the strain grid; NaN = no data.
    mask : array_like of bool, shape (ny, nx), optional
        The body; default where ``X`` is finite. ``X`` must be finite inside it.
    pixel_size : float or (float, float)
        Pixel size (nm), positive.

    Returns
    -------
    strain, X : numpy.ndarray (float)
    mask : numpy.ndarray of bool
    """
    strain = np.asarray(strain, dtype=float)
    X = np.asarray(X, dtype=float)
    if strain.ndim != 3 or strain.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx) (e11, e22, e12, theta), got {strain.shape}")
    if X.shape != strain.shape[1:]:
        raise ValueError(
            f"composition grid {X.shape} differs from the strain grid {strain.shape[1:]}; "
            "resample it first (e.g. CorrelativeTransform.apply(comp, onto=strain))"
        )
    if mask is None:
        mask = np.isfinite(X)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != X.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the grid {X.shape}")
        holes = mask & ~np.isfinite(X)
        if holes.any():
            raise ValueError(f"composition is NaN at {int(holes.sum())} pixel(s) inside the mask")
    if not mask.any():
        raise ValueError("the particle is empty: no finite composition (or empty mask)")
    xin = X[mask]
    bad = (xin < 0) | (xin > 1)
    if bad.any():
        raise ValueError(
            f"composition outside [0, 1] at {int(bad.sum())} pixel(s) "
            f"(min {xin.min():.3g}, max {xin.max():.3g}); X is a fraction, fix the unmixing "
            "rather than clipping"
        )
    if np.isinf(strain).any():
        raise ValueError("strain holds infinite values; use NaN for failed fits")
    ps = mean_pixel_size(pixel_size)
    if not np.isfinite(ps) or ps <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size}")
    return strain, X, mask


def validate_variance(variance, strain):
    """``variance`` as a float array of the strain's shape (4, ny, nx), or None."""
    if variance is None:
        return None
    variance = np.asarray(variance, float)
    if variance.shape != strain.shape:
        raise ValueError(f"variance shape {variance.shape} differs from strain {strain.shape}")
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


def prepare_body(strain, X, mask, pixel_size, variance, body):
    """The checked maps and the body of the mechanics, extended to the strain's rim.

    Parameters
    ----------
    strain, X, mask, pixel_size, variance
        As :func:`~hyperspy_chemomech.learning.learn_law`.
    body : BodyOptions

    Returns
    -------
    strain, X, mask, variance : numpy.ndarray (new arrays where changed)
    n_extended : int
        Pixels added to the body (0 with an explicit mask).
    """
    given_mask = mask
    strain, X, mask = validate_maps(strain, X, mask, pixel_size)
    n_extended = 0
    if given_mask is None and body.extend_body:
        X, n_extended = extend_body(strain, X, body.reach_px)
        mask = np.isfinite(X)
    check_identifiable(X, mask, body.min_range)
    return strain, X, mask, validate_variance(variance, strain), n_extended


def resolve_stiffness(material, plane="stress"):
    """Plane stiffness (crystal frame, GPa) from a material description.

    Parameters
    ----------
    material : str, Material, array_like or pair
        A material name (``"LiFePO4"``: homogeneous C), a
        :class:`~hyperspy_chemomech.mechanics.Material`, a 6x6 Voigt stiffness
        (GPa), or a pair of any of these, ``(X = 0 end member, X = 1 end member)``,
        for a stiffness linear in X (e.g. ``("FePO4", "LiFePO4")``).
    plane : {"stress", "strain"}

    Returns
    -------
    numpy.ndarray (3, 3) or tuple of two
    """
    from ..mechanics import Material, get_material, plane_stiffness

    if plane not in ("stress", "strain"):
        raise ValueError(f"plane must be 'stress' or 'strain', got {plane!r}")

    def one(m):
        if isinstance(m, str):
            m = get_material(m)
        if isinstance(m, Material):
            return plane_stiffness(m.stiffness, plane=plane)
        a = np.asarray(m, dtype=float)
        if a.shape == (6, 6):
            return plane_stiffness(a, plane=plane)
        raise ValueError(
            f"material must be a name, a Material, a 6x6 stiffness or a pair of those; got "
            f"an array of shape {a.shape}"
        )

    if isinstance(material, (tuple, list)) and len(material) == 2 and not (
        np.ndim(material[0]) == 1 and np.size(material[0]) == 6
    ):
        return (one(material[0]), one(material[1]))
    return one(material)
