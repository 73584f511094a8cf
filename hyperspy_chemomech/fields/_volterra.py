"""Displacement gradients of straight edge dislocations (lines along the beam).

Isotropic Volterra solution in an infinite body (Hirth & Lothe, *Theory of
Dislocations*, 2nd ed., 1982, eqs. 3-45): for Burgers vector b along +x at the
origin, with r^2 = x^2 + y^2,

    u_x = b/(2 pi) [atan2(y, x) + x y / (2 (1 - nu) r^2)]
    u_y = -b/(2 pi) [(1 - 2 nu)/(4 (1 - nu)) ln r^2 + (x^2 - y^2)/(4 (1 - nu) r^2)]

A Burgers vector at another angle is obtained by rotating the field. The closed
circuit integral of grad u around the core equals b.
"""

import numpy as np

from ._components import components_from_gradient
from ._frames import rotation_2d


def edge_dislocation_gradient(x, y, burgers, nu=0.3, core_radius=0.0):
    """Displacement gradient of one edge dislocation at the origin.

    Parameters
    ----------
    x, y : numpy.ndarray
        Positions relative to the core (same length unit as ``burgers``).
    burgers : (float, float)
        Burgers vector (b_x, b_y) in the image frame (length unit).
    nu : float
        Poisson's ratio.
    core_radius : float
        Inside this radius the field is regularised (r^2 -> r^2 + r_c^2), keeping
        values finite at the core pixel.

    Returns
    -------
    numpy.ndarray, shape (2, 2) + x.shape
        G[i, j] = du_i / dx_j with index 0 = x, 1 = y.
    """
    bx, by = (float(v) for v in burgers)
    b = np.hypot(bx, by)
    if b == 0:
        return np.zeros((2, 2) + np.shape(x))
    phi = np.arctan2(by, bx)
    c, s = np.cos(phi), np.sin(phi)
    # coordinates in the dislocation frame (b along +x')
    xp = c * x + s * y
    yp = -s * x + c * y
    r2 = xp * xp + yp * yp + core_radius ** 2
    r4 = r2 * r2
    k = b / (2 * np.pi)
    a = 1.0 / (1.0 - nu)
    g = np.empty((2, 2) + np.shape(x))
    g[0, 0] = k * (-yp / r2 + a * yp * (yp * yp - xp * xp) / (2 * r4))
    g[0, 1] = k * (xp / r2 + a * xp * (xp * xp - yp * yp) / (2 * r4))
    g[1, 0] = -k * ((1 - 2 * nu) * a * xp / (2 * r2) + a * xp * yp * yp / r4)
    g[1, 1] = -k * ((1 - 2 * nu) * a * yp / (2 * r2) - a * xp * xp * yp / r4)
    # back to the image frame: G = R G' R^T, R = R(phi)
    R = rotation_2d(phi)
    return np.einsum("ia,ab...,jb->ij...", R, g, R)


def dislocation_strain(shape, positions, burgers, pixel_size=1.0, nu=0.3, core_radius=None):
    """Strain and rotation maps of several edge dislocations on a pixel grid.

    Parameters
    ----------
    shape : (int, int)
        Grid (ny, nx).
    positions : array_like, shape (n, 2)
        Core positions (y, x) in pixels (pixel centres at integers).
    burgers : array_like, shape (n, 2)
        Burgers vectors (b_x, b_y) in nm.
    pixel_size : float
        Pixel size in nm.
    nu : float
        Poisson's ratio.
    core_radius : float, optional
        Regularisation radius in nm (default half a pixel).

    Returns
    -------
    numpy.ndarray, shape (4, ny, nx)
        e11, e22, e12 (tensor shear) and theta (rad), the StrainField order.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    rc = 0.5 * pixel_size if core_radius is None else core_radius
    G = np.zeros((2, 2, ny, nx))
    for (py, px), b in zip(np.atleast_2d(positions), np.atleast_2d(burgers)):
        G += edge_dislocation_gradient((xx - px) * pixel_size, (yy - py) * pixel_size,
                                       b, nu=nu, core_radius=rc)
    return components_from_gradient(G, axes=(0, 1))
