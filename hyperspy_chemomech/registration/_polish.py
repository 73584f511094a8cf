"""Sub-pixel polish: robust least squares with an explicit intensity model and X-ray blur.

Histogram estimates of mutual information are biased at the sub-pixel level
(binning, finite samples), and any metric is biased when the two images are
compared at different resolutions through a nonlinear contrast (an inverted or
gamma X-ray image of a blurred edge is not a function of a differently blurred
edge). The polish stage therefore fits the moving image by an explicit model,

    moving(p) ~ g( mean over the footprint of pixel p of (G_sigma * fixed)(T q) ),

with ``g`` a cubic polynomial (any smooth contrast, either sign), the footprint
of each moving pixel sampled exactly (``k x k`` points of the mapped square, so
rotation and mirror included), ``G_sigma`` a Gaussian for the X-ray beam (its
width re-estimated from the data in every round), and weights that discount
what the other image cannot explain (dark diffraction blobs, chemical
contrast): iteratively reweighted least squares around Powell's method
(outliers beyond 2.5 robust sigmas and their neighbours are dropped, then the
fit is redone).

References
----------
.. [1] A. Roche, G. Malandain, X. Pennec, N. Ayache, "The correlation ratio as a
   new similarity measure for multimodal image registration", MICCAI 1998.
.. [2] P. W. Holland, R. E. Welsch, "Robust regression using iteratively
   reweighted least-squares", Commun. Stat. Theory Methods 6, 813 (1977).
"""

import time

import numpy as np
from scipy import ndimage, optimize

from ._grid import apply_matrix

#: degree of the intensity map g
DEGREE = 3
#: outlier threshold (robust standard deviations)
OUTLIER_CUT = 2.5
#: smallest residual scale, as a fraction of the moving intensity range (1-99 %)
SCALE_FLOOR = 0.01
#: growth of the rejected set (moving px)
GROW = 1


def _design(f, degree=DEGREE):
    f = (f - f.mean()) / (f.std() + 1e-300)
    return np.vander(f, degree + 1)


def weighted_fit(v, f, w):
    """Weighted residual sum of squares of v ~ poly(f), and the residuals."""
    V = _design(f)
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(V * sw[:, None], v * sw, rcond=None)
    r = v - V @ coef
    return float(np.sum(w * r * r)), r


def pose_scale(pose):
    """Isotropic scale of a pose's linear part."""
    return float(np.sqrt(abs(np.linalg.det(pose.linear))))


def outlier_weights(r, w_prev, region, span, cut=OUTLIER_CUT, grow=GROW):
    """0/1 weights: drop residuals beyond ``cut`` robust sigmas and their neighbours.

    What one image shows and the other cannot (diffraction blobs, chemical
    contrast) is spatially extended: its core has large residuals, its tails
    small but systematic ones. Growing the rejected set by ``grow`` pixels of
    the moving grid removes the tails too.

    Parameters
    ----------
    r : ndarray (N,)
        Residuals of the samples.
    w_prev : ndarray (N,)
        Previous weights (only samples with weight > 0 set the robust scale).
    region : ndarray of bool
        Moving-grid pixels of the N samples (row-major order).
    span : float
        Moving intensity range; the residual scale never falls below 1 % of it.
    cut : float
        Rejection threshold in robust standard deviations.
    grow : int
        Dilation of the rejected set (moving px).
    """
    used = w_prev > 0
    s = 1.4826 * np.median(np.abs(r[used] - np.median(r[used])))
    # floor: a near-perfect fit (noise-free data) must not turn model detail into outliers
    s = max(s, SCALE_FLOOR * span)
    if not s > 0:
        return np.ones_like(r)
    bad = np.zeros(region.shape, dtype=bool)
    d = r - np.median(r[used])
    bad[region] = np.abs(d) > cut * s
    if grow:
        bad = ndimage.binary_dilation(bad, iterations=grow)
    return (~bad[region]).astype(float)


class PolishProblem:
    """Moving samples against the fixed image integrated over each moving pixel.

    Each moving pixel is modelled as the mean of the fixed image over its
    footprint (``k x k`` sub-samples of the mapped square, so rotation and
    mirror are exact), after a Gaussian blur standing for the X-ray beam.

    Parameters
    ----------
    points : ndarray (N, 2)
        Moving pixel centres (x, y) nm.
    values : ndarray (N,)
    fixed : ndarray
    fixed_grid : Grid
    moving_scale : (float, float)
        Moving pixel size (dy, dx) in nm.
    n_sub : int
        Sub-samples per moving pixel side.
    """

    def __init__(self, points, values, fixed, fixed_grid, moving_scale, n_sub):
        frac = (np.arange(n_sub) + 0.5) / n_sub - 0.5
        oy, ox = np.meshgrid(frac * moving_scale[0], frac * moving_scale[1], indexing="ij")
        self.n_sub = n_sub * n_sub
        self.points = (points[:, None, :] + np.column_stack([ox.ravel(), oy.ravel()])[None]).reshape(-1, 2)
        self.values = values - values.mean()
        self.fixed_raw = fixed
        self.grid = fixed_grid
        self.weights = np.ones(len(values))
        self.set_blur(0.0)

    def set_blur(self, extra_px):
        """Blur the fixed image by the X-ray beam (Gaussian sigma in fixed px)."""
        self.extra = float(extra_px)
        self.fixed = ndimage.gaussian_filter(self.fixed_raw, max(0.5, self.extra), mode="nearest")

    def residual(self, matrix):
        """(normalised weighted SSE, residuals, on-grid flags) at ``matrix``."""
        p = apply_matrix(matrix, self.points)
        rows, cols = self.grid.to_pixel(p[:, 0], p[:, 1])
        keep = self.grid.inside(rows, cols).reshape(-1, self.n_sub).all(axis=1)
        f = ndimage.map_coordinates(self.fixed, [rows, cols], order=1, mode="nearest")
        f = f.reshape(-1, self.n_sub).mean(axis=1)
        w = self.weights * keep
        if w.sum() < 10:
            return 1.0, np.zeros_like(f), keep
        v = self.values
        sst = np.sum(w * (v - np.sum(w * v) / w.sum()) ** 2)
        sse, r = weighted_fit(v, f, w)
        # points that left the fixed grid count as unexplained (keeps the overlap honest)
        frac = w.sum() / self.weights.sum()
        return sse / sst + (1.0 - frac), r, keep


def polish(pose, region, points, values, fixed, fixed_grid, moving_scale, pixel, radius,
           penalty=None, n_reweight=8, maxfev=400, tol=0.01, max_discarded=1.0,
           min_r2=0.0):
    """Robust sub-pixel refinement of ``pose`` (see the module docstring).

    Parameters
    ----------
    pose : Pose
    region : ndarray of bool
        Moving-grid pixels of the samples (for spatial outlier growth).
    points : ndarray (N, 2)
        Moving sample positions (x, y) nm.
    values : ndarray (N,)
        Moving image values there.
    fixed : ndarray
        Cleaned fixed image.
    fixed_grid : Grid
    moving_scale : (float, float)
        Moving pixel size (dy, dx) in nm.
    pixel : float
        Moving pixel size (nm), the optimiser's unit.
    radius : float
        Particle radius (nm).
    penalty : callable, optional
    n_reweight : int
        Most robust reweighting rounds.
    max_discarded : float
        Skip (or stop after the second round) when the robust fit
        discards more than this fraction of the samples: the intensity model does
        not hold.
    min_r2 : float
        Skip (or stop after the second round) when the robust R^2 of the kept
        samples is below this: the intensity model does not hold.
    tol : float
        Stop reweighting once a round moves the pose by less than this (moving px).
    maxfev : int

    Returns
    -------
    (Pose, dict)
        The refined pose and a log entry (including ``xray_blur_px``, the estimated
        extra Gaussian blur of the moving image, in fixed px).
    """
    t0 = time.perf_counter()
    # sub-samples per moving pixel side: about one per fixed pixel of its footprint
    n_sub = int(np.clip(np.ceil(pose_scale(pose) * max(moving_scale) / fixed_grid.pixel_size), 1, 8))
    prob = PolishProblem(points, values, fixed, fixed_grid, moving_scale, n_sub)
    span = float(np.subtract(*np.percentile(values, [99, 1])))
    nfev = 0

    def cost(u):
        m = pose.matrix(u, pixel, radius)
        c = prob.residual(m)[0]
        return c + (penalty(m) if penalty is not None else 0.0)

    def blur_cost(extra):
        prob.set_blur(extra)
        return prob.residual(pose.matrix())[0]

    w_px = pose_scale(pose) * pixel / fixed_grid.pixel_size  # one moving pixel in fixed px
    _, r, keep = prob.residual(pose.matrix())
    prob.weights = outlier_weights(r, prob.weights * keep, region, span) * keep
    rounds = 0
    fractions = [float(np.mean(prob.weights < 0.5))]
    r2_start = 1.0 - prob.residual(pose.matrix())[0]
    holds = fractions[0] <= max_discarded and r2_start >= min_r2
    for it in range(n_reweight if holds else 0):
        if it >= 1:
            # X-ray beam blur, between none and 1.5 moving pixels (Gaussian sigma)
            res = optimize.minimize_scalar(blur_cost, bounds=(0.0, 1.5 * w_px), method="bounded",
                                           options={"xatol": 0.02 * w_px})
            prob.set_blur(res.x)
        res = optimize.minimize(cost, np.zeros(pose.n_params), method="Powell",
                                options={"xtol": 0.005, "ftol": 1e-9, "maxfev": maxfev})
        nfev += res.nfev
        pose = pose.moved(res.x, pixel, radius)
        _, r, keep = prob.residual(pose.matrix())
        rounds += 1
        if it >= 2 and np.max(np.abs(res.x)) < tol:
            break
        prob.weights = outlier_weights(r, prob.weights * keep, region, span) * keep
        fractions.append(float(np.mean(prob.weights < 0.5)))
        if it >= 1 and (fractions[-1] > max_discarded or 1.0 - prob.residual(pose.matrix())[0] < min_r2):
            break  # the model does not hold on this pair: no use polishing further
    cost_final, _, _ = prob.residual(pose.matrix())
    cov = matrix_covariance(prob, pose, pixel, radius, region)
    entry = {"stage": "polish", "robust_r2": float(1.0 - cost_final),
             "matrix_covariance": cov.tolist(),
             "xray_blur_px": float(prob.extra), "downweighted_fraction": float(np.mean(prob.weights < 0.5)),
             "discarded_per_round": fractions, "robust_r2_start": float(r2_start), "n_points": int(len(values)), "n_rounds": rounds,
             "n_evaluations": int(nfev),
             "seconds": float(time.perf_counter() - t0)}
    return pose, entry


def matrix_covariance(prob, pose, pixel, radius, region=None, step=0.05):
    """Covariance (6, 6) of the first two rows of the polished matrix (row-major; nm).

    Gauss-Newton at the optimum: ``Cov(u) = s^2 (J^T W J)^-1`` with ``J`` the
    derivative of the residuals (intensity map refitted) with respect to the
    pose's parameters by central differences of ``step`` (moving px), ``W`` the
    final robust weights and ``s^2`` their weighted residual variance; then
    through the derivative of the matrix. Residuals correlated between
    neighbouring pixels (blur, what the model misses) carry less information
    than as many independent ones: with ``region`` (the samples' moving-grid
    pixels) the variance is inflated by ``prod (1 + rho) / (1 - rho)`` over the
    two axes, ``rho`` the residuals' lag-one correlation (AR(1) errors).
    """
    n = pose.n_params
    _, r0, keep = prob.residual(pose.matrix())
    w = prob.weights * keep
    J, dM = np.empty((r0.size, n)), np.empty((6, n))
    for k in range(n):
        du = np.zeros(n)
        du[k] = step
        mp, mm = pose.matrix(du, pixel, radius), pose.matrix(-du, pixel, radius)
        J[:, k] = (prob.residual(mp)[1] - prob.residual(mm)[1]) / (2 * step)
        dM[:, k] = (mp[:2] - mm[:2]).ravel() / (2 * step)
    dof = max(w.sum() - n - (DEGREE + 1), 1.0)
    s2 = float(np.sum(w * r0 * r0) / dof)
    H = (J * w[:, None]).T @ J
    cov_u = s2 * np.linalg.pinv(H) * (1.0 if region is None else
                                      _correlation_inflation(r0, w, region))
    return dM @ cov_u @ dM.T


def _correlation_inflation(r, w, region):
    """Variance inflation of a mean of AR(1)-correlated residuals on the moving grid."""
    img = np.full(region.shape, np.nan)
    img[region] = np.where(w > 0, r, np.nan)
    f = 1.0
    for a, b in ((img[:, :-1], img[:, 1:]), (img[:-1], img[1:])):
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 10:
            continue
        rho = float(np.clip(np.corrcoef(a[ok], b[ok])[0, 1], 0.0, 0.95))
        f *= (1 + rho) / (1 - rho)
    return f
