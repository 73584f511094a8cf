"""Nye dislocation tensor and 2D incompatibility of a measured distortion field.

For edge dislocations whose lines run along the beam (z), the in-plane lattice
distortion ``beta_ij = du_i/dx_j`` (i, j in x, y) is built from the strain and the
rotation (image frame, ``docs/conventions.rst``):

    beta = [[e11,         e12 - theta],
            [e12 + theta, e22        ]].

By Stokes' theorem the Burgers vector of the dislocations threading an area A is
the circuit integral of ``beta`` around it (counter-clockwise in the x, y axes),
``b_i = oint beta_ij dx_j = int_A alpha_i dA`` with the Nye tensor components

    alpha_x = d(beta_xy)/dx - d(beta_xx)/dy
    alpha_y = d(beta_yy)/dx - d(beta_yx)/dy,

the Burgers content per unit area (nm/nm^2 = 1/nm); a compatible (dislocation-free)
field gives zero. The 2D incompatibility of the strain alone,

    eta = d2 e11/dy2 + d2 e22/dx2 - 2 d2 e12/dxdy = d(alpha_y)/dx - d(alpha_x)/dy,

needs no rotation data (it is a dipole at each edge dislocation, with first
moments ``int y eta dA = b_x`` and ``int x eta dA = -b_y``).

Derivatives are taken on the staggered grid of pixel corners (each from the four
pixels around a corner) and averaged back to the pixel centres. These difference
operators commute, so a field that is the gradient of any displacement on the
pixel corners (for instance the centroid strain and rotation of the bilinear
finite elements of the forward model) has exactly zero Nye content and
incompatibility, and a sum of the Nye map over a region is a discrete circuit
integral around it: the closure failure. At the particle edge only the corners
inside it are used.

References
----------
J. F. Nye, Some geometrical relations in dislocated crystals, Acta Metall. 1, 153
(1953). E. Kroner, Continuum theory of defects, in Physics of Defects (Les Houches
XXXV), North-Holland (1981).
"""

import numpy as np

from ._components import as_strain, gradient_from_components
from ._smoothing import masked_gaussian


def distortion(strain):
    """In-plane distortion ``beta_ij = du_i/dx_j`` from (e11, e22, e12, theta).

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear) and theta (rad), image frame.

    Returns
    -------
    numpy.ndarray, shape (2, 2, ny, nx)
        ``beta[i, j]`` with index 0 = x, 1 = y (dimensionless).
    """
    return gradient_from_components(*as_strain(strain), axes=(0, 1))


def pixel_size_pair(pixel_size):
    """``(dy, dx)`` in nm from a number or a pair; a ValueError unless both are positive."""
    p = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,))
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"pixel_size must be positive (nm), got {pixel_size!r}")
    return float(p[0]), float(p[1])


def corner_gradient(f, pixel_size, valid=None):
    """x and y derivatives of a pixel map at the pixel corners (staggered grid).

    At the corner shared by pixels (i, j), (i, j+1), (i+1, j), (i+1, j+1):
    ``df/dx = (f[i, j+1] + f[i+1, j+1] - f[i, j] - f[i+1, j]) / (2 dx)`` and likewise
    for y. These operators commute, so the curl of a gradient vanishes exactly: the
    strain and rotation at the centres of bilinear finite elements (our forward
    model) have zero Nye content, and the sum of a corner curl over a region is
    exactly a (trapezoidal) circuit integral around it.

    Parameters
    ----------
    f : numpy.ndarray, shape (..., ny, nx)
    pixel_size : float or (float, float)
        (dy, dx) in nm.
    valid : numpy.ndarray of bool, shape (ny, nx), optional
        Pixels with data; a corner is valid when its four pixels are.

    Returns
    -------
    fx, fy : numpy.ndarray, shape (..., ny - 1, nx - 1)
        Derivatives (units of f per nm); NaN at invalid corners.
    ok : numpy.ndarray of bool, shape (ny - 1, nx - 1)
    """
    dy, dx = pixel_size_pair(pixel_size)
    f = np.asarray(f, dtype=float)
    ok = np.isfinite(f).reshape((-1,) + f.shape[-2:]).all(axis=0)
    if valid is not None:
        ok &= valid
    okc = ok[:-1, :-1] & ok[:-1, 1:] & ok[1:, :-1] & ok[1:, 1:]
    a, b = f[..., :-1, :-1], f[..., :-1, 1:]
    c, d = f[..., 1:, :-1], f[..., 1:, 1:]
    fx = np.where(okc, (b + d - a - c) / (2 * dx), np.nan)
    fy = np.where(okc, (c + d - a - b) / (2 * dy), np.nan)
    return fx, fy, okc


def corners_to_pixels(g, ok):
    """Average a corner-grid map onto the pixel centres (mean of the valid corners).

    Parameters
    ----------
    g : numpy.ndarray, shape (..., ny - 1, nx - 1)
    ok : numpy.ndarray of bool, shape (ny - 1, nx - 1)

    Returns
    -------
    numpy.ndarray, shape (..., ny, nx)
        NaN where a pixel touches no valid corner.
    """
    lead = g.shape[:-2]
    ny, nx = ok.shape[0] + 1, ok.shape[1] + 1
    num = np.zeros(lead + (ny, nx))
    cnt = np.zeros((ny, nx))
    gz = np.where(ok, g, 0.0)
    for di in (0, 1):
        for dj in (0, 1):
            num[..., di:di + ny - 1, dj:dj + nx - 1] += gz
            cnt[di:di + ny - 1, dj:dj + nx - 1] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, num / np.maximum(cnt, 1), np.nan)


def _corner_nye(e, pixel_size, valid):
    """(alpha_x, alpha_y) at the corners, and the valid corners."""
    beta = distortion(e)
    bx, by, ok = corner_gradient(beta.reshape((4,) + e.shape[1:]), pixel_size, valid)
    # beta flattened: 0 = xx, 1 = xy, 2 = yx, 3 = yy
    return np.stack([bx[1] - by[0], bx[3] - by[2]]), ok


def smooth_in_mask(maps, mask, sigma):
    """:func:`masked_gaussian` of ``maps`` by ``sigma`` px, or ``maps`` itself for no smoothing."""
    if sigma is None or sigma <= 0:
        return maps
    return masked_gaussian(maps, mask, float(sigma))


def valid_pixels(e, mask):
    """Pixels where all components of ``e`` (c, ny, nx) are finite, within ``mask`` if given."""
    ok = np.isfinite(e).all(axis=0)
    return ok if mask is None else ok & np.asarray(mask, dtype=bool)


def nye_tensor(strain, pixel_size, mask=None, sigma=0.0):
    """Nye tensor components alpha_x3, alpha_y3 of edge dislocations along the beam.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear) and theta (rad), image frame, NaN = no data.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
        Pixels to use (default: where all four components are finite).
    sigma : float
        Gaussian smoothing (pixels) applied to the Nye map (normalised within the
        mask, so it does not mix in vacuum); 0 = none. Smoothing spreads a core
        over ~sigma but keeps its integrated Burgers content.

    Returns
    -------
    numpy.ndarray, shape (2, ny, nx)
        (alpha_x, alpha_y): Burgers vector content per unit area (nm / nm^2 = 1/nm),
        NaN outside the valid pixels. Integrated over an area (sum times the pixel
        area, nm^2) it gives the net Burgers vector (nm) of the dislocations inside.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.fields import nye_tensor
    >>> from hyperspy_chemomech.fields import dislocation_strain
    >>> e = dislocation_strain((41, 41), [(20, 20)], [(0.5, 0.0)], pixel_size=1.0)
    >>> alpha = nye_tensor(e, 1.0)
    >>> b = alpha[:, 10:31, 10:31].sum(axis=(1, 2))    # x 1 nm^2 pixel area
    >>> bool(np.allclose(b, [0.5, 0.0], atol=0.02))
    True
    """
    e = as_strain(strain)
    pixel_size_pair(pixel_size)
    ok = valid_pixels(e, mask)
    alpha_c, okc = _corner_nye(np.where(ok, e, np.nan), pixel_size, ok)
    alpha = corners_to_pixels(alpha_c, okc)
    alpha[:, ~ok] = np.nan
    return smooth_in_mask(alpha, ok & np.isfinite(alpha).all(axis=0), sigma)


def incompatibility(strain, pixel_size, mask=None, sigma=0.0):
    """2D strain incompatibility ``eta = d_yy e11 + d_xx e22 - 2 d_xy e12``.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx) or (3, ny, nx)
        e11, e22, e12 (tensor shear) [, theta, unused], image frame.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
        Pixels to use (default: where e11, e22, e12 are finite).
    sigma : float
        Gaussian smoothing (pixels) of the strain before differentiating; 0 = none.

    Returns
    -------
    numpy.ndarray, shape (ny, nx)
        eta (1/nm^2); zero for a compatible strain field. An edge dislocation with
        Burgers vector b gives a dipole with ``int y eta dA = b_x`` and
        ``int x eta dA = -b_y``.
    """
    e = np.asarray(strain, dtype=float)
    if e.ndim != 3 or e.shape[0] not in (3, 4):
        raise ValueError(f"strain must have shape (3 or 4, ny, nx), got {e.shape}")
    pixel_size_pair(pixel_size)
    ok = np.isfinite(e[:3]).all(axis=0)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    e3 = smooth_in_mask(np.where(ok, e[:3], np.nan), ok, sigma)
    # eta = d(alpha_y)/dx - d(alpha_x)/dy with the corner operators: the rotation
    # cancels exactly, so theta = 0 is used (rotation data not needed)
    e4 = np.concatenate([e3, np.zeros((1,) + e3.shape[1:])])
    alpha_c, okc = _corner_nye(e4, pixel_size, ok)
    ax, _, ok_x = corner_gradient(alpha_c[1], pixel_size, okc)
    _, ay, _ = corner_gradient(alpha_c[0], pixel_size, okc)
    eta = np.full(ok.shape, np.nan)
    eta[1:-1, 1:-1] = np.where(ok_x, ax - ay, np.nan)
    eta[~ok] = np.nan
    return eta
