"""HyperSpy signal classes of hyperspy_chemomech (thin: validate, delegate, wrap)."""

from .xray_absorption import XrayAbsorptionSpectrum, LazyXrayAbsorptionSpectrum
from .composition_map import CompositionMap, LazyCompositionMap
from .strain_field import StrainField, LazyStrainField
from .eigenstrain_law import EigenstrainLaw, LazyEigenstrainLaw

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
