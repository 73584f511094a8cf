"""hyperspy_chemomech: correlative chemo-mechanics for HyperSpy.

Learn how a crystal's lattice expands with its composition (the eigenstrain law
eps0(X)) from a composition map (X-ray spectro-microscopy) and a strain map
(4D-STEM) of the same particle, and split the measured strain into chemical,
coherency and residual parts.

Subpackages are imported on first use, so ``import hyperspy_chemomech`` stays
cheap and never imports pyxem, orix or kikuchipy.
"""

import importlib.metadata as _metadata

from ._utils import attach

try:
    # set at install time from the git tag (setuptools-scm); editable installs too
    __version__ = _metadata.version("hyperspy_chemomech")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__getattr__, __dir__, __all__ = attach(
    __name__,
    submodules=["decomposition", "diffraction", "fields", "io", "learning", "mechanics",
                "registration", "signals", "simulate", "spectra"],
    submod_attrs={
        "signals": ["CompositionMap", "EigenstrainLaw", "LazyCompositionMap",
                    "LazyEigenstrainLaw", "LazyStrainField", "LazyXrayAbsorptionSpectrum",
                    "StrainField", "XrayAbsorptionSpectrum"],
        "registration": ["CorrelativeTransform", "register"],
        "diffraction": ["strain_from_diffraction"],
    },
)
__all__ = sorted(__all__ + ["__version__"])
