"""Helpers shared by the signal classes: axis checks and provenance metadata.

Our metadata lives under ``metadata.Chemomech`` so it never collides with
HyperSpy's or other extensions' nodes.
"""

import numpy as np

METADATA_ROOT = "Chemomech"


def record(signal, step, **params):
    """Store the parameters of a processing step in ``metadata.Chemomech.<step>``.

    Values must be HyperSpy-serialisable (numbers, strings, arrays, dicts). The
    package version that did the step goes to ``metadata.Chemomech.<step>.version``.
    """
    from .. import __version__

    params = {"version": __version__, **params}
    for key, value in params.items():
        if value is None:
            value = "None"
        signal.metadata.set_item(f"{METADATA_ROOT}.{step}.{key}", value)


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


def require_calibrated(signal, what="signal", units=("nm", "µm", "um", "Å", "m")):
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
    factors = {"nm": 1.0, "µm": 1e3, "um": 1e3, "Å": 0.1, "m": 1e9}
    require_calibrated(signal, what, units=tuple(factors))
    return tuple(float(ax.scale) * factors[str(ax.units)] for ax in spatial_axes(signal))


def set_image_axes(signal, scale=1.0, units="nm", offset=(0.0, 0.0), names=("y", "x")):
    """Calibrate the two image axes of ``signal`` (scale may be a number or (dy, dx))."""
    scale = np.broadcast_to(np.asarray(scale, dtype=float), (2,))
    offset = np.broadcast_to(np.asarray(offset, dtype=float), (2,))
    for ax, s, o, n in zip(spatial_axes(signal), scale, offset, names):
        ax.scale, ax.offset, ax.units, ax.name = float(s), float(o), units, n
    return signal
