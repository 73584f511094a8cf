"""StrainField methods for decomposition, stress and dislocation maps (issue 5)."""


class StrainDecompositionMixin:
    """Methods of :class:`StrainField` that split strain and find dislocations."""
