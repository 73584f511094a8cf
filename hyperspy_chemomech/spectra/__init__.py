"""Spectral processing in plain numpy: optical density, energy alignment, unmixing.

These functions know nothing of HyperSpy; the signal classes in
:mod:`hyperspy_chemomech.signals` validate their inputs and call them.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "_optical_density": ["background_mask", "check_energies", "check_intensities",
                             "optical_density"],
        "_energy_alignment": ["ALIGN_REFINE_TOL", "MIN_ALIGN_SIDE", "apply_energy_drift", "check_alignment_options",
                              "edge_image", "estimate_energy_drift",
                              "outline_image", "refine_drift_with_model"],
        "_references": ["FE_L3_WINDOW", "check_reference_spectra", "data_gram",
                        "fit_energy_shift", "interpolate_references", "region_reference",
                        "shift_range"],
        "_noise": ["PoissonODVariance", "propagate_variance"],
        "_particle": ["particle_mask"],
        "_unmixing": ["composition_from_coefficients", "composition_from_rows", "unmix",
                      "unmix_block", "unmix_particle", "unmix_stack", "unpack"],
    },
)
