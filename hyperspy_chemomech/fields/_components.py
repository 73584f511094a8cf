"""The pinned component order and the displacement gradient <-> components map.

Every map of this package stores in-plane strain as ``(e11, e22, e12, theta)`` in the
image frame (x = columns, y = rows; ``docs/conventions.rst``). With the displacement
gradient ``H[i, j] = du_i/dx_j`` (index 0 = x, 1 = y):

    e11 = H[0, 0],  e22 = H[1, 1],
    e12 = (H[0, 1] + H[1, 0]) / 2      (tensor shear, not engineering),
    theta = (H[1, 0] - H[0, 1]) / 2    (rigid rotation, rad, from +x toward +y),

so ``H = [[e11, e12 - theta], [e12 + theta, e22]]``. A measured reciprocal lattice
``g = A g_ref`` gives ``H = inv(A)^T - I`` (:func:`gradient_from_reciprocal`). This module is the only place
that writes this map; everything else calls it.
"""

import numpy as np

#: Strain-field components, in storage order (image frame, tensor shear, rotation in rad).
COMPONENTS = ("e11", "e22", "e12", "theta")
#: Plane stress components (GPa), same tensor order.
STRESS_COMPONENTS = ("sigma_11", "sigma_22", "sigma_12")
#: Eigenstrain-law components in the crystal frame: [100], [001], then the shear.
LAW_COMPONENTS = ("e_100", "e_001", "e_shear")


def components_from_gradient(H, axes=(-2, -1)):
    """(e11, e22, e12, theta) from a displacement gradient ``H[i, j] = du_i/dx_j``.

    Parameters
    ----------
    H : array_like
        Displacement gradient (dimensionless) with its two tensor indices on ``axes``:
        ``(-2, -1)`` for shape ``(..., 2, 2)`` (default), ``(0, 1)`` for ``(2, 2, ...)``.
    axes : (int, int)
        Positions of the indices i (displacement) and j (derivative).

    Returns
    -------
    numpy.ndarray, shape (4, ...)
        e11, e22, e12 (tensor shear), theta (rad, positive from +x toward +y).
    """
    H = np.moveaxis(np.asarray(H, dtype=float), axes, (0, 1))
    return np.stack([H[0, 0], H[1, 1], 0.5 * (H[0, 1] + H[1, 0]), 0.5 * (H[1, 0] - H[0, 1])])


def gradient_from_components(e11, e22, e12, theta, axes=(-2, -1)):
    """Inverse of :func:`components_from_gradient`.

    Parameters
    ----------
    e11, e22, e12, theta : array_like
        Strain components (tensor shear) and rotation (rad); broadcast together.
    axes : (int, int)
        Where the two tensor indices go: ``(-2, -1)`` gives shape ``(..., 2, 2)``
        (default), ``(0, 1)`` gives ``(2, 2, ...)``.

    Returns
    -------
    numpy.ndarray
        ``H[i, j] = du_i/dx_j`` (index 0 = x, 1 = y).
    """
    e11, e22, e12, theta = np.broadcast_arrays(*(np.asarray(a, float) for a in
                                                 (e11, e22, e12, theta)))
    H = np.stack([np.stack([e11, e12 - theta]), np.stack([e12 + theta, e22])])
    return np.moveaxis(H, (0, 1), axes)


def as_strain(strain):
    """``strain`` as a float array of shape (4, ny, nx), or a ValueError naming the shape."""
    e = np.asarray(strain, dtype=float)
    if e.ndim != 3 or e.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx) (e11, e22, e12, theta), got {e.shape}")
    return e


def gradient_from_reciprocal(A):
    """Real-space displacement gradient ``H = inv(A).T - I`` from a reciprocal distortion.

    Parameters
    ----------
    A : numpy.ndarray, shape (..., 2, 2)
        Reciprocal distortion (``g = A g_ref`` for column vectors), image frame.

    Returns
    -------
    numpy.ndarray, shape (..., 2, 2)
        ``H[..., i, j] = du_i/dx_j``; NaN where ``A`` is not finite or singular.
    """
    A = np.asarray(A, dtype=float)
    H = np.full(A.shape, np.nan)
    good = np.isfinite(A).all(axis=(-2, -1))
    good[good] &= np.abs(np.linalg.det(A[good])) > 1e-12
    H[good] = np.swapaxes(np.linalg.inv(A[good]), -1, -2) - np.eye(2)
    return H
