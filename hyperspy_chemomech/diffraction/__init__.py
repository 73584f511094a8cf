"""pyxem bridge: 4D-STEM data and pyxem strain results -> StrainField.

Names are resolved on first use; nothing here imports pyxem until it is needed.
"""

import importlib

_LAZY = {
    "strain_from_diffraction": "_strain_from_diffraction",
    "detector_to_image": "_strain_from_diffraction",
    "from_pyxem": "_pyxem_convert",
    "simulated_strain_truth": "_pyxem_convert",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
