"""Synthetic particles and observations with known truth (tests, docs, demo).

Names are resolved on first use (the diffraction simulator is heavier than the rest).
"""

from .._utils import lazy_names

_LAZY = {
    "platelet_mask": "shapes",
    "composition_field": "composition_fields",
    # X-ray spectral stacks with known truth (simulate/xray_stack.py)
    "synthetic_xray_stack": "xray_stack",
    "fe_l_edge_references": "xray_stack",
    "edge_energies": "xray_stack",
    "truth_on_aligned_grid": "xray_stack",
    # synthetic particles with a known law (simulate/particle.py)
    "make_particle": "particle",
    "SyntheticParticle": "particle",
    "vegard_law": "particle",
    "nonlinear_law": "particle",
    "dislocation_strain": "dislocations",
    # one particle seen by X-rays and 4D-STEM (simulate/correlative.py)
    "correlative_particle": "correlative",
    "CorrelativeParticle": "correlative",
    # correlative image pairs for registration (simulate/images.py)
    "correlative_image_pair": "images",
    "CorrelativePair": "images",
    "registration_error": "images",
    "warped_image": "images",
    "WarpedImage": "images",
    # 4D-STEM patterns with a known strain field (simulate/diffraction_patterns.py)
    "synthetic_4dstem": "diffraction_patterns",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
