"""Crystal <-> image frames for stiffness: in-plane rotations of plane stiffness, 3D Voigt rotations.

(Second-rank tensors rotate with :func:`hyperspy_chemomech.fields.rotate_strain`.)

Conventions (``docs/conventions.rst``): the image frame has x along the columns and y
along the rows; ``crystal_angle`` is the angle (rad) from +x to the crystal's first
in-plane axis ([100] for a [010] beam), measured toward +y. A vector with crystal-frame
components ``v_c`` has image-frame components ``R(angle) @ v_c`` with
``R = [[cos, -sin], [sin, cos]]``; a strain tensor transforms as ``R eps R^T``.
"""

import numpy as np

from ..fields import rotation_2d

# Voigt index of the symmetric tensor pair (i, j), 2D: 11 -> 0, 22 -> 1, 12 -> 2.
_V2 = np.array([[0, 2], [2, 1]])
# 3D: 11 22 33 23 13 12 -> 0..5
_V3 = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])


def _voigt_to_tensor(q, index):
    """Voigt matrix (engineering-shear convention) -> 4th-order tensor C_ijkl."""
    return q[..., index[:, :, None, None], index[None, None, :, :]]


def _tensor_to_voigt(c, index, n):
    out = np.empty(c.shape[:-4] + (n, n))
    d = index.shape[0]
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    for i, j in pairs:
        for k, l in pairs:
            out[..., index[i, j], index[k, l]] = c[..., i, j, k, l]
    return out


def _rotate_tensor4(c, r):
    """C'_ijkl = R_ia R_jb R_kc R_ld C_abcd (R may be a stack broadcasting against C)."""
    return np.einsum("...ia,...jb,...kc,...ld,...abcd->...ijkl", r, r, r, r, c, optimize=True)


def rotate_plane_stiffness(stiffness, angle):
    """Rotate a 3x3 plane stiffness from the crystal frame into the image frame.

    Parameters
    ----------
    stiffness : array_like, shape (..., 3, 3)
        Plane stiffness Q (GPa) in the crystal frame, acting on
        ``(e11, e22, 2 e12)`` (engineering shear) and giving ``(s11, s22, s12)``.
    angle : float or array_like
        ``crystal_angle`` (rad): from image +x to the crystal's first in-plane axis,
        toward +y; an array broadcasts against the leading axes of ``stiffness``.

    Returns
    -------
    numpy.ndarray, shape (..., 3, 3)
        Q in the image frame (GPa), same Voigt convention.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.mechanics import rotate_plane_stiffness
    >>> q = np.diag([2.0, 1.0, 0.5])
    >>> q90 = rotate_plane_stiffness(q, np.pi / 2)
    >>> bool(np.allclose(np.diag(q90), [1.0, 2.0, 0.5]))
    True
    """
    q = np.asarray(stiffness, dtype=float)
    if q.shape[-2:] != (3, 3):
        raise ValueError(f"plane stiffness must have shape (..., 3, 3), got {q.shape}")
    c = _voigt_to_tensor(q, _V2)
    return _tensor_to_voigt(_rotate_tensor4(c, rotation_2d(np.asarray(angle, dtype=float))),
                            _V2, 3)


def rotate_stiffness_3d(stiffness, rotation):
    """Express a 6x6 Voigt stiffness in a rotated frame.

    Parameters
    ----------
    stiffness : array_like, shape (6, 6)
        Voigt stiffness (GPa), order 11, 22, 33, 23, 13, 12, engineering shear.
    rotation : array_like, shape (3, 3)
        Rows are the new frame's unit axes written in the old frame
        (``v_new = rotation @ v_old``).

    Returns
    -------
    numpy.ndarray, shape (6, 6)
    """
    c = _voigt_to_tensor(np.asarray(stiffness, dtype=float), _V3)
    return _tensor_to_voigt(_rotate_tensor4(c, np.asarray(rotation, dtype=float)), _V3, 6)


_AXES = {"[100]": ([1, 0, 0], [0, 1, 0], [0, 0, 1]),
         "[010]": ([0, 1, 0], [1, 0, 0], [0, 0, 1]),
         "[001]": ([0, 0, 1], [1, 0, 0], [0, 1, 0])}


def beam_frame(beam="[010]"):
    """Rotation whose rows are (in-plane axis 1, in-plane axis 2, normal) in the crystal frame.

    Parameters
    ----------
    beam : str, array_like of 3 floats, or orix Orientation / Rotation
        ``"[100]"``, ``"[010]"``, ``"[001]"`` (in-plane axes ([010], [001]),
        ([100], [001]), ([100], [010]) respectively), a Cartesian crystal-frame direction
        (axis 1 is the projection of [100], or of [010] when the beam is along [100];
        axis 2 = beam x axis 1), or an orix orientation, for which the in-plane axes
        are the image x and y directions.

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        ``frame @ v_crystal`` gives (in-plane 1, in-plane 2, out-of-plane) components.
    """
    if isinstance(beam, str):
        key = beam.replace(" ", "").replace(",", "")
        if key not in _AXES:
            raise ValueError(f"beam must be one of {sorted(_AXES)}, a 3-vector or an orix "
                             f"Orientation, got {beam!r}")
        b, e1, e2 = (np.asarray(v, dtype=float) for v in _AXES[key])
        return np.array([e1, e2, np.cross(e1, e2)])
    if hasattr(beam, "to_matrix"):
        return _orientation_matrix(beam)
    b = np.asarray(beam, dtype=float)
    if b.shape != (3,) or not np.all(np.isfinite(b)) or np.linalg.norm(b) == 0:
        raise ValueError(f"beam direction must be a non-zero finite 3-vector, got {beam!r}")
    b = b / np.linalg.norm(b)
    ref = np.array([1.0, 0, 0]) if abs(b[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = ref - b * (ref @ b)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(b, e1)
    return np.array([e1, e2, np.cross(e1, e2)])


def _orientation_matrix(orientation):
    """Rows: crystal-frame components of the sample (image) x, y, z axes.

    orix orientations rotate sample-frame vectors into the crystal frame
    (``v_crystal = O * v_sample``, Bunge convention), so the columns of ``O.to_matrix()``
    are the sample axes in crystal coordinates and its transpose maps crystal -> sample.
    """
    m = np.asarray(orientation.to_matrix(), dtype=float)
    if m.size != 9:
        raise ValueError(f"expected a single orientation, got {m.size // 9}")
    return m.reshape(3, 3).T
