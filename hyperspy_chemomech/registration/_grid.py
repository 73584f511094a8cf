"""Calibrated pixel grids: conversion between pixel indices and (x, y) in nm."""

from typing import NamedTuple

import numpy as np


class Grid(NamedTuple):
    """A uniform image grid.

    Attributes
    ----------
    shape : (int, int)
        (ny, nx) in px.
    scale : (float, float)
        Pixel size (dy, dx) in nm.
    offset : (float, float)
        Calibrated position (y0, x0) of the centre of pixel (0, 0), in nm.
    """

    shape: tuple
    scale: tuple
    offset: tuple

    @property
    def pixel_size(self):
        """Geometric-mean pixel size (nm)."""
        return float(np.sqrt(self.scale[0] * self.scale[1]))

    def to_xy(self, rows, cols):
        """Pixel indices (rows, cols) -> (x, y) in nm."""
        return (self.offset[1] + self.scale[1] * np.asarray(cols, dtype=float),
                self.offset[0] + self.scale[0] * np.asarray(rows, dtype=float))

    def to_pixel(self, x, y):
        """(x, y) in nm -> fractional pixel indices (rows, cols)."""
        return ((np.asarray(y, dtype=float) - self.offset[0]) / self.scale[0],
                (np.asarray(x, dtype=float) - self.offset[1]) / self.scale[1])

    def inside(self, rows, cols):
        """True where fractional pixel indices fall on the grid (pixel footprints included)."""
        ny, nx = self.shape
        return (rows >= -0.5) & (rows <= ny - 0.5) & (cols >= -0.5) & (cols <= nx - 0.5)

    def centres_xy(self, mask=None):
        """(N, 2) array of (x, y) pixel centres in nm, optionally only where ``mask``."""
        if mask is None:
            rows, cols = np.indices(self.shape).reshape(2, -1)
        else:
            rows, cols = np.nonzero(mask)
        x, y = self.to_xy(rows, cols)
        return np.column_stack([x, y])


def apply_matrix(matrix, xy):
    """Map (N, 2) points (x, y) with a 3x3 homogeneous matrix."""
    xy = np.asarray(xy, dtype=float)
    return xy @ matrix[:2, :2].T + matrix[:2, 2]
