"""Synthetic particles and observations with known truth (tests, docs, demo).

Names are resolved on first use (the diffraction simulator is heavier than the rest).
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "shapes": ["platelet_mask"],
        "composition_fields": ["composition_field"],
        "xray_stack": ["edge_energies", "fe_l_edge_references", "synthetic_xray_stack",
                       "truth_on_aligned_grid"],
        "particle": ["SyntheticParticle", "make_particle", "nonlinear_law", "vegard_law"],
        "dislocations": ["dislocation_strain"],
        "realistic": ["RealisticParticle", "airy_psf", "realistic_particle"],
        "correlative": ["CorrelativeParticle", "correlative_particle"],
        # correlative .mat files as the authors write them (what LFP50_P2.mat taught)
        "authors_files": ["authors_components", "write_authors_mat"],
        "images": ["CorrelativePair", "WarpedImage", "correlative_image_pair", "registration_error",
                   "warped_image"],
        "diffraction_patterns": ["synthetic_4dstem"],
        "collection": ["OperandoSeries", "ParticleCollection", "operando_series",
                       "particle_collection"],
    },
)
