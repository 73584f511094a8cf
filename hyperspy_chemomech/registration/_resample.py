"""Resample an image (stack) from one calibrated grid onto another through an affine map.

NaN means "no data": it never leaks into valid pixels through the interpolation
stencil, and the output is NaN wherever the source has no data or does not reach.
Going to a coarser grid averages over each target pixel's footprint (area
averaging) instead of point-sampling, so no aliasing and no lost resolution
information; boolean masks stay boolean (nearest neighbour / majority vote).
"""

import numpy as np
from scipy import ndimage

from ..fields import orthogonal_part, transform_strain_map
from ._grid import apply_matrix

#: fraction of a target pixel that must be covered by valid source data
MIN_VALID_FRACTION = 0.5


def footprint_in_source(src_grid, dst_grid, matrix):
    """Lengths (along target rows, along target cols) of one target pixel, in source px.

    Parameters
    ----------
    src_grid, dst_grid : Grid
    matrix : ndarray (3, 3)
        Maps source (x, y) nm to target (x, y) nm.
    """
    inv = np.linalg.inv(matrix)[:2, :2]
    to_src_px = np.diag([1.0 / src_grid.scale[1], 1.0 / src_grid.scale[0]])
    step_col = to_src_px @ inv @ np.array([dst_grid.scale[1], 0.0])
    step_row = to_src_px @ inv @ np.array([0.0, dst_grid.scale[0]])
    return float(np.hypot(*step_row)), float(np.hypot(*step_col))


def _nearest_fill(data, valid):
    """Replace invalid pixels by their nearest valid neighbour (for spline prefiltering)."""
    if valid.all():
        return data
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return data[tuple(idx)]


def _sample_float(data, valid, rows, cols, order, inside):
    """NaN-aware interpolation of one 2D float image at fractional (rows, cols)."""
    coords = np.array([rows, cols])
    filled = _nearest_fill(data, valid)
    val = ndimage.map_coordinates(filled, coords, order=order, mode="nearest", prefilter=order > 1)
    if not valid.all():
        # fraction of valid data under the bilinear stencil: the outline of the
        # data sits half-way between a valid and an invalid pixel
        w = ndimage.map_coordinates(valid.astype(float), coords, order=1, mode="nearest")
        val[w < MIN_VALID_FRACTION] = np.nan
    val[~inside] = np.nan
    return val


def _sample_bool(data, rows, cols, inside):
    r = np.clip(np.rint(rows), 0, data.shape[0] - 1).astype(np.intp)
    c = np.clip(np.rint(cols), 0, data.shape[1] - 1).astype(np.intp)
    return data[r, c] & inside


def resample(data, src_grid, dst_grid, matrix, order=1, area_average="auto"):
    """Resample ``data`` defined on ``src_grid`` onto ``dst_grid``.

    Parameters
    ----------
    data : ndarray, shape (..., ny, nx)
        Float images (NaN = no data) or a boolean mask; leading axes are looped over.
    src_grid, dst_grid : Grid
        Calibrated source and target grids (nm).
    matrix : ndarray (3, 3)
        Homogeneous map from source (x, y) nm to target (x, y) nm.
    order : int
        Spline order for float data (0-5); boolean data always uses nearest neighbour.
    area_average : "auto" or bool
        Average over each target pixel's footprint; "auto" does it when a target
        pixel spans more than one source pixel along either axis.

    Returns
    -------
    ndarray, shape (..., dst ny, dst nx)
        Float64 (NaN outside the overlap or the data) or bool (False outside).
    """
    data = np.asarray(data)
    is_bool = data.dtype == bool
    if not is_bool:
        data = data.astype(float, copy=False)
    lead = data.shape[:-2]
    flat = data.reshape((-1,) + data.shape[-2:])
    ny, nx = dst_grid.shape

    len_r, len_c = footprint_in_source(src_grid, dst_grid, matrix)
    if area_average == "auto":
        area_average = max(len_r, len_c) > 1.0 + 1e-9
    k_r = max(1, int(np.ceil(len_r - 1e-9))) if area_average else 1
    k_c = max(1, int(np.ceil(len_c - 1e-9))) if area_average else 1
    inv = np.linalg.inv(matrix)

    rr, cc = np.indices((ny, nx), dtype=float)
    out_sum = np.zeros((flat.shape[0], ny, nx))
    out_cnt = np.zeros((flat.shape[0], ny, nx))
    valids = [np.isfinite(img) for img in flat] if not is_bool else None
    # sub-sample positions inside each target pixel (regular k_r x k_c grid)
    for a in range(k_r):
        for b in range(k_c):
            dr = (a + 0.5) / k_r - 0.5
            dc = (b + 0.5) / k_c - 0.5
            x, y = dst_grid.to_xy(rr + dr, cc + dc)
            src = apply_matrix(inv, np.column_stack([x.ravel(), y.ravel()]))
            rows, cols = src_grid.to_pixel(src[:, 0], src[:, 1])
            inside = src_grid.inside(rows, cols)
            for i, img in enumerate(flat):
                if is_bool:
                    v = _sample_bool(img, rows, cols, inside).astype(float)
                    ok = inside
                else:
                    v = _sample_float(img, valids[i], rows, cols, order, inside)
                    ok = np.isfinite(v)
                    v = np.where(ok, v, 0.0)
                out_sum[i] += v.reshape(ny, nx)
                out_cnt[i] += ok.reshape(ny, nx)
    n_sub = k_r * k_c
    if is_bool:
        # majority vote over the covered part; False outside the source grid
        out = (out_cnt >= MIN_VALID_FRACTION * n_sub) & (out_sum >= 0.5 * np.maximum(out_cnt, 1))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out_sum / out_cnt
        out[out_cnt < MIN_VALID_FRACTION * n_sub] = np.nan
    return out.reshape(lead + (ny, nx))


def rotate_strain_components(data, matrix):
    """Express image-frame strain components in the target frame.

    Parameters
    ----------
    data : ndarray (4, ny, nx)
        e11, e22, e12 (tensor shear) and theta (rigid rotation, rad), as
        :class:`~hyperspy_chemomech.signals.StrainField` stores them.
    matrix : ndarray (3, 3)
        The map whose orthogonal part (polar decomposition of the linear part)
        turns the frame; a mirror also reverses the sense of theta.

    Returns
    -------
    ndarray (4, ny, nx)
        ``Q E Q^T`` for the symmetric part, ``det(Q) theta`` for the rotation.
    """
    return transform_strain_map(data, orthogonal_part(matrix))
