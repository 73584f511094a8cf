"""Decomposition of measured strain: chemical, coherency, residual; stress; dislocations.

Plain numpy/scipy; the HyperSpy face is :meth:`StrainField.decompose`,
:meth:`StrainField.dislocation_density` and :meth:`StrainField.find_dislocations`.
"""

from ._conventions import compatibility_index, convention_check
from ._decompose import Decomposition, chemical_strain, decompose, robust_reference
from ._find import DISLOCATION_DTYPE, find_dislocations
from ._nye import (
    corner_gradient,
    corners_to_pixels,
    distortion,
    incompatibility,
    nye_tensor,
)

__all__ = [
    "DISLOCATION_DTYPE",
    "Decomposition",
    "chemical_strain",
    "compatibility_index",
    "convention_check",
    "corner_gradient",
    "corners_to_pixels",
    "decompose",
    "distortion",
    "find_dislocations",
    "incompatibility",
    "nye_tensor",
    "robust_reference",
]
