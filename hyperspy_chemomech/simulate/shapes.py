"""Particle shapes on a pixel grid: LiFePO4-like platelets (hexagon, diamond, ellipse)."""

import numpy as np


def _polygon_mask(shape, vertices):
    """Boolean mask of pixel centres inside a convex polygon (vertices in (x, y) px, CCW)."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    inside = np.ones(shape, dtype=bool)
    v = np.asarray(vertices, dtype=float)
    # signed area sets the orientation so the half-plane test works for either order
    area = 0.5 * np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1])
    sign = 1.0 if area > 0 else -1.0
    for (x0, y0), (x1, y1) in zip(v, np.roll(v, -1, axis=0)):
        cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        inside &= sign * cross >= 0
    return inside


def platelet_mask(shape, kind="hexagon", fill=0.8, angle=0.0, aspect=None, center=None):
    """Mask of a platelet-shaped particle.

    Parameters
    ----------
    shape : (int, int)
        Grid shape (ny, nx) in px.
    kind : {"hexagon", "diamond", "ellipse", "rectangle"}
        Outline. LiFePO4 platelets are elongated hexagons.
    fill : float
        Fraction of the grid's extent the particle spans along each axis (0..1).
    angle : float
        In-plane rotation of the outline (rad), from +x toward +y.
    aspect : float, optional
        Width/height of the outline before rotation; default nx/ny.
    center : (float, float), optional
        Centre (y, x) in px; default the grid centre.

    Returns
    -------
    numpy.ndarray of bool, shape (ny, nx)
    """
    ny, nx = (int(n) for n in shape)
    if ny < 3 or nx < 3:
        raise ValueError(f"grid too small for a particle: {shape}")
    if not 0 < fill <= 1:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    cy, cx = ((ny - 1) / 2, (nx - 1) / 2) if center is None else center
    half_w, half_h = fill * nx / 2, fill * ny / 2
    if aspect is not None:
        half_w = half_h * aspect
    c, s = np.cos(angle), np.sin(angle)

    def place(pts):
        pts = np.asarray(pts, dtype=float)
        return np.column_stack([cx + c * pts[:, 0] - s * pts[:, 1],
                                cy + s * pts[:, 0] + c * pts[:, 1]])

    if kind == "hexagon":
        cut = 0.35 * half_w  # truncated tips, as in LFP platelets
        pts = [(-half_w, 0), (-half_w + cut, -half_h), (half_w - cut, -half_h),
               (half_w, 0), (half_w - cut, half_h), (-half_w + cut, half_h)]
        return _polygon_mask((ny, nx), place(pts))
    if kind == "diamond":
        pts = [(-half_w, 0), (0, -half_h), (half_w, 0), (0, half_h)]
        return _polygon_mask((ny, nx), place(pts))
    if kind == "rectangle":
        pts = [(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)]
        return _polygon_mask((ny, nx), place(pts))
    if kind == "ellipse":
        y, x = np.mgrid[0:ny, 0:nx].astype(float)
        xr = c * (x - cx) + s * (y - cy)
        yr = -s * (x - cx) + c * (y - cy)
        return (xr / half_w) ** 2 + (yr / half_h) ** 2 <= 1.0
    raise ValueError(f"unknown particle kind {kind!r}; use hexagon, diamond, ellipse or rectangle")
