"""hyperspy_chemomech: correlative chemo-mechanics for HyperSpy.

Learn how a crystal's lattice expands with its composition (the eigenstrain law
eps0(X)) from a composition map (X-ray spectro-microscopy) and a strain map
(4D-STEM) of the same particle, and split the measured strain into chemical,
coherency and residual parts.

Subpackages are imported on first use, so ``import hyperspy_chemomech`` stays
cheap and never imports pyxem, orix or kikuchipy.
"""

import importlib
import importlib.metadata as _metadata

try:
    # set at install time from the git tag (setuptools-scm); editable installs too
    __version__ = _metadata.version("hyperspy_chemomech")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

_SUBMODULES = {
    "signals",
    "spectra",
    "registration",
    "mechanics",
    "learning",
    "decomposition",
    "diffraction",
    "io",
    "simulate",
}

# public name -> module that defines it (resolved lazily, as scikit-image does)
_LAZY_ATTRS = {
    "XrayAbsorptionSpectrum": "hyperspy_chemomech.signals.xray_absorption",
    "LazyXrayAbsorptionSpectrum": "hyperspy_chemomech.signals.xray_absorption",
    "CompositionMap": "hyperspy_chemomech.signals.composition_map",
    "LazyCompositionMap": "hyperspy_chemomech.signals.composition_map",
    "StrainField": "hyperspy_chemomech.signals.strain_field",
    "LazyStrainField": "hyperspy_chemomech.signals.strain_field",
    "EigenstrainLaw": "hyperspy_chemomech.signals.eigenstrain_law",
    "LazyEigenstrainLaw": "hyperspy_chemomech.signals.eigenstrain_law",
    "register": "hyperspy_chemomech.registration",
    "CorrelativeTransform": "hyperspy_chemomech.registration",
    "strain_from_diffraction": "hyperspy_chemomech.diffraction",
}

__all__ = sorted(_SUBMODULES | set(_LAZY_ATTRS) | {"__version__"})


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
