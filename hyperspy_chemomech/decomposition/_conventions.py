"""Which sign and shear conventions make a strain map a compatible distortion?

A strain and rotation map imported from another tool can carry a different
convention: the sign of the rotation, engineering instead of tensor shear, a y
axis pointing up, x and y swapped. None of these needs the composition to be
caught. The measured distortion ``beta`` of a defect-poor particle is the
gradient of a displacement, so its Nye tensor (its curl) is zero up to noise and
the odd dislocation; under a wrong convention the curl is of the order of the
gradient itself. The check compares the compatibility index

    c = median(|alpha|^2)^1/2 / median(|grad beta|^2)^1/2

(``alpha`` the Nye tensor, both smoothed by the same Gaussian, over the particle)
of the map as given with those of the common conventions' corrections. A
convention cannot be told apart when the map has nothing it acts on (e.g. a
uniform rotation): then the indices tie.
"""

import numpy as np

from ..fields import (
    corner_gradient,
    corners_to_pixels,
    distortion,
    nye_tensor,
    pixel_size_pair,
    smooth_in_mask,
    valid_pixels,
)

#: Corrections tried: name -> map (4, ny, nx) -> (4, ny, nx) of e11, e22, e12, theta.
CORRECTIONS = {
    "as given": lambda e: e,
    "rotation sign flipped": lambda e: np.stack([e[0], e[1], e[2], -e[3]]),
    "shear was engineering (halved)": lambda e: np.stack([e[0], e[1], 0.5 * e[2], e[3]]),
    "shear was half the tensor shear (doubled)": lambda e: np.stack([e[0], e[1], 2 * e[2], e[3]]),
    "y axis pointed up (shear and rotation flipped)":
        lambda e: np.stack([e[0], e[1], -e[2], -e[3]]),
    "x and y swapped (e11 <-> e22, rotation flipped)":
        lambda e: np.stack([e[1], e[0], e[2], -e[3]]),
}


def compatibility_index(strain, pixel_size, mask=None, sigma=3.0):
    """Typical Nye tensor over typical distortion gradient (dimensionless; 0 = compatible).

    Root-median-square of both over the particle: robust to the few pixels of
    dislocation cores.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad), image frame; NaN = no data.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
        Where to look (default where all four components are finite).
    sigma : float
        Gaussian smoothing (px) of both maps, against noise.

    Returns
    -------
    float
    """
    e = np.asarray(strain, dtype=float)
    dy, dx = pixel_size_pair(pixel_size)
    ok = valid_pixels(e, mask)
    alpha = nye_tensor(e, pixel_size, mask=ok, sigma=sigma)
    beta = distortion(np.where(ok, e, np.nan)).reshape(4, *ok.shape)
    fx, fy, okc = corner_gradient(beta, (dy, dx), ok)             # (4, ny-1, nx-1) each
    grad = corners_to_pixels(np.concatenate([fx, fy]), okc)      # (8, ny, nx), 1/nm
    grad[:, ~ok] = np.nan
    grad = smooth_in_mask(grad, ok & np.isfinite(grad).all(axis=0), sigma)
    a2, g2 = np.sum(alpha ** 2, axis=0), np.sum(grad ** 2, axis=0)
    both = np.isfinite(a2) & np.isfinite(g2)
    # medians: the odd dislocation core (large, local Nye content) does not count
    num = np.median(a2[both]) if both.any() else np.nan
    den = np.median(g2[both]) if both.any() else np.nan
    if not np.isfinite(num) or not np.isfinite(den) or den == 0:
        raise ValueError("no pixels with all four components finite (and neighbours) to "
                         "judge the compatibility of the map")
    return float(np.sqrt(num / den))


def convention_check(strain, pixel_size, mask=None, sigma=3.0, tolerance=1.5):
    """Compare the compatibility of a strain map under common convention corrections.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12, theta as read (image frame expected).
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
    sigma : float
        Smoothing (px), see :func:`compatibility_index`.
    tolerance : float
        The map is flagged when a correction makes it this many times more
        compatible than as given.

    Returns
    -------
    dict
        ``index``: {correction name: compatibility index}, ``best``: the most
        compatible correction, ``ok``: whether the map as given is within
        ``tolerance`` of the best, ``message``: a sentence saying so.

    Examples
    --------
    >>> from hyperspy_chemomech.simulate.particle import make_particle
    >>> p = make_particle(shape=(60, 100), noise=1e-4, n_dislocations=0)
    >>> flipped = p.strain * np.array([1, 1, 1, -1])[:, None, None]
    >>> convention_check(flipped, p.pixel_size, mask=p.mask)["best"]
    'rotation sign flipped'
    """
    e = np.asarray(strain, dtype=float)
    if e.ndim != 3 or e.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx), got {e.shape}")
    index = {name: compatibility_index(fix(e), pixel_size, mask, sigma)
             for name, fix in CORRECTIONS.items()}
    best = min(index, key=index.get)
    ok = index["as given"] <= tolerance * index[best]
    if ok:
        message = (f"the map is compatible as given (index {index['as given']:.3g}; best "
                   f"correction '{best}' {index[best]:.3g})")
    else:
        message = (f"the map looks like another convention: '{best}' makes it "
                   f"{index['as given'] / index[best]:.1f} times more compatible "
                   f"({index['as given']:.3g} -> {index[best]:.3g}); check how it was exported")
    return {"index": index, "best": best, "ok": bool(ok), "message": message}
