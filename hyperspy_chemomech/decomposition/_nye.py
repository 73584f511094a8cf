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

Derivatives are central differences inside the particle and one-sided at its edge
(NaN where a pixel has no valid neighbour along an axis). Summed over a set of
pixels, central differences telescope to a discrete circuit integral, so the
integrated Nye content of a region equals the closure failure around it.

References
----------
J. F. Nye, Some geometrical relations in dislocated crystals, Acta Metall. 1, 153
(1953). E. Kroner, Continuum theory of defects, in Physics of Defects (Les Houches
XXXV), North-Holland (1981).
"""

import numpy as np


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
    e = _as_strain(strain)
    return np.stack([np.stack([e[0], e[2] - e[3]]), np.stack([e[2] + e[3], e[1]])])


def _as_strain(strain):
    e = np.asarray(strain, dtype=float)
    if e.ndim != 3 or e.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx) (e11, e22, e12, theta), got {e.shape}")
    return e


def _pixel(pixel_size):
    p = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,))
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"pixel_size must be positive (nm), got {pixel_size!r}")
    return float(p[0]), float(p[1])


def masked_derivative(f, axis, spacing, valid=None):
    """Derivative along ``axis`` using only valid pixels.

    Central difference where both neighbours are valid, one-sided where only one
    is, NaN where neither is (or where the pixel itself is invalid).

    Parameters
    ----------
    f : numpy.ndarray, shape (ny, nx)
    axis : {0, 1}
        0 = along y (rows), 1 = along x (columns).
    spacing : float
        Pixel spacing along ``axis`` (nm).
    valid : numpy.ndarray of bool, optional
        Pixels allowed in the stencils; default ``isfinite(f)``.

    Returns
    -------
    numpy.ndarray, shape (ny, nx)
        df/dx_axis (units of f per nm).
    """
    f = np.asarray(f, dtype=float)
    ok = np.isfinite(f) if valid is None else (valid & np.isfinite(f))
    g = np.where(ok, f, 0.0)
    fwd = np.zeros_like(g)   # f[k+1] - f[k]
    ok_fwd = np.zeros(ok.shape, dtype=bool)
    sl_lo = [slice(None)] * 2
    sl_hi = [slice(None)] * 2
    sl_lo[axis], sl_hi[axis] = slice(None, -1), slice(1, None)
    sl_lo, sl_hi = tuple(sl_lo), tuple(sl_hi)
    fwd[sl_lo] = g[sl_hi] - g[sl_lo]
    ok_fwd[sl_lo] = ok[sl_hi] & ok[sl_lo]
    bwd = np.zeros_like(g)   # f[k] - f[k-1]
    ok_bwd = np.zeros(ok.shape, dtype=bool)
    bwd[sl_hi] = fwd[sl_lo]
    ok_bwd[sl_hi] = ok_fwd[sl_lo]
    out = np.full(g.shape, np.nan)
    both = ok_fwd & ok_bwd
    out[both] = 0.5 * (fwd[both] + bwd[both])
    only_f = ok_fwd & ~ok_bwd
    out[only_f] = fwd[only_f]
    only_b = ok_bwd & ~ok_fwd
    out[only_b] = bwd[only_b]
    return out / spacing


def _smooth(maps, mask, sigma):
    if sigma is None or sigma <= 0:
        return maps
    from ..learning import masked_gaussian

    return masked_gaussian(maps, mask, float(sigma))


def _valid(e, mask):
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
    >>> from hyperspy_chemomech.decomposition import nye_tensor
    >>> from hyperspy_chemomech.simulate.dislocations import dislocation_strain
    >>> e = dislocation_strain((41, 41), [(20, 20)], [(0.5, 0.0)], pixel_size=1.0)
    >>> alpha = nye_tensor(e, 1.0)
    >>> b = alpha[:, 10:31, 10:31].sum(axis=(1, 2))    # x 1 nm^2 pixel area
    >>> bool(np.allclose(b, [0.5, 0.0], atol=0.02))
    True
    """
    e = _as_strain(strain)
    dy, dx = _pixel(pixel_size)
    ok = _valid(e, mask)
    beta = distortion(e)
    ax = (masked_derivative(beta[0, 1], 1, dx, ok) - masked_derivative(beta[0, 0], 0, dy, ok))
    ay = (masked_derivative(beta[1, 1], 1, dx, ok) - masked_derivative(beta[1, 0], 0, dy, ok))
    alpha = np.stack([ax, ay])
    alpha[:, ~ok] = np.nan
    return _smooth(alpha, ok, sigma)


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
    e = e[:3]
    dy, dx = _pixel(pixel_size)
    ok = np.isfinite(e).all(axis=0)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    e = _smooth(np.where(ok, e, np.nan), ok, sigma)
    d = masked_derivative
    e11_yy = d(d(e[0], 0, dy, ok), 0, dy, ok)
    e22_xx = d(d(e[1], 1, dx, ok), 1, dx, ok)
    e12_xy = d(d(e[2], 1, dx, ok), 0, dy, ok)
    eta = e11_yy + e22_xx - 2.0 * e12_xy
    eta[~ok] = np.nan
    return eta
