"""HyperSpy signal classes of hyperspy_chemomech (thin: validate, delegate, wrap)."""

from .composition_map import CompositionMap, LazyCompositionMap
from .eigenstrain_law import EigenstrainLaw, LazyEigenstrainLaw
from .strain_field import LazyStrainField, StrainField
from .xray_absorption import LazyXrayAbsorptionSpectrum, XrayAbsorptionSpectrum

__all__ = [
    "XrayAbsorptionSpectrum",
    "LazyXrayAbsorptionSpectrum",
    "CompositionMap",
    "LazyCompositionMap",
    "StrainField",
    "LazyStrainField",
    "EigenstrainLaw",
    "LazyEigenstrainLaw",
]
