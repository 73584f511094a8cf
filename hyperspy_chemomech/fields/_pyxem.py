"""pyxem's strain conventions converted to ours (StrainMap, DisplacementGradientMap): array math.

A convention of another tool, converted on entry, so it is written here in the ground;
:meth:`StrainField.from_pyxem` (and :func:`hyperspy_chemomech.diffraction.from_pyxem`)
wrap it for signals.

pyxem (0.21) fits in reciprocal space. ``get_DisplacementGradientMap`` solves
``Vu @ L = Vs`` for the row vectors of the strained (Vs) and reference (Vu)
diffraction vectors, whose columns are, by default, in the order of
``get_diffraction_vectors``: **(ky, kx)**. So in column form ``vs = L.T vu``: the
reciprocal distortion in (ky, kx) order is ``L.T``, pyxem stores ``D = L``.
``DisplacementGradientMap.get_strain_maps`` then takes the right polar
decomposition ``D = R U`` and reports

- ``e11 = 1/U[0, 0] - 1`` and ``e22 = 1/U[1, 1] - 1`` (approximately undoing the
  reciprocal-space inversion), i.e. the **ky** and **kx** directions;
- ``e12 = U[0, 1]`` (no inversion, so to first order the *negative* of the
  real-space tensor shear);
- ``theta = -asin(R[1, 0])``, to first order the negative of our rotation.

To first order in the strain, our components are therefore
``(e11, e22, e12, theta) = (e22_pyxem, e11_pyxem, -e12_pyxem, -theta_pyxem)``.
Rather than apply that approximation, we rebuild ``D`` exactly from pyxem's four
maps (``U`` and ``R`` determine it; the polar decomposition is unique) and
convert it exactly: ``A = P D.T P`` (``P`` swaps x and y), ``H = inv(A).T - I``.
"""

import numpy as np

from ._components import components_from_gradient, gradient_from_reciprocal
from ._frames import detector_to_image

_SWAP = np.array([[0.0, 1.0], [1.0, 0.0]])


def pyxem_strain_to_tensor(e11, e22, e12, theta):
    """Rebuild pyxem's 2x2 tensor ``D = R U`` from its four strain maps.

    Parameters
    ----------
    e11, e22, e12, theta : array_like, shape (ny, nx)
        The maps of ``pyxem.signals.StrainMap`` (pyxem's meaning, see module notes).

    Returns
    -------
    numpy.ndarray, shape (ny, nx, 2, 2)
    """
    e11, e22, e12, theta = (np.asarray(a, dtype=float) for a in (e11, e22, e12, theta))
    U = np.empty(e11.shape + (2, 2))
    U[..., 0, 0] = 1.0 / (1.0 + e11)
    U[..., 1, 1] = 1.0 / (1.0 + e22)
    U[..., 0, 1] = U[..., 1, 0] = e12
    s, c = -np.sin(theta), np.cos(theta)  # R[1, 0] = sin(-theta)
    R = np.empty_like(U)
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1] = c, -s, s, c
    return R @ U


def pyxem_tensor_to_gradient(D, vector_order="yx", scan_rotation=0.0, flip=False):
    """Our real-space displacement gradient from pyxem's reciprocal tensor ``D``.

    Parameters
    ----------
    D : array_like, shape (..., 2, 2) or (..., 3, 3)
        pyxem's displacement gradient tensor (``Vs = Vu @ D`` for row vectors).
    vector_order : {"yx", "xy"}
        Column order of the vectors pyxem fitted: "yx" (the default of
        ``get_diffraction_vectors``: ky, kx) or "xy".
    scan_rotation, flip : float, bool
        Detector-to-image geometry, as in :func:`strain_from_diffraction`.

    Returns
    -------
    numpy.ndarray, shape (..., 2, 2)
        ``H[..., i, j] = du_i/dx_j`` in the image frame.
    """
    D = np.asarray(D, dtype=float)[..., :2, :2]
    if vector_order not in ("yx", "xy"):
        raise ValueError(f"vector_order must be 'yx' or 'xy', got {vector_order!r}")
    A = np.swapaxes(D, -1, -2)  # column form: v_strained = A v_reference
    if vector_order == "yx":
        A = _SWAP @ A @ _SWAP
    Q = detector_to_image(scan_rotation, flip)
    return gradient_from_reciprocal(Q @ A @ Q.T)  # Q is orthogonal


def simulated_strain_truth(strain_matrix=None, navigation_shape=(32, 32), reference=(0, 0)):
    """The strain that ``pyxem.data.simulated_strain`` imposes, in our convention.

    The generator moves each spot (relative to the beam) as the row vector
    ``v @ T`` with ``T = I + strain_matrix * precip`` (``precip`` a Gaussian-blurred
    ellipse) and draws it with ``skimage.draw.disk(v[:2])``: ``v[0]`` is the
    detector *row* (ky), ``v[1]`` the column (kx). In column form
    ``(ky, kx)' = T^T (ky, kx)``; in our (kx, ky) order the reciprocal distortion
    is ``A = P T^T P`` and the real-space gradient ``H = inv(A).T - I``.

    Parameters
    ----------
    strain_matrix : array_like, shape (3, 3), optional
        As passed to the generator (its default when None).
    navigation_shape : (int, int)
        As passed to the generator.
    reference : (int, int) or None
        Scan pixel (row, column) whose lattice is the reference (pyxem's workflow
        uses ``vectors.inav[0, 0]``); None for the generator's undistorted lattice.

    Returns
    -------
    numpy.ndarray, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad) in the image frame.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.draw import ellipse

    if strain_matrix is None:
        strain_matrix = np.array([[0.1, 0.05, 0], [0.15, 0.2, 0], [0, 0, 1]])
    strain_matrix = np.asarray(strain_matrix, dtype=float)
    precip = np.zeros(navigation_shape)  # the generator's precipitate, rebuilt
    r, c = navigation_shape[0] // 2, navigation_shape[1] // 2
    rr, cc = ellipse(r, c, r_radius=int(np.round(r * 0.5)), c_radius=int(np.round(c * 0.7)))
    precip[rr, cc] = 1
    gaussian_filter(precip, sigma=3, output=precip)
    T = np.eye(2) + strain_matrix[:2, :2] * precip[..., None, None]
    A = _SWAP @ np.swapaxes(T, -1, -2) @ _SWAP
    if reference is not None:
        A = A @ np.linalg.inv(A[tuple(reference)])
    return components_from_gradient(gradient_from_reciprocal(A))
