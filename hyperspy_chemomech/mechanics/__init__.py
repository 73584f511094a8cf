"""Mechanics engine: pixel-grid finite elements, plane stiffness, materials, crystal frames.

Plain numpy/scipy; no HyperSpy inside. See the user guide page "Mechanics".
"""

from ._fem import ElasticSolution, ParticleElasticity
from ._frames import beam_frame, rotate_plane_stiffness, rotate_strain, rotate_stiffness_3d
from ._stiffness import (isotropic_stiffness, orthotropic_stiffness, plane_eigenstrain,
                         plane_stiffness)
from .materials import Material, get_material, register_material, vegard_misfit

__all__ = [
    "ElasticSolution",
    "Material",
    "ParticleElasticity",
    "beam_frame",
    "get_material",
    "isotropic_stiffness",
    "orthotropic_stiffness",
    "plane_eigenstrain",
    "plane_stiffness",
    "register_material",
    "rotate_plane_stiffness",
    "rotate_stiffness_3d",
    "rotate_strain",
    "vegard_misfit",
]
