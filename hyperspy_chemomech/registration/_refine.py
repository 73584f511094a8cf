"""Multiscale refinement of a similarity/affine map by maximising an image metric.

The moving (coarse, X-ray) image is compared with the fixed (fine, 4D-STEM)
image at the moving image's own sample points: the fixed image is blurred to the
moving pixel footprint and interpolated at the mapped moving pixel centres. This
is the physical model of a coarse pixel (an average over its area), costs one
interpolation per moving pixel, and works for any pixel-size ratio. A pyramid
of coarser moving samples (and correspondingly blurred fixed images) widens the
capture range; Powell's derivative-free method optimises each level.
"""

import time

import numpy as np
from scipy import ndimage, optimize

from ._grid import apply_matrix
from ._metrics import PairedMetric
from ._initialise import rotation

#: overlap (fraction of moving sample points on the fixed grid) below which the score is scaled down
MIN_OVERLAP = 0.5
#: weight of the outline term (correlation of the two blurred particle masks) in the score
OUTLINE_WEIGHT = 0.5


class Pose:
    """Transform parametrised around the particle centroids, in optimiser units.

    ``x = c_f + t + L (m - c_m)``, with ``L`` and ``t`` perturbations of a base
    pose. Units are chosen so that one unit moves the particle outline by about one
    pixel of the current pyramid level, which makes all parameters equally scaled.

    Parameters
    ----------
    linear : ndarray (2, 2)
        Base linear part (rotation, scale, mirror, shear).
    shift : ndarray (2,)
        Base shift of the centroid (nm).
    c_m, c_f : ndarray (2,)
        Moving and fixed particle centroids (x, y) in nm.
    model : {"similarity", "affine"}
    """

    def __init__(self, linear, shift, c_m, c_f, model="similarity"):
        self.linear = np.asarray(linear, dtype=float)
        self.shift = np.asarray(shift, dtype=float)
        self.c_m = np.asarray(c_m, dtype=float)
        self.c_f = np.asarray(c_f, dtype=float)
        self.model = model

    @property
    def n_params(self):
        return 4 if self.model == "similarity" else 6

    def perturbed(self, u, pixel, radius):
        """Linear part and shift for optimiser vector ``u`` (level pixel and particle radius in nm)."""
        a = pixel / radius
        if self.model == "similarity":
            lin = np.exp(u[1] * a) * rotation(u[0] * a) @ self.linear
            t = self.shift + np.asarray(u[2:4]) * pixel
        else:
            lin = (np.eye(2) + a * np.array([[u[0], u[1]], [u[2], u[3]]])) @ self.linear
            t = self.shift + np.asarray(u[4:6]) * pixel
        return lin, t

    def matrix(self, u=None, pixel=1.0, radius=1.0):
        """3x3 homogeneous matrix mapping moving (x, y) nm to fixed (x, y) nm."""
        if u is None:
            lin, t = self.linear, self.shift
        else:
            lin, t = self.perturbed(u, pixel, radius)
        m = np.eye(3)
        m[:2, :2] = lin
        m[:2, 2] = self.c_f + t - lin @ self.c_m
        return m

    def moved(self, u, pixel, radius, model=None):
        """A new Pose with the perturbation ``u`` folded into its base."""
        lin, t = self.perturbed(u, pixel, radius)
        return Pose(lin, t, self.c_m, self.c_f, model or self.model)

    @classmethod
    def from_matrix(cls, matrix, c_m, c_f, model="similarity"):
        lin = matrix[:2, :2]
        t = apply_matrix(matrix, c_m[None])[0] - c_f
        return cls(lin, t, c_m, c_f, model)


class Level:
    """One pyramid level: moving sample points and values, blurred fixed image.

    Parameters
    ----------
    moving : ndarray
        Cleaned moving image (background outside its region set to the background level).
    moving_grid : Grid
    region : ndarray of bool
        Moving pixels taking part (the dilated particle mask).
    fixed : ndarray
        Cleaned fixed image.
    fixed_grid : Grid
    fixed_region : ndarray of bool
        Fixed pixels that set the fixed intensity range.
    factor : int
        Moving subsampling factor of this level (1, 2, 4, ...).
    scale_guess : float
        Approximate moving-to-fixed scale, to size the fixed blur.
    metric : str
    masks : (ndarray of bool, ndarray of bool), optional
        Moving and fixed particle masks: their blurred indicators are compared
        too (|r|, weight ``OUTLINE_WEIGHT``), a contrast-free term that holds where
        the two intensities are unrelated (dark-field bend contours against X-ray
        thickness) and that no wrong rotation of an irregular outline matches.
    """

    def __init__(self, moving, moving_grid, region, fixed, fixed_grid, fixed_region,
                 factor, scale_guess, metric, masks=None):
        self.factor = factor
        self.pixel = moving_grid.pixel_size * factor  # nm, moving frame
        # anti-alias the moving image before subsampling it
        sig_m = 0.5 * np.sqrt(factor ** 2 - 1) if factor > 1 else 0.0
        mov = ndimage.gaussian_filter(moving, sig_m, mode="nearest") if sig_m else moving
        sub = np.zeros_like(region)
        sub[::factor, ::factor] = True
        sel = region & sub
        self.points = moving_grid.centres_xy(sel)
        self.values = mov[sel]
        # blur the fixed image to the footprint of one moving sample (box + anti-alias)
        w = moving_grid.pixel_size * scale_guess / fixed_grid.pixel_size
        sig_f = max(0.7, w * np.sqrt(1.0 / 12.0 + sig_m ** 2))
        self.fixed = ndimage.gaussian_filter(fixed, sig_f, mode="nearest")
        self.fixed_grid = fixed_grid
        lo, hi = np.percentile(self.fixed[fixed_region], [1, 99])
        self.score_fn = PairedMetric(self.values, (lo, hi), metric)
        self.outline = None
        if masks is not None:
            m_m = ndimage.gaussian_filter(masks[0].astype(float), max(sig_m, 0.5), mode="nearest")
            self.outline = (m_m[sel] - m_m[sel].mean(),
                            ndimage.gaussian_filter(masks[1].astype(float), sig_f, mode="nearest"))

    @property
    def n_points(self):
        return len(self.values)

    def _pixels(self, matrix):
        p = apply_matrix(matrix, self.points)
        return self.fixed_grid.to_pixel(p[:, 0], p[:, 1])

    def sample(self, matrix, pixels=None):
        """Fixed-image values at the mapped moving points and which of them fall on the grid."""
        rows, cols = self._pixels(matrix) if pixels is None else pixels
        keep = self.fixed_grid.inside(rows, cols)
        vals = ndimage.map_coordinates(self.fixed, [rows, cols], order=1, mode="nearest")
        return vals, keep

    def score(self, matrix, outline=True):
        """Metric in [0, 1] (with the outline term unless ``outline=False``), scaled down
        when the overlap falls below ``MIN_OVERLAP``."""
        rows, cols = self._pixels(matrix)
        vals, keep = self.sample(matrix, (rows, cols))
        frac = keep.mean()
        if frac < 0.05 or keep.sum() < 8:
            return 0.0
        s = self.score_fn(vals, keep)
        if outline and self.outline is not None:
            f = ndimage.map_coordinates(self.outline[1], [rows, cols], order=1, mode="nearest")
            m, f = self.outline[0], f - f.mean()
            den = np.sqrt(np.dot(m, m) * np.dot(f, f))
            s = (s + OUTLINE_WEIGHT * (np.dot(m, f) / den if den > 0 else 0.0)) / (1 + OUTLINE_WEIGHT)
        return s * min(1.0, frac / MIN_OVERLAP)


def build_levels(moving, moving_grid, region, fixed, fixed_grid, fixed_region,
                 scale_guess, metric, min_points=400, max_levels=4, masks=None):
    """Pyramid levels, coarsest first, each with at least ``min_points`` moving samples."""
    n = int(region.sum())
    n_levels = 1
    while n_levels < max_levels and n / 4 ** n_levels >= min_points:
        n_levels += 1
    return [Level(moving, moving_grid, region, fixed, fixed_grid, fixed_region,
                  2 ** k, scale_guess, metric, masks) for k in reversed(range(n_levels))]


def refine(level, pose, radius, penalty=None, maxfev=400, xtol=0.01):
    """Optimise ``pose`` on one level with Powell's method.

    Parameters
    ----------
    level : Level
    pose : Pose
    radius : float
        Particle radius (nm) setting the rotation/scale units.
    penalty : callable, optional
        ``penalty(matrix) -> float`` added to the cost (landmark constraints).
    maxfev : int
    xtol : float
        Tolerance in level pixels.

    Returns
    -------
    (Pose, float, dict)
        Refined pose, its score, and a log entry.
    """
    t0 = time.perf_counter()
    px = level.pixel

    def cost(u):
        m = pose.matrix(u, px, radius)
        c = -level.score(m)
        if penalty is not None:
            c += penalty(m)
        return c

    res = optimize.minimize(cost, np.zeros(pose.n_params), method="Powell",
                            options={"xtol": xtol, "ftol": 1e-6, "maxfev": maxfev})
    new = pose.moved(res.x, px, radius)
    score = level.score(new.matrix())
    entry = {"level_factor": int(level.factor), "n_points": int(level.n_points),
             "score": float(score), "n_evaluations": int(res.nfev),
             "seconds": float(time.perf_counter() - t0)}
    return new, score, entry
