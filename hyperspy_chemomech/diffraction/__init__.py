"""pyxem bridge: 4D-STEM data and pyxem strain results -> StrainField; the pyxem-side class.

Names are resolved on first use; nothing here imports pyxem until it is needed.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "_strain_from_diffraction": ["strain_from_diffraction"],
        "..fields": ["detector_to_image", "pyxem_strain_to_tensor", "pyxem_tensor_to_gradient",
                     "simulated_strain_truth"],
        "_from_pyxem": ["from_pyxem"],
        "_disk_detection": ["disk_image"],
        # the pyxem-side signal class (signal_type "correlative_diffraction"; imports pyxem)
        "_correlative_diffraction": ["CorrelativeDiffraction2D",
                                     "LazyCorrelativeDiffraction2D"],
    },
)
