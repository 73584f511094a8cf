"""Strain maps written by other tools: py4DSTEM results and correlative MATLAB files.

Each reader converts the file's conventions into ours on entry (image frame,
x = column axis, y = row axis, tensor shear, rotation positive from +x toward +y,
NaN for "no data"); the tests pin every conversion with a synthetic file.
"""

from collections import namedtuple

import numpy as np

from .._metadata import record, set_image_axes
from ..fields import (
    components_from_gradient,
    gradient_from_components,
    gradient_from_reciprocal,
    rotate_gradient,
)

CorrelativeMaps = namedtuple("CorrelativeMaps", ["strain", "composition", "images"])
CorrelativeMaps.__doc__ = """Maps read by :func:`load_correlative_mat`.

strain : StrainField
composition : CompositionMap
images : dict of str -> hyperspy Signal2D (HAADF, VADF, VBF where present)
"""

STRAIN_VARIABLES = ("exx", "eyy", "exy", "theta")
COMPOSITION_VARIABLES = ("FP", "LFP")
IMAGE_VARIABLES = ("HAADF", "VADF", "VBF")
PY4DSTEM_LABELS = ("e_xx", "e_yy", "e_xy", "theta")


# -- reading ------------------------------------------------------------------------
def _read_mat(path):
    """Variables of a MATLAB file (v5 via scipy, v7.3/HDF5 via h5py) as numpy arrays."""
    import h5py

    path = str(path)
    if h5py.is_hdf5(path):
        out = {}
        with h5py.File(path, "r") as f:
            for name, obj in f.items():
                if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                    # MATLAB writes column-major: HDF5 sees the transpose
                    out[name] = np.asarray(obj[()]).T
        return out
    from scipy.io import loadmat

    return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}


def _scalar(value, name):
    a = np.asarray(value, dtype=float).ravel()
    if a.size != 1:
        raise ValueError(f"variable {name!r} must be a scalar, got {a.size} values")
    return float(a[0])


def _calibrated_image(data, pixel_size, units, title):
    import hyperspy.api as hs


    s = hs.signals.Signal2D(np.asarray(data, dtype=float))
    set_image_axes(s, scale=pixel_size, units=units)
    s.metadata.General.title = title
    return s


def _pixel_size(pixel_size, variables, source):
    if pixel_size is None:
        for key in ("pixel_size", "step_size", "scan_step"):
            if key in variables:
                return _scalar(variables[key], key)
        raise ValueError(
            f"{source} holds no pixel size (no variable 'pixel_size', 'step_size' or "
            "'scan_step'); pass pixel_size= (nm per scan step)"
        )
    p = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,))
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    return tuple(float(v) for v in p)


# -- correlative MATLAB files -------------------------------------------------------
def load_correlative_mat(path, pixel_size=None, units="nm", threshold=None, rot=None,
                         frame="crystal", fill_tolerance=1e-12):
    """Read co-registered strain, composition and image maps from a MATLAB .mat file.

    Parameters
    ----------
    path : str or path-like
        A MATLAB file (v5, read with :func:`scipy.io.loadmat`, or v7.3/HDF5, read
        with h5py) holding, on one pixel grid (rows = y, columns = x):

        - ``exx``, ``eyy``, ``exy``, ``theta`` (required): strain (tensor shear)
          and lattice rotation (rad);
        - ``FP``, ``LFP`` (required): FePO4 and LiFePO4 maps (e.g. phase
          thicknesses from X-ray spectral unmixing);
        - ``mask`` (optional): the particle, nonzero inside;
        - ``HAADF``, ``VADF``, ``VBF`` (optional): images;
        - ``rot`` (optional): angle (rad) of the strain maps' x axis, see ``frame``;
        - ``pixel_size`` / ``step_size`` (optional): pixel size in ``units``.
    pixel_size : float or (float, float), optional
        Pixel size (dy, dx) in ``units``; required when the file holds none.
    units : str
        Length unit of the pixel size (default nm).
    threshold : float, optional
        X = LFP / (FP + LFP) only where FP + LFP exceeds it (NaN elsewhere);
        default 10 % of the 99th percentile of FP + LFP.
    rot : float, optional
        Override the file's ``rot`` (rad).
    frame : {"crystal", "image"}
        ``"crystal"`` (default): the strain maps are components in a frame whose x
        axis lies at angle ``rot`` from image +x, toward +y (the crystal [100]
        direction, the angle our ``crystal_angle`` names); the whole displacement
        gradient is rotated into the image frame, ``H = R(rot) H_file R(rot)^T``.
        ``"image"``: the maps are already in the image frame; ``rot`` is only
        recorded as the crystal angle.

    Returns
    -------
    CorrelativeMaps
        ``(strain, composition, images)``: a :class:`StrainField` in the image
        frame, a :class:`CompositionMap` (X clipped to [0, 1]; the count of clipped
        pixels is recorded in its metadata) and a dict of Signal2D images.

    Notes
    -----
    Assumed frame: x = column index (MATLAB's second index), y = row index, as an
    image is displayed; ``exy`` is the tensor shear; ``theta`` is positive from
    +x toward +y (in-plane rotations leave it unchanged). Failed pixels, which
    such files mark by the fill values ``exx = eyy = 1`` and ``theta = 0``,
    become NaN, as do pixels outside ``mask``.

    Raises
    ------
    ValueError
        A required variable is missing (the message names it), shapes differ,
        no pixel size is known.
    """
    from ..signals import StrainField

    if frame not in ("crystal", "image"):
        raise ValueError(f"frame must be 'crystal' or 'image', got {frame!r}")
    v = _read_mat(path)
    missing = [n for n in STRAIN_VARIABLES + COMPOSITION_VARIABLES if n not in v]
    if missing:
        raise ValueError(
            f"{path} is missing variable(s) {', '.join(repr(m) for m in missing)}; "
            f"found {', '.join(sorted(v)) or 'none'}"
        )
    maps = {n: np.asarray(v[n], dtype=float) for n in STRAIN_VARIABLES + COMPOSITION_VARIABLES}
    shape = maps["exx"].shape
    if len(shape) != 2:
        raise ValueError(f"'exx' must be a 2D map, got shape {shape}")
    for name in (*maps, "mask", *IMAGE_VARIABLES):
        if name in v and np.shape(v[name]) != shape:
            raise ValueError(f"variable {name!r} has shape {np.shape(v[name])}, 'exx' has {shape}")
    scale = _pixel_size(pixel_size, v, str(path))
    angle = _scalar(v["rot"], "rot") if rot is None and "rot" in v else float(rot or 0.0)

    exx, eyy, exy, theta = (maps[n].copy() for n in STRAIN_VARIABLES)
    failed = ((np.abs(exx - 1) <= fill_tolerance) & (np.abs(eyy - 1) <= fill_tolerance)
              & (np.abs(theta) <= fill_tolerance))
    outside = ~(np.asarray(v["mask"]) != 0) if "mask" in v else np.zeros(shape, bool)
    H = gradient_from_components(exx, eyy, exy, theta)
    if frame == "crystal" and angle != 0.0:
        H = rotate_gradient(H, angle)
    comps = components_from_gradient(H)
    comps[:, failed | outside] = np.nan
    strain = StrainField.from_components(*comps, scale=scale, units=units)
    record(strain, "load_correlative_mat", path=str(path), rot=angle, frame=frame,
           crystal_angle=angle, n_failed=int(failed.sum()),
           assumed_frame="x = column index, y = row index; exy tensor shear; "
                         "theta positive from +x toward +y")

    fp, lfp = maps["FP"], maps["LFP"]
    total = fp + lfp
    if threshold is None:
        finite = total[np.isfinite(total)]
        threshold = 0.1 * np.percentile(finite, 99) if finite.size else np.inf
    with np.errstate(invalid="ignore", divide="ignore"):
        X = np.where(total > threshold, lfp / total, np.nan)
    clipped = int(np.count_nonzero((X < 0) | (X > 1)))
    X = np.clip(X, 0.0, 1.0)
    comp = _calibrated_image(X, scale, units, "Composition (LFP fraction)")
    comp.set_signal_type("composition_map")
    record(comp, "load_correlative_mat", path=str(path), threshold=float(threshold),
           definition="X = LFP / (FP + LFP) where FP + LFP > threshold",
           n_clipped=clipped)

    images = {n: _calibrated_image(v[n], scale, units, n) for n in IMAGE_VARIABLES if n in v}
    return CorrelativeMaps(strain, comp, images)


# -- py4DSTEM ---------------------------------------------------------------------
def _py4dstem_slices(source):
    """{label: 2D array} from a py4DSTEM RealSlice, a mapping or an HDF5/EMD file."""
    if hasattr(source, "get_slice") and hasattr(source, "slicelabels"):
        return {str(k): np.asarray(source.get_slice(k).data, float) for k in source.slicelabels}
    if isinstance(source, dict):
        return {str(k): np.asarray(a, float) for k, a in source.items()}
    import h5py

    found = {}

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset) or found:
            return
        leaf = name.rsplit("/", 1)[-1]
        if leaf in PY4DSTEM_LABELS + ("mask",):  # one dataset per slice
            parent = name.rsplit("/", 1)[0] if "/" in name else ""
            grp = obj.file[parent] if parent else obj.file
            labels = [k for k in grp if k in PY4DSTEM_LABELS + ("mask",)]
            if all(lab in labels for lab in PY4DSTEM_LABELS):
                for k in labels:
                    found[k] = np.asarray(grp[k][()], float)
            return
        labels = obj.attrs.get("slicelabels")
        if labels is None and obj.parent is not None:
            for key in ("slicelabels", "_slicelabels"):
                if key in obj.parent and obj.parent[key] is not obj:
                    labels = obj.parent[key][()]
                    break
        if labels is None or obj.ndim != 3:
            return
        labels = [lab.decode() if isinstance(lab, bytes) else str(lab)
                  for lab in np.ravel(labels)]
        if all(lab in labels for lab in PY4DSTEM_LABELS) and len(labels) == obj.shape[0]:
            data = np.asarray(obj[()], float)
            found.update({lab: data[i] for i, lab in enumerate(labels)})

    with h5py.File(str(source), "r") as f:
        f.visititems(visit)
    if not found:
        raise ValueError(
            f"{source}: no py4DSTEM strain map found (a 3D dataset with slicelabels "
            f"{', '.join(PY4DSTEM_LABELS)}, or datasets with those names)"
        )
    return found


def load_py4dstem_strain(source, pixel_size=None, units="nm", coordinate_rotation=0.0):
    """Read a py4DSTEM strain map (``e_xx, e_yy, e_xy, theta``) into a StrainField.

    Parameters
    ----------
    source : py4DSTEM RealSlice, dict of arrays, or path to an HDF5/EMD file
        The output of py4DSTEM's ``get_strain_from_reference_g1g2`` /
        ``get_strain_from_reference_region`` (slices ``e_xx``, ``e_yy``, ``e_xy``,
        ``theta`` and optionally ``mask``), indexed ``[Rx, Ry]``.
    pixel_size : float or (float, float)
        Scan step (dy, dx) in ``units``. Required: py4DSTEM strain maps carry no
        calibration of their own.
    units : str
        Length unit of the pixel size (default nm).
    coordinate_rotation : float
        If the map was rotated with py4DSTEM's ``get_rotated_strain_map`` or the
        diffraction space is rotated relative to the scan: the angle (rad) of the
        map's x axis (py4DSTEM's Qx) in the *unswapped* (Rx, Ry) frame, from Rx
        toward Ry. Default 0 (diffraction and scan axes aligned).

    Returns
    -------
    StrainField

    Notes
    -----
    py4DSTEM's x is the *first* array axis (Qx, Rx: rows) and y the second; its
    strain is the infinitesimal one of the reciprocal transformation
    ``beta = G G_ref^-1``: ``e_xx = 1 - beta_00``, ``e_yy = 1 - beta_11``,
    ``e_xy = -(beta_01 + beta_10)/2`` (tensor shear), ``theta = (beta_01 - beta_10)/2``.
    The four maps determine ``beta`` exactly; we rebuild it, swap x and y into our
    image frame (x = columns) and take ``H = inv(beta).T - I``. To first order this
    is ``(e11, e22, e12, theta) = (e_yy, e_xx, e_xy, theta)``: the swap of axes
    mirrors the frame, which flips the rotation sign, and py4DSTEM's own sign
    flips it back. Pixels where ``mask`` is 0 (or the maps are not finite) are NaN.
    """
    from ..signals import StrainField

    slices = _py4dstem_slices(source)
    missing = [lab for lab in PY4DSTEM_LABELS if lab not in slices]
    if missing:
        raise ValueError(
            f"py4DSTEM strain map is missing slice(s) {', '.join(repr(m) for m in missing)}; "
            f"found {', '.join(sorted(slices))}"
        )
    if pixel_size is None:
        raise ValueError("pixel_size (scan step, nm) is required: py4DSTEM strain maps "
                         "carry no calibration")
    scale = _pixel_size(pixel_size, {}, "py4DSTEM strain map")
    exx, eyy, exy, th = (slices[lab] for lab in PY4DSTEM_LABELS)
    beta = np.empty(exx.shape + (2, 2))
    beta[..., 0, 0] = 1 - exx
    beta[..., 1, 1] = 1 - eyy
    beta[..., 0, 1] = th - exy
    beta[..., 1, 0] = -exy - th
    if coordinate_rotation:
        c, s = np.cos(coordinate_rotation), np.sin(coordinate_rotation)
        R = np.array([[c, -s], [s, c]])
        beta = R @ beta @ R.T
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    # (Rx, Ry) = (row, column) -> our (x, y) = (column, row)
    H = gradient_from_reciprocal(swap @ beta @ swap)
    comps = components_from_gradient(H)
    if "mask" in slices:
        comps[:, ~(slices["mask"] != 0)] = np.nan
    sf = StrainField.from_components(*comps, scale=scale, units=units)
    record(sf, "load_py4dstem_strain", coordinate_rotation=float(coordinate_rotation),
           frame="image: x = Ry (columns), y = Rx (rows)")
    return sf
