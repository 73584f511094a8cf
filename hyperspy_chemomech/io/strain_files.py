"""Strain maps written by other tools: py4DSTEM results and correlative MATLAB files.

Each reader converts the file's conventions into ours on entry (image frame,
x = column axis, y = row axis, tensor shear, rotation positive from +x toward +y,
NaN for "no data"); the tests pin every conversion with a synthetic file.
"""

import os
from collections import namedtuple

import numpy as np

from .._metadata import record, set_image_axes
from ..fields import (
    LENGTH_TO_NM,
    components_from_gradient,
    gradient_from_components,
    gradient_from_reciprocal,
    rotate_gradient,
)
from ._files import check_file, describe, names_the_file, open_hdf5

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

    what = "a MATLAB .mat file (v5, or v7.3/HDF5)"
    path = check_file(path, what)
    if h5py.is_hdf5(path):
        out = {}
        with open_hdf5(path, what) as f:
            for name, obj in f.items():
                if isinstance(obj, h5py.Dataset) and not name.startswith("#"):
                    # MATLAB writes column-major: HDF5 sees the transpose
                    out[name] = np.asarray(obj[()]).T
        return out
    from scipy.io import loadmat

    kind = describe(path)
    if not kind.startswith("a MATLAB"):
        # MATLAB v4 files have no header: let scipy try before refusing
        try:
            return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        except Exception as err:  # scipy raises several types for foreign files
            raise ValueError(f"{path} is not {what} but {kind}") from err
    try:
        return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    except Exception as err:
        raise ValueError(f"{path}: a MATLAB v5 file that cannot be read, it is corrupted "
                         f"or truncated (scipy: {err})") from err


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
            "'scan_step'); pass pixel_size= (nm per scan step; --pixel-size on the command line)"
        )
    p = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,))
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    return tuple(float(v) for v in p)


# -- correlative MATLAB files -------------------------------------------------------
#: Readings of a correlative file's (exx, eyy, exy, theta), as a family of
#: :mod:`~hyperspy_chemomech.decomposition._conventions`: the authors' code
#: (dhtdean/correlative-image-learning, inversion/utils/DFromExperiment.m) takes
#: exx = du_a/da, eyy = du_c/dc, du_a/dc = exy + theta, du_c/da = exy - theta in
#: crystal axes (a, c) = Q (x, y), Q = [[sin rot, cos rot], [cos rot, -sin rot]]: a
#: mirror of the image axes. Read in the image frame that is R(phi) (exx, eyy, -exy,
#: theta) R(phi)^T: the "shear sign flipped" family, [100] at phi.
AUTHORS_FAMILY = "shear sign flipped"
FRAMES = ("auto", "matlab", "crystal", "image")
#: Failed fits in the authors' files: exx = eyy = 1 (>= 0.999) and theta = 0.
FAILED_STRAIN = 0.999


def _authors_candidates(rot):
    """The two senses the authors' ``rot`` can have, as (family, [100] angle) readings."""
    return {
        "rot read as the authors' code does: [100] at pi/2 - rot":
            (AUTHORS_FAMILY, np.pi / 2 - rot),
        "rot in the opposite sense: [100] at rot - pi/2": (AUTHORS_FAMILY, rot - np.pi / 2),
    }


def _choose_frame(stored, scale, rot, warn_ratio=1.15):
    """The frame of the authors' components: from ``rot`` (its sense checked by the
    data) or, without it, from the data alone. Returns (matrix, frame items)."""
    import warnings

    from ..decomposition import find_frame

    alone = find_frame(stored, scale)
    items = dict(data_alone_angle=alone["angle"], data_alone_family=alone["family"],
                 data_alone_index=alone["index"], data_alone_margin=alone["margin"],
                 data_alone_angle_halfwidth=alone["angle_halfwidth"])
    if rot is None:
        chosen, source = alone, "data alone (compatibility of the distortion)"
    else:
        chosen = find_frame(stored, scale, candidates=_authors_candidates(rot))
        source = f"file rot ({rot:.6g} rad), its sense from the data"
        if chosen["index"] > warn_ratio * alone["index"]:
            warnings.warn(
                f"the frame from the file's rot ([100] at {np.rad2deg(chosen['angle']):+.1f} deg, "
                f"compatibility index {chosen['index']:.3g}) fits the data worse than the frame "
                f"the data alone choose ({alone['family']}, [100] at "
                f"{np.rad2deg(alone['angle']):+.1f} deg, index {alone['index']:.3g}): check rot, or "
                "pass rot= / frame=", UserWarning, stacklevel=3)
    if chosen["ambiguous"]:
        table = ", ".join(f"{k}: {v:.3g}" for k, v in chosen["scores"].items())
        warnings.warn(f"the crystal frame is ambiguous: the best two readings score within "
                f"{chosen['margin']:.2f}x of each other ({table}); chose '{chosen['chosen']}'. "
                "Pass rot= (or frame=) if you know it", UserWarning, stacklevel=3)
    items.update(source=source, family=chosen["family"], chosen=chosen["chosen"],
                 index=chosen["index"], margin=chosen["margin"],
                 ambiguous=chosen["ambiguous"], candidates=list(chosen["scores"]),
                 scores=list(chosen["scores"].values()))
    return chosen["matrix"], chosen["angle"], items


@names_the_file
def load_correlative_mat(path, pixel_size=None, units="nm", threshold=None, rot=None,
                         frame="auto", fill_tolerance=1e-12):
    """Read co-registered strain, composition and image maps from a MATLAB .mat file.

    Parameters
    ----------
    path : str or path-like
        A MATLAB file (v5, read with :func:`scipy.io.loadmat`, or v7.3/HDF5, read
        with h5py) holding, on one pixel grid (rows = y, columns = x):

        - ``exx``, ``eyy``, ``exy``, ``theta`` (required): strain (tensor shear)
          and lattice rotation (rad), in the frame given by ``frame``;
        - ``FP``, ``LFP`` (required): FePO4 and LiFePO4 maps (e.g. phase
          thicknesses from X-ray spectral unmixing);
        - ``mask`` (optional): the particle, nonzero inside;
        - ``HAADF``, ``VADF``, ``VBF`` (optional): images;
        - ``rot`` (optional): angle (rad) relating the maps' axes to the crystal
          axes, see ``frame``;
        - ``pixel_size`` / ``step_size`` (optional): pixel size in ``units``.
    pixel_size : float or (float, float), optional
        Pixel size (dy, dx) in ``units``; required when the file holds none.
    units : str
        Length unit of the pixel size (default nm).
    threshold : float, optional
        X = LFP / (FP + LFP) only where FP + LFP exceeds it (NaN elsewhere);
        default 10 % of the 99th percentile of FP + LFP.
    rot : float, optional
        Override the file's ``rot`` (rad); ``rot=float("nan")`` ignores the file's.
    frame : {"auto", "matlab", "crystal", "image"}
        How the components are stored.

        - ``"auto"`` (default): the authors' files (Deng et al. 2022, their
          MATLAB code ``DFromExperiment.m``): components along crystal axes a =
          [100], c = [001] that are a *mirror image* of the image axes,
          ``du_a/dc = exy + theta``, ``du_c/da = exy - theta``. In the image frame
          that is ``R(phi) (exx, eyy, -exy, theta) R(phi)^T`` with [100] at
          ``phi``. The code puts [100] at ``phi = pi/2 - rot``; the opposite sense
          ``rot - pi/2`` is tried too and the data decide (the compatibility of
          the distortion, :func:`~hyperspy_chemomech.decomposition.find_frame`).
          Without ``rot`` the family and angle are found from the data alone; a
          warning says when the choice is ambiguous (with the scores).
        - ``"matlab"``: as the authors' code reads it, ``phi = pi/2 - rot``, no
          check.
        - ``"crystal"``: our own conventions (tensor shear, theta from +x toward
          +y) in an unmirrored frame whose x axis, [100], lies at ``rot`` from
          image +x toward +y: ``H = R(rot) H_file R(rot)^T``.
        - ``"image"``: our conventions, already in the image frame; ``rot`` is
          recorded as the crystal angle.

        Whatever the frame, what was learned about it goes to
        ``metadata.Chemomech.frame`` (see :mod:`hyperspy_chemomech._metadata`),
        which :meth:`StrainField.learn_eigenstrain` and :meth:`StrainField.decompose`
        use when no ``crystal_angle`` is given.

    Returns
    -------
    CorrelativeMaps
        ``(strain, composition, images)``: a :class:`StrainField` in the image
        frame, a :class:`CompositionMap` (X clipped to [0, 1]; the count of clipped
        pixels is recorded in its metadata) and a dict of Signal2D images.

    Notes
    -----
    x = column index (MATLAB's second index), y = row index, as an image is
    displayed. Failed pixels become NaN, as do pixels outside ``mask``: the
    authors' files mark them by ``exx = eyy = 1`` (``>= 0.999``) or ``theta = 0``;
    in our conventions (``"crystal"``, ``"image"``) by ``exx = eyy = 1`` and ``theta
    = 0`` together.

    On the authors' LFP50_P2.mat (rot = 1.7104 rad) the data choose the sense
    ``rot - pi/2`` ([100] at +8.0 deg, compatibility index 0.318) over the code's
    ``pi/2 - rot`` (-8.0 deg, 0.432), and the data alone put [100] at +9.5 deg
    in the same mirrored family (0.317; next family 1.26x worse).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a .mat file (the message says what it is: text, an image, empty, a
        corrupted HDF5 file, ...), a required variable is missing (the message
        names it), shapes differ, no pixel size is known. Every message names
        the file.
    """
    from .._metadata import set_frame
    from ..signals import StrainField

    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {', '.join(map(repr, FRAMES))}, got {frame!r}")
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
    if rot is None:
        angle = _scalar(v["rot"], "rot") if "rot" in v else None
    else:
        angle = float(rot)
        if np.isnan(angle):
            angle = None
    if frame == "matlab" and angle is None:
        raise ValueError(f"{path} holds no 'rot': frame='matlab' needs it (pass rot=)")

    exx, eyy, exy, theta = (maps[n].copy() for n in STRAIN_VARIABLES)
    fills = (exx >= FAILED_STRAIN - fill_tolerance) & (eyy >= FAILED_STRAIN - fill_tolerance)
    if frame in ("auto", "matlab"):
        failed = fills | (theta == 0)     # the authors' code: theta == 0 is a failed fit
    else:
        failed = fills & (np.abs(theta) <= fill_tolerance)
    outside = ~(np.asarray(v["mask"]) != 0) if "mask" in v else np.zeros(shape, bool)
    stored = np.stack([exx, eyy, exy, theta])
    stored[:, failed | outside] = np.nan
    if frame in ("auto", "matlab"):
        from ..decomposition import FAMILIES, rotation_reading

        if frame == "auto":
            L, crystal_angle, items = _choose_frame(stored, scale, angle)
        else:
            crystal_angle = np.pi / 2 - angle
            L = rotation_reading(crystal_angle) @ FAMILIES[AUTHORS_FAMILY]
            items = dict(source=f"file rot ({angle:.6g} rad) as the authors' code reads it",
                         family=AUTHORS_FAMILY)
        comps = np.einsum("ij,jyx->iyx", L, stored)
        mirrored = True
        reading = ("authors' conventions: R(phi) (exx, eyy, -exy, theta) R(phi)^T, [100] at "
                   "phi; crystal axes a mirror of the image axes")
    else:
        a = 0.0 if angle is None else angle
        H = gradient_from_components(*stored)
        if frame == "crystal" and a != 0.0:
            H = rotate_gradient(H, a)
        comps = components_from_gradient(H)
        crystal_angle, mirrored = a, False
        items = dict(source="file rot" if angle is not None else "none (0 assumed)")
        reading = ("ours, frame at rot: H = R(rot) H_file R(rot)^T" if frame == "crystal"
                   else "ours, image frame as stored")
    comps[:, failed | outside] = np.nan
    strain = StrainField.from_components(*comps, scale=scale, units=units)
    record(strain, "load_correlative_mat", path=str(path), rot=angle, frame=frame,
           crystal_angle=float(crystal_angle), n_failed=int(failed.sum()),
           assumed_frame="x = column index, y = row index")
    set_frame(strain, crystal_angle, mirrored=mirrored, reader="load_correlative_mat",
              reading=reading, rot=angle, **items)

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


def _text(value):
    """An HDF5 string attribute or scalar dataset as str."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode() if isinstance(value, bytes) else str(value)


def _emd_stacks(f):
    """Paths of the emdfile stack Arrays in ``f`` whose slice labels hold the strain maps.

    emdfile (py4DSTEM >= 0.14) stores an Array stack as a group with ``data`` of
    shape (n_slices, Rx, Ry), dim vectors ``dim0`` (Rx) and ``dim1`` (Ry), and the
    slice labels in the last dim vector, ``dim2``, whose ``name`` attribute is
    ``_labels_``.
    """
    import h5py

    found = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Group) or not isinstance(obj.get("data"), h5py.Dataset):
            return
        data = obj["data"]
        last = obj.get(f"dim{data.ndim - 1}")
        if data.ndim != 3 or not isinstance(last, h5py.Dataset):
            return
        if _text(last.attrs.get("name", "")) != "_labels_":
            return
        labels = [_text(lab) for lab in np.ravel(last[()])]
        if all(lab in labels for lab in PY4DSTEM_LABELS) and len(labels) == data.shape[0]:
            found.append(name)

    f.visititems(visit)
    return found


def _emd_calibration(f, group):
    """The py4DSTEM Calibration of the tree holding ``group`` (its root's), as a dict."""
    import h5py

    root = group.split("/", 1)[0]
    cal = f.get(f"{root}/metadatabundle/calibration")
    if not isinstance(cal, h5py.Group):
        return {}
    out = {}
    for key in ("R_pixel_size", "R_pixel_units", "QR_rotation_degrees", "QR_flip"):
        if isinstance(cal.get(key), h5py.Dataset):
            v = cal[key][()]
            out[key] = _text(v) if isinstance(v, (bytes, str)) else v
    return out


def _emd_pixel_size(f, group, calibration):
    """(dRx, dRy) in nm from the Array's dim vectors or the root calibration, or None."""
    steps, units = [], []
    for n in (0, 1):
        dim = f[group].get(f"dim{n}")
        if dim is None or dim.size < 2:
            return None
        steps.append(float(dim[1] - dim[0]))
        units.append(_text(dim.attrs.get("units", "")))
    if all(u in LENGTH_TO_NM for u in units):
        return tuple(s * LENGTH_TO_NM[u] for s, u in zip(steps, units)), "dim vectors"
    unit = calibration.get("R_pixel_units", "")
    size = calibration.get("R_pixel_size")
    if unit in LENGTH_TO_NM and size is not None and float(size) > 0:
        return (float(size) * LENGTH_TO_NM[unit],) * 2, "py4DSTEM calibration R_pixel_size"
    return None


def _legacy_slices(f):
    """{label: array} from layouts older than emdfile's: ``slicelabels`` attributes or
    sibling datasets, or one dataset per slice."""
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
        labels = [_text(lab) for lab in np.ravel(labels)]
        if all(lab in labels for lab in PY4DSTEM_LABELS) and len(labels) == obj.shape[0]:
            data = np.asarray(obj[()], float)
            found.update({lab: data[i] for i, lab in enumerate(labels)})

    f.visititems(visit)
    return found


def _py4dstem_slices(source, emdpath=None):
    """({label: 2D array}, info) from a py4DSTEM RealSlice, a mapping or an HDF5/EMD file.

    ``info`` holds what the file says besides the maps: the group read, its
    python class, the pixel size (nm, with its source) and the calibration.
    """
    if hasattr(source, "get_slice") and hasattr(source, "slicelabels"):
        return ({str(k): np.asarray(source.get_slice(k).data, float)
                 for k in source.slicelabels}, {"source": type(source).__name__})
    if isinstance(source, dict):
        return {str(k): np.asarray(a, float) for k, a in source.items()}, {"source": "dict"}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "source must be a py4DSTEM RealSlice/StrainMap, a dict of 2D arrays or the path "
            f"of a py4DSTEM (emdfile) HDF5 file; got {type(source).__name__}")
    with open_hdf5(source, "a py4DSTEM strain map (emdfile HDF5)") as f:
        stacks = _emd_stacks(f)
        if emdpath is not None:
            emdpath = str(emdpath).strip("/")
            if emdpath not in stacks:
                raise ValueError(
                    f"{source}: {emdpath!r} is not a py4DSTEM strain map; the strain maps "
                    f"in this file are {stacks or 'none'}")
            stacks = [emdpath]
        if len(stacks) > 1:
            raise ValueError(
                f"{source} holds {len(stacks)} py4DSTEM strain maps ({', '.join(stacks)}); "
                "choose one with emdpath=")
        if stacks:
            group = stacks[0]
            labels = [_text(lab) for lab in np.ravel(f[group]["dim2"][()])]
            data = np.asarray(f[group]["data"][()], float)
            calibration = _emd_calibration(f, group)
            info = {"source": "emdfile", "emdpath": group,
                    "python_class": _text(f[group].attrs.get("python_class", "")),
                    "calibration": calibration,
                    "pixel_size": _emd_pixel_size(f, group, calibration)}
            return {lab: data[i] for i, lab in enumerate(labels)}, info
        found = _legacy_slices(f)
    if not found:
        raise ValueError(
            f"{source}: no py4DSTEM strain map found (an emdfile Array whose slice labels, "
            f"the dim vector named '_labels_', include {', '.join(PY4DSTEM_LABELS)}; or, "
            "in older files, a 3D dataset with slicelabels or datasets with those names)"
        )
    return found, {"source": "legacy HDF5 layout"}


@names_the_file
def load_py4dstem_strain(source, pixel_size=None, units="nm", coordinate_rotation=0.0,
                         emdpath=None, reference_region=None):
    """Read a py4DSTEM strain map (``e_xx, e_yy, e_xy, theta``) into a StrainField.

    Parameters
    ----------
    source : path, py4DSTEM StrainMap / RealSlice, or dict of arrays
        A file written by ``py4DSTEM.save`` (emdfile HDF5) holding a ``StrainMap``
        (``StrainMap.get_strain``) or a ``RealSlice`` with slices ``e_xx``,
        ``e_yy``, ``e_xy``, ``theta`` and optionally ``mask`` (e.g. the
        ``strainmap_g1g2`` of ``get_strain_from_reference_g1g2``), at the root of
        its tree or nested in it (saved with ``tree=True`` under the BraggVectors);
        or such an object, or a dict of those arrays, indexed ``[Rx, Ry]``.
    pixel_size : float or (float, float), optional
        Scan step (dy, dx) = (dRx, dRy) in ``units``. Default: from the file, the
        Array's dim vectors when they are in a length unit, else the tree's
        py4DSTEM calibration ``R_pixel_size`` / ``R_pixel_units`` (nm, Å, µm, pm);
        required when neither is in a length unit (py4DSTEM's default is
        "pixels") or the source is not a file.
    units : str
        Length unit of ``pixel_size`` (default nm).
    coordinate_rotation : float
        The ``coordinate_rotation`` py4DSTEM's ``StrainMap.get_strain`` was given,
        in **radians** (``np.radians`` of py4DSTEM's degrees), or the angle passed
        to ``get_rotated_strain_map``: the angle of the map's x axis from Qx toward
        Qy. py4DSTEM does not save it, so it must be given. Default 0.
    emdpath : str, optional
        Group of the strain map in the file (e.g. ``"datacube_root/braggvectors/
        strainmap"``) when the file holds several.
    reference_region : array_like of bool, shape (Rx, Ry), optional
        The region whose median lattice was the reference (the ``gvects`` array of
        ``get_strain``). py4DSTEM 0.14 does not save it; given here it is recorded
        as ``metadata.Chemomech.load_py4dstem_strain.reference_mask`` (y, x).

    Returns
    -------
    StrainField
        In the image frame (x = Ry, columns; y = Rx, rows), NaN where py4DSTEM's
        ``mask`` is 0 (its fill values there, e.g. ``e_xx = 1``, never reach the
        field) or the maps are not finite. ``metadata.Chemomech.load_py4dstem_strain``
        records the group read, its py4DSTEM class, the pixel size and its source,
        and the calibration's QR rotation and flip.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file that is not HDF5 or is damaged, holds no strain map or several
        (without ``emdpath``), misses a slice, or has no length calibration when
        ``pixel_size`` is not given; every message names the file.
    TypeError
        ``source`` of another type (e.g. a plain array).

    Notes
    -----
    The file layout (emdfile 0.0.16, py4DSTEM 0.14): an Array group with ``data``
    of shape (n_slices, Rx, Ry), dim vectors ``dim0`` (Rx), ``dim1`` (Ry) and
    ``dim2`` named ``_labels_`` holding the slice labels (StrainMap: e_xx, e_yy,
    e_xy, theta, mask, error); the Calibration under
    ``<root>/metadatabundle/calibration``. Older layouts (a ``slicelabels``
    attribute, one dataset per slice) are still read.

    py4DSTEM's x is the *first* array axis (Qx, Rx: rows) and y the second; its
    strain is the infinitesimal one of the reciprocal transformation
    ``beta = G G_ref^-1``: ``e_xx = 1 - beta_00``, ``e_yy = 1 - beta_11``,
    ``e_xy = -(beta_01 + beta_10)/2`` (tensor shear), ``theta = (beta_01 - beta_10)/2``.
    The four maps determine ``beta`` exactly; we rebuild it, undo the coordinate
    rotation, swap x and y into our image frame (x = columns) and take
    ``H = inv(beta).T - I``. To first order this is ``(e11, e22, e12, theta) =
    (e_yy, e_xx, e_xy, theta)``: the swap of axes mirrors the frame, which flips
    the rotation sign, and py4DSTEM's own sign flips it back. The fixtures of
    ``tests/data/make_py4dstem_fixtures.py``, written by py4DSTEM from diffraction
    patterns of a known strain, pin every sign.

    py4DSTEM measures in its calibrated diffraction frame: with a QR rotation (or
    flip) in its calibration and the vectors calibrated with ``rotate=True`` (its
    default once the rotation is set) the maps are already in the scan frame; the
    values are recorded, not applied again.
    """
    from ..signals import StrainField

    slices, info = _py4dstem_slices(source, emdpath)
    missing = [lab for lab in PY4DSTEM_LABELS if lab not in slices]
    if missing:
        raise ValueError(
            f"py4DSTEM strain map is missing slice(s) {', '.join(repr(m) for m in missing)}; "
            f"found {', '.join(sorted(slices))}"
        )
    shape = np.shape(slices["e_xx"])
    for lab in PY4DSTEM_LABELS + ("mask",):
        if lab in slices and np.shape(slices[lab]) != shape:
            raise ValueError(f"py4DSTEM slice {lab!r} has shape {np.shape(slices[lab])}, "
                             f"'e_xx' has {shape}")
    if pixel_size is not None:
        scale = _pixel_size(pixel_size, {}, "py4DSTEM strain map")
        pixel_source = "given"
    elif info.get("pixel_size") is not None:
        scale, pixel_source = info["pixel_size"]
        units = "nm"
    else:
        cal = info.get("calibration", {})
        has = (f" (its calibration says R_pixel_size {cal['R_pixel_size']} "
               f"{cal.get('R_pixel_units', '')!r})" if "R_pixel_size" in cal else "")
        raise ValueError(f"pixel_size (scan step, nm) is required: the py4DSTEM strain map "
                         f"carries no length calibration{has}")
    ref = None
    if reference_region is not None:
        ref = np.asarray(reference_region)
        if ref.shape != shape or ref.dtype != bool:
            raise ValueError(f"reference_region must be a boolean array of shape {shape} "
                             f"(Rx, Ry), got {ref.dtype} of shape {ref.shape}")
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
    with np.errstate(invalid="ignore"):  # py4DSTEM's fill values where mask = 0
        H = gradient_from_reciprocal(swap @ beta @ swap)
    comps = components_from_gradient(H)
    if "mask" in slices:
        comps[:, ~(slices["mask"] != 0)] = np.nan
    comps[:, ~np.isfinite(comps).all(axis=0)] = np.nan
    sf = StrainField.from_components(*comps, scale=scale, units=units)
    cal = info.get("calibration", {})
    record(sf, "load_py4dstem_strain", coordinate_rotation=float(coordinate_rotation),
           frame="image: x = Ry (columns), y = Rx (rows)",
           source=str(source) if isinstance(source, (str, os.PathLike)) else info["source"],
           emdpath=info.get("emdpath"), python_class=info.get("python_class"),
           pixel_size_source=pixel_source,
           qr_rotation_degrees=(float(cal["QR_rotation_degrees"])
                                if "QR_rotation_degrees" in cal else None),
           qr_flip=bool(cal["QR_flip"]) if "QR_flip" in cal else None,
           n_masked=int(np.count_nonzero(np.isnan(comps[0]))),
           reference_mask=ref)
    return sf
