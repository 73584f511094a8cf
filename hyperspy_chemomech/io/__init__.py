"""Readers: NeXus NXstxm stacks, per-energy image lists, strain maps from other tools.

Names are resolved on first use so that importing ``hyperspy_chemomech.io`` is cheap.
"""

import importlib

_LAZY = {
    # X-ray spectral stacks (io/stxm.py)
    "load_nxstxm": "stxm",
    "stack_from_images": "stxm",
    # strain maps from other tools (io/strain_files.py)
    "load_py4dstem_strain": "strain_files",
    "load_correlative_mat": "strain_files",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
