"""Multimodal registration of correlative images: X-ray (moving) onto 4D-STEM (fixed).

``register`` finds a similarity or affine map (mirror included) between
calibrated images of one particle; the returned ``CorrelativeTransform``
resamples any signal of one grid onto the other, recording what it did.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "_grid": ["Grid", "apply_matrix"],
        "_landmarks": ["fit_landmarks"],
        "_mask": ["particle_mask"],
        "_metrics": ["absolute_correlation", "mutual_information"],
        "_pick": ["pick_landmarks"],
        "_register": ["register"],
        "_transform": ["CorrelativeTransform", "RegistrationWarning", "decompose"],
        "_initialise": ["similarity_linear"],
        "_resample": ["resample", "rotate_strain_components"],
        "_signals": ["grid_of"],
    },
)
