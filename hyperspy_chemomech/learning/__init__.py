"""Learning the eigenstrain law eps0(X): bases, linear inversion, model selection, uncertainty.

Pure numpy/scipy on top of :mod:`hyperspy_chemomech.mechanics`; the HyperSpy face is
:meth:`hyperspy_chemomech.signals.StrainField.learn_eigenstrain`.
"""

from ._bases import LawBasis
from ._fit import blocked_cv, cluster_covariance, robust_fit, spatial_blocks
from ._inputs import resolve_stiffness
from ._law import LawFit
from ._learn import learn_law
from ._resolution import masked_gaussian, noise_level

__all__ = [
    "LawBasis",
    "LawFit",
    "learn_law",
    "resolve_stiffness",
    "robust_fit",
    "cluster_covariance",
    "blocked_cv",
    "spatial_blocks",
    "masked_gaussian",
    "noise_level",
]
