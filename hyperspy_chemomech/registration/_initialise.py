"""Global initialisation from the particle masks: moments, mirror and 180-degree hypotheses.

The two masks fix the centroid, the area (hence the scale) and, for an
elongated particle, the orientation of the long axis modulo 180 degrees. What
they cannot fix (a platelet is nearly centro- and mirror-symmetric) is left as
hypotheses -- both 180-degree choices and both mirror choices -- for the
image metric to decide, together with a coarse search over all rotations for
nearly round particles or misleading outlines.
"""

from typing import NamedTuple

import numpy as np

#: long/short axis ratio below which the principal axes are not trusted
MIN_ANISOTROPY = 1.15


class Moments(NamedTuple):
    """Shape moments of a mask in calibrated coordinates.

    Attributes
    ----------
    centroid : ndarray (2,)
        (x, y) in nm.
    covariance : ndarray (2, 2)
        Second central moments (nm^2), (x, y) order.
    area : float
        nm^2.
    """

    centroid: np.ndarray
    covariance: np.ndarray
    area: float

    @property
    def angle(self):
        """Direction of the long axis (rad, from +x toward +y), modulo pi."""
        c = self.covariance
        return 0.5 * np.arctan2(2 * c[0, 1], c[0, 0] - c[1, 1])

    @property
    def anisotropy(self):
        """sqrt(largest / smallest eigenvalue) of the covariance (>= 1)."""
        ev = np.linalg.eigvalsh(self.covariance)
        return float(np.sqrt(ev[-1] / max(ev[0], 1e-30)))

    @property
    def radius(self):
        """RMS distance from the centroid (nm)."""
        return float(np.sqrt(np.trace(self.covariance)))


def mask_moments(mask, grid):
    """Centroid, covariance and area of a boolean mask on a calibrated grid.

    Parameters
    ----------
    mask : ndarray of bool (ny, nx)
    grid : Grid

    Returns
    -------
    Moments
    """
    xy = grid.centres_xy(mask)
    c = xy.mean(axis=0)
    d = xy - c
    cov = d.T @ d / len(d) + np.eye(2) * (grid.scale[0] * grid.scale[1]) / 12.0
    return Moments(c, cov, float(len(xy) * grid.scale[0] * grid.scale[1]))


def rotation(theta):
    """2x2 rotation by ``theta`` (rad), from +x toward +y."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


MIRROR = np.diag([1.0, -1.0])  # reflection of the moving y axis


def similarity_linear(theta, scale, mirror):
    """Linear part ``scale * R(theta) @ F`` with F the y-reflection when ``mirror``."""
    lin = scale * rotation(theta)
    return lin @ MIRROR if mirror else lin


def moment_angles(moving, fixed, mirror):
    """Rotations (rad) aligning the long axes, both 180-degree choices; [] if not elongated.

    Parameters
    ----------
    moving, fixed : Moments
    mirror : bool
        Whether the moving image is reflected (y -> -y) before rotating.
    """
    if min(moving.anisotropy, fixed.anisotropy) < MIN_ANISOTROPY:
        return []
    phi_m = -moving.angle if mirror else moving.angle
    theta = (fixed.angle - phi_m) % (2 * np.pi)
    return [theta, (theta + np.pi) % (2 * np.pi)]


def pick_peaks(angles, scores, exclude=(), n=2, min_separation=np.deg2rad(25)):
    """Up to ``n`` best-scoring angles at least ``min_separation`` from each other and ``exclude``."""
    chosen = []
    taken = list(exclude)
    for i in np.argsort(scores)[::-1]:
        a = angles[i]
        if all(abs((a - b + np.pi) % (2 * np.pi) - np.pi) >= min_separation for b in taken):
            chosen.append(a)
            taken.append(a)
            if len(chosen) == n:
                break
    return chosen
