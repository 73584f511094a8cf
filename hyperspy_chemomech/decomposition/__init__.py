"""Decomposition of measured strain: chemical, coherency, residual; stress; dislocations.

Plain numpy/scipy; the HyperSpy face is :meth:`StrainField.decompose`,
:meth:`StrainField.dislocation_density` and :meth:`StrainField.find_dislocations`.
"""

from ._decompose import Decomposition, chemical_strain, decompose, robust_reference
from ._find import DISLOCATION_DTYPE, find_dislocations
from ._nye import distortion, incompatibility, masked_derivative, nye_tensor

__all__ = [
    "DISLOCATION_DTYPE",
    "Decomposition",
    "chemical_strain",
    "decompose",
    "distortion",
    "find_dislocations",
    "incompatibility",
    "masked_derivative",
    "nye_tensor",
    "robust_reference",
]
