"""Detector geometry: how diffraction vectors (kx, ky) lie in the image frame (x, y)."""

import numpy as np

from ..fields import rotation_2d


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
