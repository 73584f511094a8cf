"""Decomposition of measured strain: chemical, coherency, residual; stress; dislocations.

Plain numpy/scipy; the HyperSpy face is :meth:`StrainField.decompose`,
:meth:`StrainField.dislocation_density` and :meth:`StrainField.find_dislocations`.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "..fields": ["corner_gradient", "corners_to_pixels", "distortion", "incompatibility",
                     "nye_tensor"],
        "_conventions": ["CORRECTIONS", "FAMILIES", "MIRROR", "SHEAR_FLIP", "THETA_FLIP",
                         "CompatibilityBasis", "compatibility_index", "convention_check",
                         "find_frame", "rotation_reading"],
        "_decompose": ["Decomposition", "chemical_strain", "decompose", "robust_reference"],
        "_find": ["DISLOCATION_DTYPE", "find_dislocations"],
    },
)
