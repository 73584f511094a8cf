"""Readers: NeXus NXstxm, ALS STXM .hdr/.xim and CXI ptychography stacks, per-energy
image lists, strain maps from other tools.

Names are resolved on first use so that importing ``hyperspy_chemomech.io`` is cheap.
"""

from .._utils import lazy_names

_LAZY = {
    # X-ray spectral stacks (io/stxm.py)
    "load_nxstxm": "stxm",
    "stack_from_images": "stxm",
    "load_als_stxm": "als_stxm",
    "parse_hdr": "als_stxm",
    "load_cxi": "cxi",
    # strain maps from other tools (io/strain_files.py)
    "load_py4dstem_strain": "strain_files",
    "load_correlative_mat": "strain_files",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
