"""Multimodal registration of correlative images: X-ray (moving) onto 4D-STEM (fixed).

``register`` finds a similarity or affine map (mirror included) between
calibrated images of one particle; the returned ``CorrelativeTransform``
resamples any signal of one grid onto the other, recording what it did.
"""

from ._grid import Grid
from ._landmarks import fit_landmarks
from ._mask import particle_mask
from ._metrics import absolute_correlation, mutual_information
from ._pick import pick_landmarks
from ._register import register
from ._transform import CorrelativeTransform, RegistrationWarning, decompose

__all__ = [
    "CorrelativeTransform",
    "Grid",
    "RegistrationWarning",
    "absolute_correlation",
    "decompose",
    "fit_landmarks",
    "mutual_information",
    "particle_mask",
    "pick_landmarks",
    "register",
]
