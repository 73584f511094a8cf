"""The HyperSpy face of the registration: grids from signals, resampled signals, overlays."""

import numpy as np

from .._metadata import (
    METADATA_ROOT,
    offset_nm,
    pixel_size_nm,
    record,
    require_calibrated,
    spatial_axes,
)
from ._grid import Grid
from ._resample import resample, rotate_strain_components


def check_image_signal(signal, what):
    """Raise unless ``signal`` is a HyperSpy signal with two calibrated image axes."""
    from hyperspy.signal import BaseSignal

    if not isinstance(signal, BaseSignal):
        raise TypeError(f"{what} must be a HyperSpy signal (e.g. Signal2D), got {type(signal).__name__}")
    if signal.axes_manager.signal_dimension != 2:
        raise ValueError(
            f"{what} must have 2 signal (image) axes, got {signal.axes_manager.signal_dimension}; "
            "use .transpose(signal_axes=2) or as_signal2D"
        )
    require_calibrated(signal, what=what)


def grid_of(signal, what="signal"):
    """The calibrated (nm) :class:`Grid` of a signal's two image axes."""
    check_image_signal(signal, what)
    y_ax, x_ax = spatial_axes(signal)
    dy, dx = pixel_size_nm(signal)
    return Grid((int(y_ax.size), int(x_ax.size)), (dy, dx), offset_nm(signal))


def image_data(signal, what):
    """A float copy of a single image's data, refusing NaN/inf and navigation axes."""
    check_image_signal(signal, what)
    if signal.axes_manager.navigation_dimension:
        raise ValueError(
            f"{what} must be a single image, got navigation shape "
            f"{signal.axes_manager.navigation_shape}; pick one with .inav[...]"
        )
    data = np.array(signal.data, dtype=float)  # copy: never touch the user's data
    bad = ~np.isfinite(data)
    if bad.any():
        raise ValueError(
            f"{what} holds {int(bad.sum())} NaN or inf value(s); registration needs a complete "
            "image (crop, or fill them with the background level)"
        )
    return data


def mask_data(mask, signal, what):
    """'auto' / None pass through; a boolean array or signal becomes a checked array copy."""
    if mask is None or isinstance(mask, str):
        return mask
    arr = np.asarray(getattr(mask, "data", mask))
    shape = signal.axes_manager.signal_shape[::-1]
    if arr.shape != tuple(shape):
        raise ValueError(f"{what} has shape {arr.shape}, its image {tuple(shape)}")
    if arr.dtype != bool:
        raise TypeError(f"{what} must be boolean, got dtype {arr.dtype}")
    return arr.copy()


def apply_transform(tr, signal, onto, order=1):
    """Implementation of :meth:`CorrelativeTransform.apply`."""
    from hyperspy.signal import BaseSignal

    src = grid_of(signal, "signal")
    if not isinstance(onto, BaseSignal):
        raise TypeError(f"onto must be a HyperSpy signal with calibrated image axes, got {type(onto).__name__}")
    dst = grid_of(onto, "onto")
    if not isinstance(order, (int, np.integer)) or not 0 <= order <= 5:
        raise ValueError(f"order must be an integer 0..5, got {order!r}")
    data = np.asarray(signal.data)  # computes a lazy signal
    if data.dtype != bool and not np.issubdtype(data.dtype, np.number):
        raise TypeError(f"cannot resample data of dtype {data.dtype}")
    if np.iscomplexobj(data):
        raise TypeError("complex data: resample the real and imaginary parts separately")
    # HyperSpy keeps the image axes last in the data array
    out = resample(data, src, dst, tr.matrix, order=order)
    # image-frame tensors turn with the frame (StrainField: 4 components e11 e22 e12 theta)
    tensor = getattr(signal, "_signal_type", "") == "strain_field" and data.shape[:-2] == (4,)
    if tensor:
        out = rotate_strain_components(out, tr.matrix)
    if data.dtype != bool and not np.isfinite(out).any():
        raise ValueError("no overlap: the transformed signal does not reach the target grid")
    if data.dtype == bool and not out.any() and data.any():
        raise ValueError("no overlap: the transformed mask does not reach the target grid")

    axes = [ax.get_axis_dictionary() for ax in signal.axes_manager.navigation_axes[::-1]]
    axes += [ax.get_axis_dictionary() for ax in onto.axes_manager.signal_axes[::-1]]
    kwargs = dict(axes=axes, metadata=signal.metadata.as_dictionary(),
                  original_metadata=signal.original_metadata.as_dictionary())
    cls = type(signal)
    if getattr(signal, "_lazy", False):
        result = BaseSignal(out, **kwargs)
        result._assign_subclass()
    else:
        result = cls(out, **kwargs)
    # the resolution the data really has, in target nm (coarsest if resampled twice)
    src_px = float(np.sqrt(abs(np.linalg.det(tr.matrix[:2, :2])))) * src.pixel_size
    prev = signal.metadata.get_item(f"{METADATA_ROOT}.registration.source_pixel_size_nm", None)
    if prev is not None:
        src_px = max(src_px, float(prev) * float(np.sqrt(abs(np.linalg.det(tr.matrix[:2, :2])))))
    record(result, "registration", transform=tr.to_dict(include_log=False),
           source_pixel_size_nm=src_px, order=int(order), strain_components_rotated=bool(tensor),
           target_pixel_size_nm=float(dst.pixel_size))
    return result


def _normalise(img, mask=None):
    v = img[np.isfinite(img)] if mask is None else img[mask & np.isfinite(img)]
    lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    return np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def plot_overlay(tr, moving, fixed, tiles=8):
    """Checkerboard of fixed and registered moving image, and the moving outline on the fixed."""
    import matplotlib.pyplot as plt
    from skimage import feature

    from ._mask import particle_mask

    fix = image_data(fixed, "fixed")
    mov = image_data(moving, "moving")
    src, dst = grid_of(moving, "moving"), grid_of(fixed, "fixed")
    warped = resample(mov, src, dst, tr.matrix)
    ok = np.isfinite(warped)
    # sign-agnostic display: flip the moving contrast when it anti-correlates
    if ok.sum() > 2 and np.corrcoef(warped[ok], fix[ok])[0, 1] < 0:
        warped = -warped
    a, b = _normalise(fix), _normalise(warped)
    ny, nx = fix.shape
    t = max(ny, nx) / max(1, tiles)
    yy, xx = np.indices(fix.shape)
    board = ((yy // t + xx // t) % 2).astype(bool) & ok
    check = np.where(board, b, a)
    try:
        mask = particle_mask(mov, what="moving")
    except ValueError:
        mask = np.ones(mov.shape, dtype=bool)
    outline = feature.canny(np.nan_to_num(resample(mask.astype(float), src, dst, tr.matrix)), sigma=1.0)

    extent = [dst.offset[1] - dst.scale[1] / 2, dst.offset[1] + dst.scale[1] * (nx - 0.5),
              dst.offset[0] + dst.scale[0] * (ny - 0.5), dst.offset[0] - dst.scale[0] / 2]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax1.imshow(check, cmap="gray", extent=extent)
    ax1.set_title("checkerboard: fixed / registered moving")
    ax2.imshow(a, cmap="gray", extent=extent)
    ov = np.ma.masked_where(~outline, outline)
    ax2.imshow(ov, cmap="autumn", extent=extent, interpolation="nearest")
    score = "" if tr.score is None else f" (score {tr.score:.3f})"
    ax2.set_title("moving particle outline on fixed" + score)
    for ax in (ax1, ax2):
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
    return fig
