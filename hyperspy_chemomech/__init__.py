"""hyperspy_chemomech: correlative chemo-mechanics for HyperSpy.

Learn how a crystal's lattice expands with its composition (the eigenstrain law
eps0(X)) from a composition map (X-ray spectro-microscopy) and a strain map
(4D-STEM) of the same particle, and split the measured strain into chemical,
coherency and residual parts.

Subpackages are imported on first use, so ``import hyperspy_chemomech`` stays
cheap and never imports pyxem, orix or kikuchipy.
"""

from ._utils import attach, package_version

__version__ = package_version()

__getattr__, _, __all__ = attach(
    __name__,
    submodules=["decomposition", "diffraction", "fields", "io", "learning", "mechanics",
                "registration", "signals", "simulate", "spectra"],
    submod_attrs={
        "signals": ["CompositionMap", "EigenstrainLaw", "LazyCompositionMap",
                    "LazyEigenstrainLaw", "LazyStrainField", "LazyXrayAbsorptionSpectrum",
                    "StrainField", "XrayAbsorptionSpectrum", "decompose_collection",
                    "learn_eigenstrain_collection"],
        "registration": ["CorrelativeTransform", "register"],
        "diffraction": ["strain_from_diffraction"],
    },
)
__all__ = sorted(__all__ + ["__version__"])


def __dir__():
    return list(__all__)
