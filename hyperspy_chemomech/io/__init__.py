"""Readers: NeXus NXstxm, ALS STXM .hdr/.xim and CXI ptychography stacks, per-energy
image lists, strain maps from other tools.

Names are resolved on first use so that importing ``hyperspy_chemomech.io`` is cheap.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "stxm": ["load_nxstxm", "stack_from_images"],
        "als_stxm": ["load_als_stxm", "parse_hdr"],
        "cxi": ["load_cxi"],
        "strain_files": ["load_correlative_mat", "load_py4dstem_strain"],
    },
)
