"""Input checks shared by every engine that fits or splits strain on a composition map."""

import numpy as np


def validate_strain_composition(strain, X, mask, pixel_size):
    """Check a strain map, a composition map and the body for a mechanics fit.

    The same checks serve learning and decomposition, so both fail alike.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad); NaN = missing, never infinite.
    X : array_like, shape (ny, nx)
        Composition (fraction in [0, 1]) inside the body, NaN outside.
    mask : array_like of bool or None
        The body; default where ``X`` is finite. ``X`` must be finite inside it.
    pixel_size : float or (float, float)
        (dy, dx) in nm, positive.

    Returns
    -------
    strain, X : numpy.ndarray
        As float arrays (the caller's arrays are not modified).
    mask : numpy.ndarray of bool

    Raises
    ------
    ValueError
        Naming the problem: shapes, grids, an empty body, X outside [0, 1], infinite
        strain, a non-positive pixel size.
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
    ps = float(np.mean(np.broadcast_to(np.asarray(pixel_size, float), (2,))))
    if not np.isfinite(ps) or ps <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size}")
    return strain, X, mask
