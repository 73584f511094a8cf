"""Sub-pixel polish: robust least squares with an explicit intensity model and X-ray blur.

Histogram estimates of mutual information are biased at the sub-pixel level
(binning, finite samples), and any metric is biased when the two images are
compared at different resolutions through a nonlinear contrast (an inverted or
gamma X-ray image of a blurred edge is not a function of a differently blurred
edge). The polish stage therefore fits the moving image by an explicit model,

    moving(p) ~ g( mean over the footprint of pixel p of (G_sigma * fixed)(T q) ),

with ``g`` a quintic polynomial (any smooth contrast, either sign), the footprint
of each moving pixel sampled exactly (``k x k`` points of the mapped square, so
rotation and mirror included), ``G_sigma`` a Gaussian for the X-ray beam (its
width re-estimated from the data in every round), and weights that discount
what the other image cannot explain (dark diffraction blobs, chemical
contrast): iteratively reweighted least squares (outliers beyond 2.5 robust
sigmas and their neighbours are dropped, then the fit is redone).

Each round is a Levenberg-Marquardt (damped Gauss-Newton) minimisation on the
pose parameters and the blur width, with analytic derivatives: the exact
derivatives of the bilinear interpolant of the blurred fixed image at every
footprint sample, chained through the map (``d f / d matrix`` is a weighted sum
of gradient moments over the footprint), the blur's through the heat equation
(``d (G_s * F) / d s = s Laplacian (G_s * F)``); the intensity map ``g`` is
eliminated by variable projection [3]_ (the residual and its Jacobian are
projected off the span of the polynomial design, with Kaufman's
approximation). A few passes over the samples per round, where a
derivative-free search needs hundreds.

The covariance of the polished parameters is the sandwich of the final normal
matrix and the Jacobian's rows coupled through the residuals' spatial
correlation [4]_ (neighbouring pixels' residuals are correlated: blur, what the
model misses), with the residual variance corrected for the parameters fitted
out of the effectively independent samples: see :func:`matrix_covariance`.

References
----------
.. [1] A. Roche, G. Malandain, X. Pennec, N. Ayache, "The correlation ratio as a
   new similarity measure for multimodal image registration", MICCAI 1998.
.. [2] P. W. Holland, R. E. Welsch, "Robust regression using iteratively
   reweighted least-squares", Commun. Stat. Theory Methods 6, 813 (1977).
.. [3] G. H. Golub, V. Pereyra, "Separable nonlinear least squares: the variable
   projection method and its applications", Inverse Problems 19, R1 (2003);
   L. Kaufman, BIT 15, 49 (1975).
.. [4] T. G. Conley, "GMM estimation with cross sectional dependence",
   J. Econometrics 92, 1 (1999); the effective sample size of correlated
   samples: H. E. Daniels, "The statistical theory of the strength of bundles
   of threads", or any text on time series (Bayley & Hammersley 1946).
"""

import time

import numpy as np
from scipy import ndimage

from ._grid import apply_matrix

#: degree of the intensity map g. A cubic leaves a systematic misfit on an inverted or
#: gamma contrast (exp(-mu t)^gamma over the whole thickness range) that is a function
#: of the fixed intensity, so the same on every stretch of the outline: it moves the
#: fitted edge the same way all round, a scale bias (registration benchmark,
#: 360 x 720, seeds 1000-1005: median error 0.305 -> 0.191 px, worst 1.58 -> 0.63 px
#: with a quintic)
DEGREE = 5
#: outlier threshold (robust standard deviations)
OUTLIER_CUT = 2.5
#: smallest residual scale, as a fraction of the moving intensity range (1-99 %)
SCALE_FLOOR = 0.01
#: growth of the rejected set (moving px)
GROW = 1
#: least Gaussian blur of the fixed image (fixed px): the bilinear interpolant's floor
MIN_BLUR_PX = 0.5
#: Levenberg-Marquardt: most iterations per round, step tolerance (moving px at the outline)
MAX_ITER = 25
XTOL = 1e-3
#: blur step (moving px) below which the blur counts as converged
BLUR_XTOL = 0.002
#: footprint sample spacing, in blur sigmas (see footprint_samples)
FOOTPRINT_STEP = 1.5
#: Levenberg-Marquardt: rejected steps (damping raised tenfold each) before a round stops
MAX_REJECTIONS = 6
#: blurred fixed images kept for reuse (a rejected blur step returns to the last one)
BLUR_CACHE = 3
#: sectors of the delete-a-sector jackknife that widens the covariance where the
#: misfit of one region pulls the estimate (0: noise model alone)
N_SECTORS = 12
#: widest reach of the residuals' correlation kernel (moving px, either side)
MAX_BANDWIDTH = 12


def _design(f, degree=None):
    f = (f - f.mean()) / (f.std() + 1e-300)
    return np.vander(f, (DEGREE if degree is None else degree) + 1)


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


def bilinear(image, rows, cols, gradient=False):
    """Bilinear interpolation at fractional pixel indices, edge values beyond the border.

    The same values as ``ndimage.map_coordinates(image, [rows, cols], order=1,
    mode="nearest")``; with ``gradient=True`` also the interpolant's exact
    derivatives ``d/drow`` and ``d/dcol`` (per px; zero along an axis where the
    point lies beyond the border).

    Parameters
    ----------
    image : ndarray (ny, nx)
        At least 2 x 2 px.
    rows, cols : ndarray
        Fractional pixel indices (same shape).
    gradient : bool

    Returns
    -------
    ndarray or (ndarray, ndarray, ndarray)
        Values, or values and the two derivatives.
    """
    ny, nx = image.shape
    if ny < 2 or nx < 2:
        raise ValueError(f"bilinear interpolation needs an image of at least 2 x 2 px, got {image.shape}")
    r = np.clip(rows, 0.0, ny - 1.0)
    c = np.clip(cols, 0.0, nx - 1.0)
    i = np.minimum(r.astype(np.intp), ny - 2)
    j = np.minimum(c.astype(np.intp), nx - 2)
    t, s = r - i, c - j
    k = i * nx + j
    flat = image.ravel()
    a, b, c0, d = flat[k], flat[k + 1], flat[k + nx], flat[k + nx + 1]
    top = a + s * (b - a)
    bottom = c0 + s * (d - c0)
    v = top + t * (bottom - top)
    if not gradient:
        return v
    d_row = np.where(r == rows, bottom - top, 0.0)
    d_col = np.where(c == cols, (b - a) + t * ((d - c0) - (b - a)), 0.0)
    return v, d_row, d_col


def matrix_derivative(pose, pixel, radius, step=1e-4):
    """(6, n) derivative of the first two rows of ``pose.matrix(u)`` (row-major) at ``u = 0``."""
    n = pose.n_params
    dM = np.empty((6, n))
    for k in range(n):
        du = np.zeros(n)
        du[k] = step
        dM[:, k] = (pose.matrix(du, pixel, radius)[:2] - pose.matrix(-du, pixel, radius)[:2]).ravel() / (2 * step)
    return dM


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
        self.centres = np.asarray(points, dtype=float)
        self.moving_scale = moving_scale
        self.values = values - values.mean()
        self.fixed_raw = fixed
        self.origin, self._bounds = (0, 0), None
        self.grid = fixed_grid
        self.weights = np.ones(len(values))
        self.set_subsamples(n_sub)
        self.set_blur(0.0)

    def set_subsamples(self, n_sub):
        """Sample each moving pixel's footprint by ``n_sub x n_sub`` points."""
        frac = (np.arange(n_sub) + 0.5) / n_sub - 0.5
        oy, ox = np.meshgrid(frac * self.moving_scale[0], frac * self.moving_scale[1], indexing="ij")
        self.n_side = int(n_sub)
        self.n_sub = n_sub * n_sub
        self.points = (self.centres[:, None, :] + np.column_stack([ox.ravel(), oy.ravel()])[None]).reshape(-1, 2)

    def crop(self, matrix, margin_px):
        """Keep only the fixed image within ``margin_px`` of the samples mapped by ``matrix``.

        Filtering and sampling then cost the particle's bounding box, not the
        whole image; samples that leave the crop count as off the grid.
        """
        rows, cols, _ = self._mapped(matrix)
        ny, nx = self.grid.shape
        r0 = int(max(0, np.floor(rows.min() - margin_px)))
        r1 = int(min(ny, np.ceil(rows.max() + margin_px) + 1))
        c0 = int(max(0, np.floor(cols.min() - margin_px)))
        c1 = int(min(nx, np.ceil(cols.max() + margin_px) + 1))
        if r1 - r0 < 2 or c1 - c0 < 2:
            return
        if self._bounds is not None or (r0, c0, r1, c1) == (0, 0, ny, nx):
            return  # cropped already, or nothing to crop
        full = self.fixed_raw
        self.fixed_raw = full[r0:r1, c0:c1]
        self.origin = (r0, c0)
        # a side cut inside the image ends at the last kept pixel; the image's own edges
        # keep the footprint's half pixel
        self._bounds = (-0.5 if r0 == 0 else 0.0, r1 - r0 - (0.5 if r1 == ny else 1.0),
                        -0.5 if c0 == 0 else 0.0, c1 - c0 - (0.5 if c1 == nx else 1.0))
        self.set_blur(self.extra)

    def set_blur(self, extra_px):
        """Blur the fixed image by the X-ray beam (Gaussian sigma in fixed px, at least 0.5)."""
        self.extra = float(extra_px)
        cache = self.__dict__.setdefault("_blurred", {})
        key = (self.sigma, id(self.fixed_raw))
        if key not in cache:
            if len(cache) >= BLUR_CACHE:
                cache.pop(next(iter(cache)))
            cache[key] = ndimage.gaussian_filter(self.fixed_raw, self.sigma, mode="nearest")
        self.fixed = cache[key]

    @property
    def sigma(self):
        """The Gaussian sigma applied (fixed px)."""
        return max(MIN_BLUR_PX, self.extra)

    def _mapped(self, matrix):
        """Fractional indices into the (cropped) fixed image and the on-grid flags."""
        p = apply_matrix(matrix, self.points)
        rows, cols = self.grid.to_pixel(p[:, 0], p[:, 1])
        inside = self.grid.inside(rows, cols)
        rows, cols = rows - self.origin[0], cols - self.origin[1]
        if self._bounds is not None:
            lo_r, hi_r, lo_c, hi_c = self._bounds
            inside &= (rows >= lo_r) & (rows <= hi_r) & (cols >= lo_c) & (cols <= hi_c)
        keep = inside.reshape(-1, self.n_sub).all(axis=1)
        return rows, cols, keep

    def _mean(self, a):
        return a.reshape(-1, self.n_sub).mean(axis=1)

    def residual(self, matrix):
        """(normalised weighted SSE, residuals, on-grid flags) at ``matrix``."""
        rows, cols, keep = self._mapped(matrix)
        f = self._mean(ndimage.map_coordinates(self.fixed, [rows, cols], order=1, mode="nearest"))
        w = self.weights * keep
        if w.sum() < 10:
            return 1.0, np.zeros_like(f), keep
        v = self.values
        sst = np.sum(w * (v - np.sum(w * v) / w.sum()) ** 2)
        sse, r = weighted_fit(v, f, w)
        # points that left the fixed grid count as unexplained (keeps the overlap honest)
        frac = w.sum() / self.weights.sum()
        return sse / sst + (1.0 - frac), r, keep

    def linearise(self, matrix, dM, blur=False):
        """Residuals and their Jacobian at ``matrix``, the intensity map projected out.

        Parameters
        ----------
        matrix : ndarray (3, 3)
        dM : ndarray (6, n)
            Derivative of the matrix's first two rows (row-major) with respect to the
            parameters.
        blur : bool
            Append the derivative with respect to the blur sigma (fixed px).

        Returns
        -------
        dict
            ``cost`` (as :meth:`residual`), ``r`` (N,) residuals, ``rw`` and ``J``
            (N, n [+ 1]): the weighted residuals ``sqrt(w) r`` and their derivative,
            ``w`` the weights (on-grid flags included), ``sst``, ``keep``.
        """
        rows, cols, keep = self._mapped(matrix)
        f_s, d_row, d_col = bilinear(self.fixed, rows, cols, gradient=True)
        f = self._mean(f_s)
        w = self.weights * keep
        if w.sum() < 10:
            return None
        # gradient moments over each footprint: df / d(matrix rows) = mean(grad (x) (q, 1))
        gx, gy = d_col / self.grid.scale[1], d_row / self.grid.scale[0]
        qx, qy = self.points[:, 0], self.points[:, 1]
        mom = np.column_stack([self._mean(gx * qx), self._mean(gx * qy), self._mean(gx),
                               self._mean(gy * qx), self._mean(gy * qy), self._mean(gy)])
        dfdu = mom @ dM
        if blur:
            lap = ndimage.laplace(self.fixed, mode="nearest")
            dfdu = np.column_stack([dfdu, self.sigma * self._mean(bilinear(lap, rows, cols))])
        v = self.values
        sw = np.sqrt(w)
        V = _design(f)
        Q, R = np.linalg.qr(V * sw[:, None])
        coef = np.linalg.solve(R, Q.T @ (v * sw)) if np.all(np.abs(np.diag(R)) > 1e-12) else \
            np.linalg.lstsq(V * sw[:, None], v * sw, rcond=None)[0]
        r = v - V @ coef
        # g'(f): derivative of the fitted polynomial (in the standardised variable)
        z_scale = f.std() + 1e-300
        z = (f - f.mean()) / z_scale
        deg = V.shape[1] - 1
        dg = sum((deg - k) * coef[k] * z ** (deg - k - 1) for k in range(deg)) / z_scale
        J = -(sw * dg)[:, None] * dfdu
        J -= Q @ (Q.T @ J)  # variable projection (Kaufman)
        sst = float(np.sum(w * (v - np.sum(w * v) / w.sum()) ** 2))
        frac = w.sum() / self.weights.sum()
        return {"cost": float(np.sum(w * r * r)) / sst + (1.0 - frac), "r": r, "rw": sw * r, "J": J,
                "w": w, "sst": sst, "keep": keep}


def _penalty_terms(penalty, pose, pixel, radius, step=0.01):
    """Value, gradient and Hessian of ``penalty(matrix(u))`` at ``u = 0`` (central differences)."""
    n = pose.n_params
    if penalty is None:
        return 0.0, np.zeros(n), np.zeros((n, n))

    def p(u):
        return penalty(pose.matrix(u, pixel, radius))

    e = np.eye(n) * step
    p0 = p(np.zeros(n))
    g = np.array([(p(e[k]) - p(-e[k])) / (2 * step) for k in range(n)])
    H = np.empty((n, n))
    for k in range(n):
        H[k, k] = (p(e[k]) - 2 * p0 + p(-e[k])) / step ** 2
        for m in range(k):
            H[k, m] = H[m, k] = (p(e[k] + e[m]) - p(e[k] - e[m]) - p(-e[k] + e[m])
                                 + p(-e[k] - e[m])) / (4 * step ** 2)
    return p0, g, H


def _small(delta, n, xtol, blur_xtol):
    return np.max(np.abs(delta[:n])) < xtol and (len(delta) == n or abs(delta[n]) < blur_xtol)


def minimise(prob, pose, pixel, radius, penalty=None, blur_bounds=None, max_iter=MAX_ITER,
             xtol=XTOL, blur_xtol=0.01):
    """Levenberg-Marquardt on the pose (and the blur sigma when ``blur_bounds`` is given).

    Minimises ``prob.residual(matrix)[0] + penalty(matrix)`` with the analytic
    Jacobian of :meth:`PolishProblem.linearise`, the weights held.

    Parameters
    ----------
    prob : PolishProblem
    pose : Pose
    pixel, radius : float
        Moving pixel size and particle radius (nm): the pose's parameter units.
    penalty : callable, optional
    blur_bounds : (float, float), optional
        Fit the blur sigma (fixed px) within these bounds.
    max_iter : int
    xtol : float
        Stop when a step moves every pose parameter by less than this (moving px)
        and the blur by less than ``blur_xtol`` (fixed px), or when the step's
        expected decrease of the cost is below 1e-9 of it.
    blur_xtol : float

    Returns
    -------
    (Pose, dict)
        The pose and ``{"n_iterations", "n_evaluations", "step"}`` (``step`` the
        largest total parameter change, moving px).
    """
    n = pose.n_params
    fit_blur = blur_bounds is not None
    if fit_blur:
        lo, hi = blur_bounds
        prob.set_blur(float(np.clip(prob.sigma, lo, hi)))
    lam, n_eval, total = 1e-3, 0, np.zeros(n + fit_blur)
    it = 0
    for it in range(1, max_iter + 1):
        lin = prob.linearise(pose.matrix(), matrix_derivative(pose, pixel, radius), fit_blur)
        n_eval += 1
        if lin is None:
            break
        p0, gp, Hp = _penalty_terms(penalty, pose, pixel, radius)
        J, sst = lin["J"], lin["sst"]
        # quadratic model of the cost: 0.5 d^T H d + g^T d
        H = 2.0 * J.T @ J / sst
        g = 2.0 * J.T @ lin["rw"] / sst
        H[:n, :n] += Hp
        g[:n] += gp
        c0 = lin["cost"] + p0
        free = np.ones(len(g), dtype=bool)
        if fit_blur:
            # a blur at a bound that the gradient pushes further out is held there
            s = prob.sigma
            if (s <= lo and g[-1] > 0) or (s >= hi and g[-1] < 0):
                free[-1] = False
        Hf, gf = H[np.ix_(free, free)], g[free]
        D = np.maximum(np.diag(Hf), 1e-12 * max(np.max(np.diag(Hf)), 1e-300))
        accepted = False
        for _ in range(MAX_REJECTIONS):
            try:
                step = np.linalg.solve(Hf + lam * np.diag(D), -gf)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            delta = np.zeros(len(g))
            delta[free] = step
            gain = -(gf @ step + 0.5 * step @ Hf @ step)  # decrease the quadratic model expects
            if _small(delta, n, xtol, blur_xtol) or gain < 1e-9 * c0:
                break  # converged (or, damped, no step left worth taking)
            sigma_old = prob.sigma
            if fit_blur and free[-1]:
                prob.set_blur(float(np.clip(sigma_old + delta[-1], lo, hi)))
                delta[-1] = prob.sigma - sigma_old
            trial = pose.moved(delta[:n], pixel, radius)
            m = trial.matrix()
            c1 = prob.residual(m)[0] + (penalty(m) if penalty is not None else 0.0)
            n_eval += 1
            if c1 <= c0:
                pose, accepted = trial, True
                total += delta
                lam = max(lam / 10.0, 1e-9)
                break
            if fit_blur:
                prob.set_blur(sigma_old)
            lam *= 10.0
        if not accepted or _small(delta, n, xtol, blur_xtol):
            break
    return pose, {"n_iterations": it, "n_evaluations": n_eval,
                  "step": float(np.max(np.abs(total[:n]))) if n else 0.0}


def polish(pose, region, points, values, fixed, fixed_grid, moving_scale, pixel, radius,
           penalty=None, n_reweight=8, tol=0.01, max_discarded=1.0, min_r2=0.0):
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

    Returns
    -------
    (Pose, dict)
        The refined pose and a log entry (including ``xray_blur_px``, the estimated
        extra Gaussian blur of the moving image, in fixed px, and
        ``matrix_covariance``, see :func:`matrix_covariance`).
    """
    t0 = time.perf_counter()
    # sub-samples per moving pixel side: about one per fixed pixel of its footprint
    n_sub = footprint_samples(pose, moving_scale, fixed_grid, MIN_BLUR_PX)
    prob = PolishProblem(points, values, fixed, fixed_grid, moving_scale, n_sub)
    span = float(np.subtract(*np.percentile(values, [99, 1])))
    nfev, n_iter = 0, 0

    w_px = pose_scale(pose) * pixel / fixed_grid.pixel_size  # one moving pixel in fixed px
    # X-ray beam blur, between none and 1.5 moving pixels (Gaussian sigma)
    blur_bounds = (MIN_BLUR_PX, max(MIN_BLUR_PX, 1.5 * w_px))
    # the polish moves the pose by pixels at most: the fixed image beyond reach of the
    # blur kernel around the mapped samples never enters
    prob.crop(pose.matrix(), 4.0 * blur_bounds[1] + 3.0 * w_px + 8.0)
    _, r, keep = prob.residual(pose.matrix())
    prob.weights = outlier_weights(r, prob.weights * keep, region, span) * keep
    rounds = 0
    fractions = [float(np.mean(prob.weights < 0.5))]
    r2_start = 1.0 - prob.residual(pose.matrix())[0]
    holds = fractions[0] <= max_discarded and r2_start >= min_r2
    for it in range(n_reweight if holds else 0):
        k = footprint_samples(pose, moving_scale, fixed_grid, prob.sigma)
        if k != prob.n_side:
            prob.set_subsamples(k)
        pose, info = minimise(prob, pose, pixel, radius, penalty,
                              blur_bounds=blur_bounds if it >= 1 else None,
                              blur_xtol=BLUR_XTOL * w_px)
        nfev += info["n_evaluations"]
        n_iter += info["n_iterations"]
        _, r, keep = prob.residual(pose.matrix())
        rounds += 1
        if it >= 2 and info["step"] < tol:
            break
        prob.weights = outlier_weights(r, prob.weights * keep, region, span) * keep
        fractions.append(float(np.mean(prob.weights < 0.5)))
        if it >= 1 and (fractions[-1] > max_discarded or 1.0 - prob.residual(pose.matrix())[0] < min_r2):
            break  # the model does not hold on this pair: no use polishing further
    cost_final, _, _ = prob.residual(pose.matrix())
    cov = matrix_covariance(prob, pose, pixel, radius, region, penalty=penalty,
                            blur=rounds >= 2)
    entry = {"stage": "polish", "robust_r2": float(1.0 - cost_final),
             # None where the fit has too few samples left to say (CorrelativeTransform.covariance: None)
             "matrix_covariance": cov.tolist() if np.all(np.isfinite(cov)) else None,
             "xray_blur_px": float(prob.extra), "downweighted_fraction": float(np.mean(prob.weights < 0.5)),
             "discarded_per_round": fractions, "robust_r2_start": float(r2_start), "n_points": int(len(values)),
             "n_rounds": rounds, "n_iterations": int(n_iter), "n_evaluations": int(nfev),
             "seconds": float(time.perf_counter() - t0)}
    return pose, entry


def footprint_samples(pose, moving_scale, fixed_grid, sigma_px):
    """Sub-samples per moving pixel side: one per fixed pixel of the footprint, or one per
    ``FOOTPRINT_STEP`` blur sigmas once that is wider (at most 8).

    The midpoint rule over the footprint of a Gaussian-blurred image with sample
    spacing ``h`` errs by about ``exp(-2 pi^2 sigma^2 / h^2)`` of the image's
    contrast: 1.6e-4 at ``h = 1.5 sigma``; one sample per fixed pixel at the
    least blur (0.5 px, ``h = 2 sigma``) already allows 7e-3."""
    step = max(1.0, FOOTPRINT_STEP * float(sigma_px))
    return int(np.clip(np.ceil(pose_scale(pose) * max(moving_scale) / fixed_grid.pixel_size / step), 1, 8))


def matrix_covariance(prob, pose, pixel, radius, region=None, penalty=None, blur=False):
    """Covariance (6, 6) of the first two rows of the polished matrix (row-major; nm).

    The sandwich ``A^-1 (J^T Sigma J) A^-1`` of the polish's least squares at its
    optimum: ``J`` the analytic, intensity-projected Jacobian of
    :meth:`PolishProblem.linearise` (weighted by the final robust weights) with
    respect to the pose parameters, and to the blur sigma when ``blur`` (then
    marginalised); ``A = J^T J`` (the landmark penalty's curvature added as prior
    information); ``Sigma`` the residuals' covariance. With ``region`` (the
    samples' moving-grid pixels) the residuals are taken as spatially correlated,
    ``Sigma_ij = s^2 rho(i - j)`` with a Gaussian correlation ``rho`` whose
    lengths along the two axes follow from the residuals' lag-one correlations
    (:func:`residual_correlation`; a short-lag estimate, little biased by the
    fit, where longer lags of the fitted residuals are pulled negative); and the
    residual variance ``s^2`` is corrected for the degrees of freedom the fit
    takes out of ``N_eff`` effectively independent samples,
    ``N_eff / (N_eff - p)``, ``N_eff = N / mean_i sum_j rho(i - j)`` over the
    samples, ``p`` the pose, blur and intensity-map parameters: with few
    effectively independent samples the fit absorbs much of the noise in the
    very directions that matter. Without ``region``: white residuals.

    With ``region``, the noise covariance is then widened, direction by
    direction, to the delete-a-sector jackknife's (:func:`sector_jackknife`,
    ``N_SECTORS`` angular sectors) where that is wider: the residuals carry what
    the model misses (a diffraction blob on the outline) only partly, and its pull
    on the estimate shows when its region is left out. Then through the
    derivative of the matrix.

    On the registration benchmark's synthetic pairs the RMS of (error /
    predicted sigma) for rotation, log scale, centroid shift x, y was 0.9, 2.0,
    1.4, 1.6 (90 x 180, seeds 1000-1009; the noise model alone 1.5-2.9, the
    former white-residual estimate with an AR(1) factor 1.7-2.9), 1.3, 0.6, 1.6,
    1.3 (seeds 2000-2009) and 0.9, 3.4, 1.8, 1.2 (360 x 720, seeds 1000-1005)
    with the former cubic intensity map, whose misfit of a steep contrast biased
    the scale; with the quintic 1.15, 0.85, 1.33, 1.50 (360 x 720, seeds
    1000-1005); on the measured pair's random warps, see
    ``CorrelativeTransform.covariance``.
    """
    n = pose.n_params
    dM = matrix_derivative(pose, pixel, radius)
    lin = prob.linearise(pose.matrix(), dM, blur)
    if lin is None:
        return np.full((6, 6), np.nan)
    J, rw, w = lin["J"], lin["rw"], lin["w"]
    A = J.T @ J
    if penalty is not None:
        A[:n, :n] += 0.5 * lin["sst"] * _penalty_terms(penalty, pose, pixel, radius)[2]
    used = w > 0
    n_used = max(float(used.sum()), 1.0)
    s2 = float(np.sum(rw * rw)) / n_used
    p = J.shape[1] + DEGREE + 1
    if region is None:
        B, n_eff = s2 * A, n_used
    else:
        kernel = residual_correlation(lin["r"], w, region)
        img = np.zeros(region.shape + (J.shape[1],))
        img[region] = J
        smooth = np.stack([ndimage.correlate(img[..., k], kernel, mode="constant")
                           for k in range(J.shape[1])], -1)
        B = s2 * np.einsum("ijk,ijl->kl", img, smooth)
        B = 0.5 * (B + B.T)
        ind = np.zeros(region.shape)
        ind[region] = used
        tau = ndimage.correlate(ind, kernel, mode="constant")[region][used]
        n_eff = n_used / max(float(tau.mean()), 1.0)
    dof = n_eff / max(n_eff - p, 1.0)
    Ai = np.linalg.pinv(A)
    cov_full = dof * Ai @ B @ Ai
    if region is not None and N_SECTORS:
        cov_full = sector_jackknife(J, rw, region, A, N_SECTORS, combine=cov_full)
    cov_u = cov_full[:n, :n]
    cov_u = 0.5 * (cov_u + cov_u.T)
    return dM @ cov_u @ dM.T


def sector_jackknife(J, rw, region, A, n_sectors=12, combine=None):
    """Delete-a-sector jackknife covariance of the linearised least squares.

    The samples are split into ``n_sectors`` equal angles about their centroid on
    the moving grid; each is left out in turn and the normal equations re-solved
    (``d_b = (A - A_b)^-1 J_b^T r_b``, the full-sample gradient being zero at the
    optimum). What one region of the image pulls (a diffraction blob on the
    outline, a stretch of edge the model misses) moves the estimate when that
    region is left out, which no noise model of the residuals sees.
    """
    rows, cols = np.nonzero(region)
    ang = np.arctan2(rows - rows.mean(), cols - cols.mean())
    lab = np.minimum(((ang + np.pi) / (2 * np.pi) * n_sectors).astype(int), n_sectors - 1)
    ds = []
    for b in range(n_sectors):
        sel = lab == b
        if not sel.any():
            continue
        Jb = J[sel]
        try:
            ds.append(np.linalg.solve(A - Jb.T @ Jb, Jb.T @ rw[sel]))
        except np.linalg.LinAlgError:
            continue
    ds = np.array(ds)
    k = len(ds)
    if k < 3:
        return combine
    d = ds - ds.mean(axis=0)
    cov = (k - 1) / k * d.T @ d
    if combine is None:
        return cov
    # the larger of the two, direction by direction (in the metric of the first)
    if not np.all(np.linalg.eigvalsh(combine) > 0):
        return combine + cov
    L = np.linalg.cholesky(combine)
    Li = np.linalg.inv(L)
    ev, V = np.linalg.eigh(Li @ cov @ Li.T)
    return L @ V @ np.diag(np.maximum(ev, 1.0)) @ V.T @ L.T


def residual_correlation(r, w, region):
    """Gaussian correlation kernel of the residuals on the moving grid.

    ``rho(dy, dx) = exp(-dy^2 / (2 l_y^2) - dx^2 / (2 l_x^2))`` with
    ``l^2 = -1 / (2 ln rho_1)``, ``rho_1`` the lag-one correlation along each
    axis (clipped to [0, 0.95]); the kernel spans ``3 l`` (at most
    ``MAX_BANDWIDTH`` px) on either side.
    """
    img = np.full(region.shape, np.nan)
    img[region] = np.where(w > 0, r, np.nan)
    axes = []
    for a, b in ((img[:-1], img[1:]), (img[:, :-1], img[:, 1:])):
        ok = np.isfinite(a) & np.isfinite(b)
        rho = float(np.clip(np.corrcoef(a[ok], b[ok])[0, 1], 0.0, 0.95)) if ok.sum() >= 10 else 0.0
        ell2 = -0.5 / np.log(rho) if rho > 1e-3 else 0.0
        half = int(min(MAX_BANDWIDTH, np.ceil(3.0 * np.sqrt(ell2))))
        d = np.arange(-half, half + 1, dtype=float)
        axes.append(np.exp(-d ** 2 / (2 * ell2)) if ell2 > 0 else (d == 0).astype(float))
    return np.outer(*axes)
