"""pyxem bridge: 4D-STEM data and pyxem strain results -> StrainField; the pyxem-side class.

Names are resolved on first use; nothing here imports pyxem until it is needed.
"""

from .._utils import lazy_names

_LAZY = {
    "strain_from_diffraction": "_strain_from_diffraction",
    "detector_to_image": "_strain_from_diffraction",
    "from_pyxem": "_pyxem_convert",
    "simulated_strain_truth": "_pyxem_convert",
    # the pyxem-side signal class (signal_type "correlative_diffraction"; imports pyxem)
    "CorrelativeDiffraction2D": "_correlative_diffraction",
    "LazyCorrelativeDiffraction2D": "_correlative_diffraction",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
