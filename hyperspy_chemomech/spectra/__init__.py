"""Spectral processing in plain numpy: optical density, energy alignment, unmixing.

These functions know nothing of HyperSpy; the signal classes in
:mod:`hyperspy_chemomech.signals` validate their inputs and call them.
"""

from ._optical_density import (
    background_mask,
    check_energies,
    check_intensities,
    optical_density,
)
from ._energy_alignment import (
    apply_energy_drift,
    edge_image,
    estimate_energy_drift,
    outline_image,
    refine_drift_with_model,
)
from ._unmixing import (
    composition_from_coefficients,
    data_gram,
    fit_energy_shift,
    interpolate_references,
    particle_mask,
    propagate_variance,
    region_reference,
    unmix,
    unmix_block,
    unpack,
)

__all__ = [
    "apply_energy_drift",
    "background_mask",
    "check_energies",
    "check_intensities",
    "composition_from_coefficients",
    "data_gram",
    "edge_image",
    "estimate_energy_drift",
    "fit_energy_shift",
    "interpolate_references",
    "optical_density",
    "outline_image",
    "particle_mask",
    "propagate_variance",
    "refine_drift_with_model",
    "region_reference",
    "unmix",
    "unmix_block",
    "unpack",
]
