"""Learning the eigenstrain law eps0(X): bases, linear inversion, model selection, uncertainty.

Pure numpy/scipy on top of :mod:`hyperspy_chemomech.mechanics`; the HyperSpy face is
:meth:`hyperspy_chemomech.signals.StrainField.learn_eigenstrain`.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "..fields": ["masked_gaussian"],
        "_bases": ["LawBasis"],
        "_collection": ["CollectionFit", "HomogeneityTest", "learn_law_collection"],
        "_composition_errors": ["CompositionErrors", "ErrorPropagationOptions"],
        "_fit": ["blocked_cv", "cluster_covariance", "robust_fit", "spatial_blocks"],
        "_law": ["LawFit", "law_band", "law_values"],
        "_learn": ["learn_law"],
        "_resolution": ["noise_level"],
    },
)
