"""Ptychography reconstructions in CXI files (one complex object per energy) -> a stack.

CXI (Maia, Nature Methods 9, 854 (2012); cxidb.org) is the HDF5 layout the ALS
COSMIC beamline writes its reconstructions in; this reader follows the layout that
pySTXM's ``readCXI`` (D. Shapiro, COSMIC) reads: photon energy in joules at
``entry_N/instrument_1/source_1/energy``, the object at ``entry_N/image_M/data``
(the highest M is the latest reconstruction), the detector geometry under
``entry_N/instrument_1/detector_1``.
"""

import os
import re

import numpy as np

from ._files import names_the_file, open_hdf5

_EV = 1.602176634e-19  # J per eV
_HC = 6.62607015e-34 * 299792458 / _EV  # eV m (exact SI constants)


def _numbered(group, prefix):
    """Children ``<prefix>_<n>`` of ``group``, sorted by n."""
    found = [(int(m.group(1)), k) for k in group
             if (m := re.fullmatch(rf"{prefix}_(\d+)", k)) is not None]
    return [k for _, k in sorted(found)]


def _scalar(ds):
    return float(np.ravel(ds[()])[0])


def _pixel_size_nm(f, entry, image, energy_ev, path):
    """(dy, dx) nm of the object, with its source, or None."""
    img = f[entry][image]
    if "x_pixel_size" in img and "y_pixel_size" in img:  # SI: metres
        return (_scalar(img["y_pixel_size"]) * 1e9, _scalar(img["x_pixel_size"]) * 1e9), \
            f"{image}/x_pixel_size, y_pixel_size"
    det = f.get(f"{entry}/instrument_1/detector_1")
    if det is not None and "corner_position" in det:
        cx, cy, cz = (float(v) for v in np.ravel(det["corner_position"][()])[:3])
        na = np.hypot(cx, cy) / np.sqrt(2.0) / cz  # as pySTXM's readCXI.pixnm
        if na > 0:
            p = (_HC / energy_ev) / (2 * na) * 1e9
            return (p, p), "detector_1/corner_position (lambda / 2 NA)"
    return None


@names_the_file
def _read_one(path, image):
    """[(energy eV, complex 2D object, pixel size or None, source, entry/image)] of one file."""
    out = []
    with open_hdf5(path, "a CXI file (HDF5)") as f:
        if "cxi_version" not in f:
            raise ValueError(f"{path} is HDF5 but not CXI (no 'cxi_version'); found "
                             f"{sorted(f)[:6]}")
        entries = _numbered(f, "entry")
        if not entries:
            raise ValueError(f"{path}: no entry_1 group")
        for entry in entries:
            images = _numbered(f[entry], "image")
            if not images:
                raise ValueError(f"{path}: {entry} holds no image_N (no reconstruction)")
            name = images[-1] if image is None else f"image_{int(image)}"
            if name not in f[entry] or "data" not in f[entry][name]:
                raise ValueError(f"{path}: no {entry}/{name}/data; images are {images}")
            obj = np.asarray(f[entry][name]["data"][()])
            if obj.ndim == 3 and obj.shape[0] == 1:
                obj = obj[0]
            if obj.ndim != 2:
                raise ValueError(f"{path}: {entry}/{name}/data has shape {obj.shape}; one 2D "
                                 "object expected (several object modes are not supported)")
            if not np.iscomplexobj(obj):
                raise ValueError(f"{path}: {entry}/{name}/data is real ({obj.dtype}); a "
                                 "ptychographic object is complex (amplitude and phase)")
            src = f.get(f"{entry}/instrument_1/source_1/energy")
            if src is None:
                raise ValueError(f"{path}: no {entry}/instrument_1/source_1/energy (photon "
                                 "energy, J)")
            energy = _scalar(src) / _EV
            if not np.isfinite(energy) or not 10 < energy < 1e6:
                raise ValueError(f"{path}: photon energy {energy:g} eV is not plausible (CXI "
                                 "stores joules)")
            px = _pixel_size_nm(f, entry, name, energy, path)
            out.append((energy, obj, px, f"{entry}/{name}"))
    return out


def load_cxi(paths, pixel_size=None, units="nm", image=None):
    """Read ptychography reconstructions (CXI) into an X-ray stack, one energy per object.

    Parameters
    ----------
    paths : path or sequence of paths
        CXI files, e.g. one per energy as COSMIC writes them; a file may hold several
        ``entry_N`` (one energy each).
    pixel_size : float or (float, float), optional
        Object pixel size (dy, dx) in ``units``. Default: from the file,
        ``image_M/x_pixel_size`` and ``y_pixel_size`` (m) if present, else the
        detector geometry, ``lambda / (2 NA)`` with ``NA`` from
        ``detector_1/corner_position`` (as COSMIC's pySTXM computes it). All
        energies must share one pixel size (within 0.5 %).
    units : str
        Length unit of ``pixel_size`` (default nm).
    image : int, optional
        Which ``image_M`` to read; default the highest M (the latest).

    Returns
    -------
    XrayAbsorptionSpectrum
        Layout (y, x | energy), energies (eV) sorted, data ``|T|^2`` (the
        transmitted intensity fraction, up to the reconstruction's scale): its
        :meth:`~hyperspy_chemomech.signals.XrayAbsorptionSpectrum.to_optical_density`
        gives ``OD = -ln(|T|^2 / I0) = -2 ln(|T| / |T_0|)`` with I0 from empty
        pixels. The phase (rad, wrapped) is kept as an (ny, nx, n_energies) array
        in ``metadata.Chemomech.ptychography.phase``; ``metadata.Chemomech.cxi``
        records the files, the groups read and the pixel-size source.

    Raises
    ------
    FileNotFoundError
        A file is missing.
    ValueError
        Not HDF5 / not CXI (the message says what it is), no reconstruction,
        a real (not complex) object, no energy, objects of different shapes or
        pixel sizes, no pixel size; every message names the file.

    References
    ----------
    .. [1] F. R. N. C. Maia, "The Coherent X-ray Imaging Data Bank", Nature Methods 9,
       854 (2012); the CXI format, https://www.cxidb.org/cxi.html
    .. [2] D. A. Shapiro et al., "An ultrahigh-resolution soft x-ray microscope for
       quantitative analysis of chemically heterogeneous nanomaterials", Science
       Advances 6, eabc4904 (2020) (COSMIC); pySTXM's readCXI.
    """
    from .._metadata import record
    from .stxm import stack_from_images

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("load_cxi needs at least one CXI file")
    items = [(p, *it) for p in paths for it in _read_one(p, image)]
    shapes = {obj.shape for _, _, obj, _, _ in items}
    if len(shapes) != 1:
        listing = ", ".join(f"{os.path.basename(p)}: {obj.shape}" for p, _, obj, _, _ in items)
        raise ValueError(f"the objects have different shapes ({listing}); crop or resample "
                         "them onto one grid and use stack_from_images")
    if pixel_size is None:
        sizes = [(p, px) for p, _, _, px, _ in items]
        missing = [p for p, px in sizes if px is None]
        if missing:
            raise ValueError(f"{missing[0]}: no pixel size (no image x_pixel_size, no "
                             "detector corner_position); pass pixel_size=")
        values = np.array([px[0] for _, px in sizes])
        if np.ptp(values, axis=0).max() > 0.005 * values.min():
            listing = ", ".join(f"{os.path.basename(p)}: {px[0][1]:.4g} nm"
                                for p, px in sizes)
            raise ValueError(f"the objects' pixel sizes differ ({listing}); resample them onto "
                             "one grid, or pass pixel_size= if they already share one")
        scale, source, units = tuple(values.mean(axis=0)), sizes[0][1][1], "nm"
    else:
        scale, source = pixel_size, "given"
    stack = stack_from_images([obj for _, _, obj, _, _ in items],
                              [e for _, e, _, _, _ in items], pixel_size=scale, units=units,
                              counts=False)
    order = np.argsort([e for _, e, _, _, _ in items], kind="stable")
    stack.metadata.General.title = "Ptychography stack (CXI)"
    record(stack, "cxi", files=[items[i][0] for i in order],
           groups=[items[i][4] for i in order], pixel_size_source=source)
    return stack
