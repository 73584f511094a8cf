"""In-plane rotations of tensors between frames: written once, used everywhere.

``crystal_angle`` (rad) is the angle from image +x to the crystal's first in-plane axis
([100] for a [010] beam), measured toward +y. A vector with components ``v_c`` in a
frame at ``angle`` has image components ``R(angle) @ v_c``, ``R = [[cos, -sin], [sin,
cos]]``; a second-rank tensor transforms as ``Q T Q^T`` for any orthogonal ``Q``
(rotation or mirror). The lattice rotation theta is a pseudo-scalar in 2D: unchanged by
a rotation, reversed by a mirror.
"""

import numpy as np


def rotation_2d(angle):
    """``R(angle)``, shape ``angle.shape + (2, 2)``: turns +x toward +y by ``angle`` (rad)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def orthogonal_part(matrix):
    """The orthogonal factor ``Q`` of a 2x2 linear map (polar decomposition), a rotation or
    a mirror; the linear part of a 3x3 homogeneous matrix is used."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=float)[:2, :2])
    return u @ vt


def transform_symmetric(e11, e22, e12, q):
    """Components of the symmetric tensor ``Q E Q^T`` (``E = [[e11, e12], [e12, e22]]``).

    Parameters
    ----------
    e11, e22, e12 : array_like
        Tensor components (a strain with tensor shear, or a stress).
    q : array_like, shape (2, 2) or (..., 2, 2)
        Orthogonal matrix; a stack broadcasts against the components.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        ``(e11', e22', e12')``.
    """
    q = np.asarray(q, dtype=float)
    q00, q01, q10, q11 = q[..., 0, 0], q[..., 0, 1], q[..., 1, 0], q[..., 1, 1]
    return (q00 * q00 * e11 + 2 * q00 * q01 * e12 + q01 * q01 * e22,
            q10 * q10 * e11 + 2 * q10 * q11 * e12 + q11 * q11 * e22,
            q00 * q10 * e11 + (q00 * q11 + q01 * q10) * e12 + q01 * q11 * e22)


def rotate_strain(strain, angle, axis=0, inverse=False):
    """Rotate in-plane tensor components (e11, e22, e12) between crystal and image frames.

    Parameters
    ----------
    strain : array_like
        Tensor components ``(e11, e22, e12)`` (tensor shear, not engineering) along
        ``axis``, which must have length 3; a stress ``(s11, s22, s12)`` rotates the same way.
    angle : float or array_like
        ``crystal_angle`` (rad), broadcast against the other axes of ``strain``
        (e.g. a per-pixel map).
    axis : int
        Axis holding the three components (0 for ``(3, ny, nx)`` maps, -1 for ``(..., 3)``).
    inverse : bool
        ``False``: crystal -> image frame; ``True``: image -> crystal frame.

    Returns
    -------
    numpy.ndarray
        Rotated components, same shape as ``strain`` (a new array).

    Notes
    -----
    With ``c = cos(angle)``, ``s = sin(angle)``:
    ``e11' = c^2 e11 + s^2 e22 - 2 c s e12``,
    ``e22' = s^2 e11 + c^2 e22 + 2 c s e12``,
    ``e12' = c s (e11 - e22) + (c^2 - s^2) e12``.
    The lattice rotation theta is a scalar in 2D and does not change.
    """
    e = np.asarray(strain, dtype=float)
    if e.ndim == 0 or e.shape[axis] != 3:
        raise ValueError(f"strain must hold 3 components (e11, e22, e12) along axis {axis}, "
                         f"got shape {e.shape}")
    e = np.moveaxis(e, axis, 0)
    a = np.asarray(angle, dtype=float)
    out = np.stack(transform_symmetric(*e, rotation_2d(-a if inverse else a)))
    return np.moveaxis(out, 0, axis)


def transform_strain_map(strain, q):
    """(e11, e22, e12, theta) maps expressed in a frame turned (and maybe mirrored) by ``q``.

    Parameters
    ----------
    strain : array_like, shape (4, ...)
        Image-frame components (tensor shear) and rotation (rad).
    q : array_like, shape (2, 2)
        Orthogonal matrix (see :func:`orthogonal_part`); a mirror (det -1) also
        reverses the sense of theta.

    Returns
    -------
    numpy.ndarray, shape (4, ...)
        ``Q E Q^T`` for the symmetric part, ``det(Q) theta`` for the rotation.
    """
    e11, e22, e12, theta = np.asarray(strain, dtype=float)
    q = np.asarray(q, dtype=float)
    return np.stack(transform_symmetric(e11, e22, e12, q) +
                    (np.sign(np.linalg.det(q)) * theta,))


def detector_to_image(scan_rotation=0.0, flip=False):
    """The 2x2 matrix ``Q`` taking detector vectors (kx, ky) to the image frame (x, y).

    ``g_image = R(scan_rotation) @ diag(1, -1 if flip else 1) @ g_detector``, with
    ``scan_rotation`` the angle (rad) of the detector kx axis in the image frame,
    measured from +x toward +y.

    Parameters
    ----------
    scan_rotation : float
        Angle (rad) of the detector kx axis in the image frame.
    flip : bool
        Detector ky mirrored relative to scan y.

    Returns
    -------
    numpy.ndarray, shape (2, 2)
    """
    return rotation_2d(float(scan_rotation)) @ np.diag([1.0, -1.0 if flip else 1.0])


def rotate_gradient(H, angle):
    """Rotate a displacement-gradient field from a frame at ``angle`` into the image frame.

    Both indices rotate: ``H_image = R H R^T`` with ``R = R(angle)`` (rad, from image +x
    toward +y), which takes the frame's x axis onto its direction in the image.

    Parameters
    ----------
    H : array_like, shape (..., 2, 2)
    angle : float

    Returns
    -------
    numpy.ndarray, shape (..., 2, 2)
    """
    R = rotation_2d(float(angle))
    return R @ np.asarray(H, float) @ R.T
