"""Calibration and provenance on signals: axis checks, pixel sizes, ``metadata.Chemomech``.

Shared by every layer that makes or reads signals (``signals/``, ``io/``,
``diffraction/``, ``simulate/``, registration's signal face). The functions only use
the signal's ``axes_manager`` and ``metadata`` (duck typing): this module imports no
HyperSpy. Our metadata lives under ``metadata.Chemomech`` so it never collides with
HyperSpy's or other extensions' nodes.
"""

import warnings

import numpy as np

from ._utils import package_version
from .fields import LENGTH_TO_NM

METADATA_ROOT = "Chemomech"


def record(signal, step, **params):
    """Store the parameters of a processing step in ``metadata.Chemomech.<step>``.

    Values must be HyperSpy-serialisable (numbers, strings, arrays, dicts). The
    package version that did the step goes to ``metadata.Chemomech.<step>.version``.
    """
    for key, value in step_record(**params).items():
        signal.metadata.set_item(f"{METADATA_ROOT}.{step}.{key}", value)


def step_record(**params):
    """The node :func:`record` stores for a step, as a dict (to build a signal's metadata at once).

    ``None`` becomes ``"None"`` (HyperSpy's files drop ``None``); the package
    version is added as ``version``.
    """
    return {key: "None" if value is None else value
            for key, value in {"version": package_version(), **params}.items()}


def is_recorded(signal, step):
    """Whether ``metadata.Chemomech.<step>`` exists (cheaper than :func:`recorded`)."""
    return signal.metadata.has_item(f"{METADATA_ROOT}.{step}")


def recorded(signal, step, default=None):
    """Return ``metadata.Chemomech.<step>`` as a dict (or ``default``)."""
    key = f"{METADATA_ROOT}.{step}"
    if not signal.metadata.has_item(key):
        return default
    node = signal.metadata.get_item(key)
    return node.as_dictionary() if hasattr(node, "as_dictionary") else node


def spatial_axes(signal):
    """The (y, x) axes of a 2D-image-like signal, as (y_axis, x_axis)."""
    axes = signal.axes_manager.signal_axes
    if len(axes) != 2:
        raise ValueError(
            f"expected an image signal with 2 signal axes, got {len(axes)}"
        )
    x_ax, y_ax = axes  # HyperSpy orders signal axes (x, y)
    return y_ax, x_ax


def require_calibrated(signal, what="signal", units=tuple(LENGTH_TO_NM)):
    """Raise if the image axes of ``signal`` carry no length calibration.

    A calibration is a non-default unit among ``units`` and a positive, uniform
    scale. HyperSpy's default is ``units = <undefined>`` and ``scale = 1``.
    """
    for ax in spatial_axes(signal):
        unit = str(ax.units) if ax.units is not None else ""
        if unit in ("", "<undefined>", "None") or unit not in units:
            raise ValueError(
                f"{what}: axis {ax.name!r} has no length calibration "
                f"(units={ax.units!r}); set axes_manager[...].scale and .units "
                f"(one of {', '.join(units)})"
            )
        if not getattr(ax, "is_uniform", True) or not np.isfinite(ax.scale) or ax.scale <= 0:
            raise ValueError(f"{what}: axis {ax.name!r} needs a positive uniform scale")


def pixel_size_nm(signal, what="signal"):
    """(dy, dx) pixel size of an image signal in nm, converting common units."""
    require_calibrated(signal, what)
    return tuple(float(ax.scale) * LENGTH_TO_NM[str(ax.units)] for ax in spatial_axes(signal))


def unit_nm(signal, what="signal"):
    """nm per unit of an image signal's axes (both axes must share one length unit)."""
    units = {str(ax.units) for ax in spatial_axes(signal)}
    if len(units) != 1 or next(iter(units)) not in LENGTH_TO_NM:
        raise ValueError(f"{what}: the image axes need one length unit among "
                         f"{', '.join(LENGTH_TO_NM)}, got {sorted(units)}")
    return LENGTH_TO_NM[units.pop()]


def offset_nm(signal, what="signal"):
    """(y0, x0) offset of an image signal's axes in nm."""
    require_calibrated(signal, what)
    return tuple(float(ax.offset) * LENGTH_TO_NM[str(ax.units)] for ax in spatial_axes(signal))


def set_image_axes(signal, scale=1.0, units="nm", offset=(0.0, 0.0), names=("y", "x")):
    """Calibrate the two image axes of ``signal`` (scale may be a number or (dy, dx))."""
    try:
        scale = np.broadcast_to(np.asarray(scale, dtype=float), (2,))
        offset = np.broadcast_to(np.asarray(offset, dtype=float), (2,))
    except (TypeError, ValueError):
        raise ValueError(f"scale and offset must be numbers or (y, x) pairs, got scale={scale!r}, "
                         f"offset={offset!r}") from None
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError(f"the pixel size (scale) must be finite and > 0, got {scale.tolist()}")
    if not np.all(np.isfinite(offset)):
        raise ValueError(f"the offset must be finite, got {offset.tolist()}")
    for ax, s, o, n in zip(spatial_axes(signal), scale, offset, names):
        ax.scale, ax.offset, ax.units, ax.name = float(s), float(o), units, n
    return signal


def axes_nm(axes, what="scan"):
    """Shape, pixel size and offset, each (y, x) in nm, of two HyperSpy axes (x, y).

    Raises ``ValueError`` naming the axis when one carries no length calibration.
    """
    scales, offsets = [], []
    for ax in axes[::-1]:  # HyperSpy orders (x, y); we want (y, x)
        unit = str(ax.units)
        if unit not in LENGTH_TO_NM:
            raise ValueError(
                f"{what} axis {ax.name!r} has no length calibration (units={ax.units!r}); "
                "set its scale and units (e.g. 'nm') first"
            )
        if not getattr(ax, "is_uniform", True) or not ax.scale > 0:
            raise ValueError(f"{what} axis {ax.name!r} needs a positive uniform scale")
        scales.append(float(ax.scale) * LENGTH_TO_NM[unit])
        offsets.append(float(ax.offset) * LENGTH_TO_NM[unit])
    return tuple(int(ax.size) for ax in axes[::-1]), tuple(scales), tuple(offsets)


# -- the crystal frame that travels with a strain field ---------------------------------
#: The crystal frame that travels with a strain field: ``metadata.Chemomech.frame``.
#:
#: A reader (:func:`~hyperspy_chemomech.io.load_correlative_mat`), the diffraction
#: step (:func:`~hyperspy_chemomech.diffraction.strain_from_diffraction`) or the user
#: stores here what is known of the crystal frame of the map; the learning and the
#: decomposition use it when no ``crystal_angle`` is given. Items of the node:
#:
#: ``crystal_angle``
#:     Angle (rad) from the image +x axis to the crystal [100] direction, toward +y,
#:     in [-pi/2, pi/2) (an axis: [100] and [-100] are one).
#: ``axis_100``
#:     ``"x"`` or ``"y"``: the map axis nearest to [100].
#: ``mirrored``
#:     Whether the crystal (a, c) axes are a mirror image of the image (x, y) axes
#:     (``"unknown"`` when nothing says). No parameter of the mechanics needs it
#:     (orthotropic stiffness, diagonal eigenstrain): recorded for the record.
#: ``source``
#:     Where the angle comes from (e.g. ``"file rot"``, ``"data alone"``,
#:     ``"diffraction"``, ``"given"``).
#: ``ambiguous``
#:     True when the data could not tell the candidate frames apart.
#: ``candidates``, ``scores``
#:     The frames that were compared and their compatibility indices (lower is more
#:     compatible), when the frame was chosen from the data.
#:
#: Other items say how the components were read (``reading``) and by whom.
FRAME_NODE = "Chemomech.frame"


def axis_angle(angle):
    """An axis angle folded into [-pi/2, pi/2) (rad)."""
    return float((float(angle) + np.pi / 2) % np.pi - np.pi / 2)


def set_frame(signal, crystal_angle, source, mirrored="unknown", **details):
    """Store the crystal frame of ``signal`` in ``metadata.Chemomech.frame``.

    Parameters
    ----------
    signal : StrainField
    crystal_angle : float
        Angle (rad) from +x to [100], toward +y.
    source : str
        Where it comes from.
    mirrored : bool or "unknown"
    **details
        Further items (numbers, strings, lists); None becomes "None".
    """
    a = axis_angle(crystal_angle)
    node = dict(crystal_angle=a, axis_100="x" if abs(np.cos(a)) >= abs(np.sin(a)) else "y",
                mirrored=mirrored if isinstance(mirrored, str) else bool(mirrored),
                source=str(source))
    node.update({k: ("None" if v is None else v) for k, v in details.items()})
    if signal.metadata.has_item(FRAME_NODE):
        signal.metadata.Chemomech.del_item("frame")
    signal.metadata.set_item(FRAME_NODE, node)
    return node


def get_frame(signal):
    """The stored frame as a dict, or None."""
    if not signal.metadata.has_item(FRAME_NODE):
        return None
    node = signal.metadata.get_item(FRAME_NODE)
    return node.as_dictionary() if hasattr(node, "as_dictionary") else dict(node)


def resolve_crystal_angle(signal, crystal_angle, what="learn_eigenstrain"):
    """The crystal angle to use: the given one, else the stored one, else 0.

    A given angle whose axis differs from the stored one warns, naming both.

    Returns
    -------
    angle : float
        Radians.
    source : str
        ``"given"``, ``"metadata (<source>)"`` or ``"default 0 (no frame stored)"``.
    """
    frame = get_frame(signal)
    stored = None if frame is None else float(frame["crystal_angle"])
    if crystal_angle is None:
        if stored is None:
            return 0.0, "default 0 (no frame stored)"
        return stored, f"metadata ({frame.get('source', 'unknown')})"
    given = float(crystal_angle)
    if not np.isfinite(given):
        raise ValueError(f"crystal_angle must be a finite number of radians, got {crystal_angle!r}")
    if stored is not None and abs(axis_angle(given - stored)) > 1e-6:
        warnings.warn(
            f"{what}: crystal_angle={given:.6g} rad ({np.rad2deg(given):.2f} deg) contradicts the "
            f"frame stored with the strain field, {stored:.6g} rad ({np.rad2deg(stored):.2f} deg, "
            f"from {frame.get('source', 'unknown')}; metadata.Chemomech.frame); using the given "
            "value", UserWarning, stacklevel=3)
    return given, "given"
