"""HyperSpy signal classes of hyperspy_chemomech (thin: validate, delegate, wrap).
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "_collection": ["decompose_collection", "learn_eigenstrain_collection"],
        "composition_map": ["CompositionMap", "LazyCompositionMap"],
        "eigenstrain_law": ["EigenstrainLaw", "LazyEigenstrainLaw"],
        "_plotting": ["add_scalebar", "plot_component_maps"],
        "strain_field": ["LazyStrainField", "StrainField"],
        "xray_absorption": ["LazyXrayAbsorptionSpectrum", "XrayAbsorptionSpectrum",
                            "energy_axis_dict", "make_stack"],
    },
)
