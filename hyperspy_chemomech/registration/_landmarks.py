"""Closed-form fits of a transform to landmark pairs (similarity with/without mirror, affine)."""

import numpy as np


def check_landmarks(landmarks):
    """Validate landmark pairs; return (moving (N, 2), fixed (N, 2)) float arrays in nm.

    Parameters
    ----------
    landmarks : (array_like, array_like) or dict
        ``(moving_xy, fixed_xy)`` or ``{"moving": ..., "fixed": ...}``; each (N, 2)
        of calibrated (x, y) positions in nm.
    """
    if isinstance(landmarks, dict):
        try:
            mov, fix = landmarks["moving"], landmarks["fixed"]
        except KeyError as err:
            raise ValueError("landmarks dict needs keys 'moving' and 'fixed'") from err
    else:
        try:
            mov, fix = landmarks
        except (TypeError, ValueError) as err:
            raise ValueError("landmarks must be (moving_xy, fixed_xy), each of shape (N, 2)") from err
    mov = np.array(mov, dtype=float)
    fix = np.array(fix, dtype=float)
    if mov.ndim != 2 or mov.shape[1] != 2 or mov.shape != fix.shape:
        raise ValueError(
            f"landmarks must be two (N, 2) arrays of (x, y) in nm, got shapes {mov.shape} and {fix.shape}"
        )
    if not (np.isfinite(mov).all() and np.isfinite(fix).all()):
        raise ValueError("landmarks hold NaN or inf")
    return mov, fix


def fit_landmarks(moving_xy, fixed_xy, model="similarity", allow_reflection=True):
    """Least-squares transform mapping ``moving_xy`` onto ``fixed_xy``.

    Parameters
    ----------
    moving_xy, fixed_xy : ndarray (N, 2)
        Paired (x, y) positions in nm.
    model : {"similarity", "affine"}
        Similarity needs N >= 2 (N >= 3 to decide a mirror), affine N >= 3 not collinear.
    allow_reflection : bool
        Similarity only: let the fit choose a mirrored solution when it fits better.

    Returns
    -------
    ndarray (3, 3)
        Homogeneous matrix, moving nm -> fixed nm.

    References
    ----------
    .. [1] S. Umeyama, "Least-squares estimation of transformation parameters
       between two point patterns", IEEE TPAMI 13, 376 (1991).
    """
    mov = np.asarray(moving_xy, dtype=float)
    fix = np.asarray(fixed_xy, dtype=float)
    n = len(mov)
    cm, cf = mov.mean(axis=0), fix.mean(axis=0)
    dm, df = mov - cm, fix - cf
    m = np.eye(3)
    if model == "affine":
        if n < 3 or np.linalg.matrix_rank(dm, tol=1e-9 * max(np.abs(dm).max(), 1)) < 2:
            raise ValueError("an affine landmark fit needs at least 3 non-collinear pairs")
        lin, *_ = np.linalg.lstsq(dm, df, rcond=None)
        lin = lin.T
    elif model == "similarity":
        if n < 2 or not np.any(dm):
            raise ValueError("a similarity landmark fit needs at least 2 distinct pairs")
        # Umeyama: rotation from the SVD of the cross-covariance; the sign of the
        # last singular vector chooses between proper rotation and reflection
        u, s, vt = np.linalg.svd(df.T @ dm / n)
        d = np.ones(2)
        if np.linalg.det(u @ vt) < 0 and not allow_reflection:
            d[-1] = -1.0
        elif np.linalg.det(u @ vt) < 0 and n < 3:
            d[-1] = -1.0  # two points cannot tell a mirror: keep the proper rotation
        rot = u @ np.diag(d) @ vt
        var_m = np.sum(dm ** 2) / n
        lin = rot * (np.sum(s * d) / var_m)
    else:
        raise ValueError(f"unknown model {model!r}; use 'similarity' or 'affine'")
    m[:2, :2] = lin
    m[:2, 2] = cf - lin @ cm
    return m


def landmark_residuals(matrix, moving_xy, fixed_xy):
    """Distances (nm) between mapped moving landmarks and their fixed partners."""
    p = moving_xy @ matrix[:2, :2].T + matrix[:2, 2]
    return np.hypot(*(p - fixed_xy).T)
