"""Mechanics engine: pixel-grid finite elements, plane stiffness, materials, crystal frames.

Plain numpy/scipy; no HyperSpy inside. See the user guide page "Mechanics".
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "_fem": ["ElasticSolution", "ParticleElasticity"],
        "_frames": ["beam_frame", "rotate_plane_stiffness", "rotate_stiffness_3d"],
        "_stiffness": ["isotropic_stiffness", "orthotropic_stiffness", "plane_eigenstrain",
                       "plane_stiffness"],
        "materials": ["Material", "get_material", "register_material", "resolve_stiffness",
                      "vegard_misfit"],
        "..fields": ["rotate_strain"],
        "_cache": ["clear_solver_cache", "get_solver"],
    },
)
