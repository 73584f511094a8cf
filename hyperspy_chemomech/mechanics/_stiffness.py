"""3D Voigt stiffness -> 2D plane stiffness (plane stress / plane strain), eigenstrain projection.

Voigt order 11, 22, 33, 23, 13, 12 with engineering shear strains (``2 e23``, ...), so
``sigma = C @ (e11, e22, e33, 2e23, 2e13, 2e12)``. After rotating C into a frame whose
third axis is the beam, the in-plane Voigt indices are p = (11, 22, 12) and the
out-of-plane ones o = (33, 23, 13).
"""

import numpy as np

from ._frames import beam_frame, rotate_stiffness_3d

_P = [0, 1, 5]
_O = [2, 3, 4]


def check_stiffness(c, n, name="stiffness"):
    """Validate a (..., n, n) stiffness: finite, symmetric, positive definite. Returns float array."""
    c = np.asarray(c, dtype=float)
    if c.shape[-2:] != (n, n):
        raise ValueError(f"{name} must have shape (..., {n}, {n}), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} holds non-finite values")
    scale = np.max(np.abs(c)) if c.size else 0.0
    if scale == 0 or not np.allclose(c, np.swapaxes(c, -1, -2), rtol=0, atol=1e-9 * scale):
        raise ValueError(f"{name} must be symmetric and non-zero")
    # Sylvester's criterion on all leading minors, vectorised over the stack
    minors = np.stack([np.linalg.det(c[..., :k, :k]) for k in range(1, n + 1)], axis=-1)
    if np.any(minors <= 1e-12 * scale ** np.arange(1, n + 1)):
        raise ValueError(f"{name} is not positive definite (a crystal's stiffness must be)")
    return c


def isotropic_stiffness(young, poisson):
    """6x6 Voigt stiffness of an isotropic solid.

    Parameters
    ----------
    young : float
        Young's modulus E (GPa).
    poisson : float
        Poisson's ratio, -1 < nu < 0.5.

    Returns
    -------
    numpy.ndarray, shape (6, 6)
        Stiffness in GPa.
    """
    e, nu = float(young), float(poisson)
    if not (e > 0 and -1 < nu < 0.5):
        raise ValueError(f"need E > 0 and -1 < nu < 0.5, got E={young}, nu={poisson}")
    lam = e * nu / ((1 + nu) * (1 - 2 * nu))
    mu = e / (2 * (1 + nu))
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[[0, 1, 2], [0, 1, 2]] += 2 * mu
    c[[3, 4, 5], [3, 4, 5]] = mu
    return c


def orthotropic_stiffness(c11, c22, c33, c12, c13, c23, c44, c55, c66):
    """6x6 Voigt stiffness (GPa) of an orthotropic crystal in its own axes."""
    c = np.zeros((6, 6))
    c[0, 0], c[1, 1], c[2, 2] = c11, c22, c33
    c[0, 1] = c[1, 0] = c12
    c[0, 2] = c[2, 0] = c13
    c[1, 2] = c[2, 1] = c23
    c[3, 3], c[4, 4], c[5, 5] = c44, c55, c66
    return c


def _in_frame(stiffness, beam):
    c = check_stiffness(getattr(stiffness, "stiffness", stiffness), 6)
    if c.ndim != 2:
        raise ValueError(f"expected one 6x6 stiffness, got shape {c.shape}")
    return rotate_stiffness_3d(c, beam_frame(beam))


def _check_plane(plane):
    if plane not in ("stress", "strain"):
        raise ValueError(f"plane must be 'stress' or 'strain', got {plane!r}")


def plane_stiffness(stiffness, plane="stress", beam="[010]"):
    """Reduce a 3D stiffness to the 3x3 stiffness of the image plane.

    Parameters
    ----------
    stiffness : array_like, shape (6, 6), or Material
        Voigt stiffness (GPa) in the crystal frame (1 = [100], 2 = [010], 3 = [001]),
        engineering shear.
    plane : {"stress", "strain"}
        ``"stress"`` (default; thin platelets, free out-of-plane: sigma33 = sigma23 =
        sigma13 = 0) or ``"strain"`` (e33 = e23 = e13 = 0).
    beam : str, 3-vector, or orix Orientation
        Beam direction in the crystal frame, see :func:`beam_frame`. For ``"[010]"`` the
        in-plane axes are [100] (component 1) and [001] (component 2).
        For an orix orientation the result is already in the image frame (use
        ``crystal_angle=0``).

    Returns
    -------
    numpy.ndarray, shape (3, 3)
        Q (GPa) in the in-plane crystal frame acting on ``(e11, e22, 2 e12)`` (engineering
        shear) and giving ``(s11, s22, s12)``. Plane stress:
        ``Q = C_pp - C_po C_oo^-1 C_op`` (for an orthotropic crystal viewed along an axis,
        ``Q_ij = C_ij - C_i3 C_j3 / C_33``); plane strain: ``Q = C_pp``.

    Examples
    --------
    >>> from hyperspy_chemomech.mechanics import get_material, plane_stiffness
    >>> q = plane_stiffness(get_material("LiFePO4").stiffness)
    >>> round(float(q[0, 0]), 2)  # beam along [010]: C11 - C12**2 / C22
    112.13
    """
    _check_plane(plane)
    c = _in_frame(stiffness, beam)
    cpp = c[np.ix_(_P, _P)]
    if plane == "strain":
        return cpp
    return cpp - c[np.ix_(_P, _O)] @ np.linalg.solve(c[np.ix_(_O, _O)], c[np.ix_(_O, _P)])


def plane_eigenstrain(eigenstrain, stiffness=None, plane="stress", beam="[010]"):
    """Project a 3D eigenstrain onto the image plane.

    Parameters
    ----------
    eigenstrain : array_like, shape (..., 3) or (..., 3, 3)
        Crystal-frame eigenstrain: the diagonal (along [100], [010], [001]) or the full
        symmetric tensor (dimensionless).
    stiffness : array_like (6, 6) or Material, optional
        Needed for plane strain only.
    plane : {"stress", "strain"}
        Plane stress: the in-plane components themselves (the out-of-plane ones relax
        freely). Plane strain (e33 = e13 = e23 = 0): the equivalent in-plane eigenstrain
        ``e_p + C_pp^-1 C_po e_o`` (Voigt, engineering shear), which gives the same
        in-plane stress.
    beam : see :func:`plane_stiffness`

    Returns
    -------
    numpy.ndarray, shape (..., 3)
        ``(e11, e22, e12)`` (tensor shear) on the in-plane axes of :func:`plane_stiffness`.
    """
    _check_plane(plane)
    e = np.asarray(eigenstrain, dtype=float)
    if e.shape[-1:] == (3,) and (e.ndim < 2 or e.shape[-2:] != (3, 3)):
        e = e[..., None, :] * np.eye(3)
    elif e.shape[-2:] != (3, 3):
        raise ValueError(f"eigenstrain must have shape (..., 3) or (..., 3, 3), got {e.shape}")
    if not np.allclose(e, np.swapaxes(e, -1, -2)):
        raise ValueError("eigenstrain tensor must be symmetric")
    r = beam_frame(beam)
    e = np.einsum("ia,jb,...ab->...ij", r, r, e)
    # Voigt (engineering shear) in the beam frame
    v = np.stack([e[..., 0, 0], e[..., 1, 1], e[..., 2, 2],
                  2 * e[..., 1, 2], 2 * e[..., 0, 2], 2 * e[..., 0, 1]], axis=-1)
    vp = v[..., _P]
    if plane == "strain":
        if stiffness is None:
            raise ValueError("plane strain needs the stiffness to project the eigenstrain")
        c = _in_frame(stiffness, beam)
        vp = vp + np.einsum("ij,...j->...i", np.linalg.solve(c[np.ix_(_P, _P)],
                                                             c[np.ix_(_P, _O)]), v[..., _O])
    return np.stack([vp[..., 0], vp[..., 1], vp[..., 2] / 2], axis=-1)
