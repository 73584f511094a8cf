"""Resolution matching: bring sharp strain maps to the composition map's resolution.

A composition map from X-ray spectro-microscopy is several times blurrier than a
4D-STEM strain map. The model's prediction S[eps0(X_blur)] is then itself at the
X-ray resolution (S commutes with a convolution away from the edges), so the
measured strain is blurred with the same point-spread function (width sigma, px)
before the fit. sigma comes from the user (``composition_resolution``), from the
registration (the X-ray pixel size, a lower bound) or, when nothing says, from
spatially blocked cross-validation, jointly with the degree of the law
(:func:`estimate_resolution`). An estimated sigma is uncertain: its share of the
coefficients' covariance is :func:`add_resolution_covariance`. (The masked blur
and pooling it uses live in :mod:`hyperspy_chemomech.fields`.)
"""

import warnings

import numpy as np
from scipy import ndimage, sparse

from .._utils import progressbar
from ..fields import FWHM_PER_SIGMA
from ._fit import (
    BlockGrams,
    _huber,
    _solve_normal,
    fold_assignment,
    one_standard_error_choice,
    robust_fit,
)

#: Relative uncertainty of a Gaussian-equivalent PSF width (model error of the shape):
#: for 4x pixels plus bilinear resampling the misfit-optimal Gaussian (1.75 px) and
#: the variance-matched one (2.0 px) differ by 13 %.
PSF_SHAPE_UNCERTAINTY = 0.15
#: Relative spread (1 SD) of an estimated Gaussian-equivalent PSF width across data sets
#: that the estimate's block bootstrap (the degree chosen again in every replicate:
#: :func:`estimate_resolution`) does not see: the best-fitting equivalent of a
#: non-Gaussian PSF (pixel integration, resampling) moves with the particle and the
#: pixel grid's phase. Measured on the demo chain with the registration true
#: (``benchmarks/learning_uncertainty.py --psf-spread``): with the composition
#: noise-free (the X-ray map's truth, 16 seeds) sigma spreads by 0.19 px across seeds
#: (mean 2.49 px) against a bootstrap RMS of 0.115 px: sqrt(0.19^2 - 0.115^2) / 2.49 =
#: 0.06; at i0 = 1e8 (12 seeds) 0.118 against 0.078 px on 2.66: 0.03; on the chain at
#: i0 = 1e4 the spread less the bootstrap's and the composition draws' (0.132, 0.117
#: px) is 0.04. Each measurement is uncertain by about +-0.03 (12-40 seeds); 0.08
#: is the largest plus half that: with 0.06 the demo chain's band (40 seeds per dose)
#: covers the same seeds but at i0 = 1e4 / 30 the [001] bias after the correction is
#: 0.251 of the median half-width (0.243 with 0.08; the issue's limit is 0.25), at
#: 1e4 the width 0.90 / 1.00 x 1.96 SD (1.03 / 1.10). The composition's errors, their effect on sigma included (the draws
#: re-estimate it), are the composition bootstrap's, not this term's. Not enough on
#: small windows: on 35 x 70 px Dirichlet windows of 4x-blurred particles (the test's,
#: tests/test_learning.py, seeds 0-11) sigma spreads over 0-2.9 px and the intervals
#: cover both slopes on 4 of 12 (as with the former 0.15 and a bootstrap at the
#: chosen degree).
PSF_WIDTH_SPREAD = 0.08
#: Sigmas below a floor of the candidates (fractions of it) that an estimator free of the
#: floor also considers (:func:`below_floor_sigmas`).
BELOW_FLOOR_FACTORS = (0.0, 0.3, 0.6, 0.8)
#: Candidate PSF sigmas (px) tried when the composition's resolution is unknown.
SIGMA_GRID_PX = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)
#: Huber threshold (robust standard deviations) of the robust fits.
HUBER_C = 1.345
#: Width (X-ray pixels) of the band along the body's edge that the resolution
#: estimate leaves out when the composition was resampled from a coarser X-ray map.
EDGE_BAND_XRAY_PIXELS = 3.0
#: An edge band is left out only if at least this fraction of the body remains.
EDGE_BAND_MIN_KEPT = 0.5


def noise_level(field, mask):
    """Robust estimate of white-noise standard deviation in a 2D map.

    Uses the median absolute value of a discrete Laplacian inside the mask, which
    is insensitive to smooth signal and to a few outliers (dislocation cores).

    Parameters
    ----------
    field : numpy.ndarray, shape (ny, nx)
    mask : numpy.ndarray of bool, shape (ny, nx)

    Returns
    -------
    float
        Noise standard deviation, in the units of ``field``.
    """
    f = np.asarray(field, dtype=float)
    lap = (4 * f[1:-1, 1:-1] - f[:-2, 1:-1] - f[2:, 1:-1] - f[1:-1, :-2] - f[1:-1, 2:])
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    v = lap[inner & np.isfinite(lap)]
    if v.size < 10:
        return float("nan")
    # Laplacian of white noise has std sqrt(20) sigma; MAD -> std factor 1.4826
    return float(1.4826 * np.median(np.abs(v - np.median(v))) / np.sqrt(20.0))


class FourierMaskedBlur:
    """Masked Gaussian of fixed model maps (0 off-body) at many widths, by FFT.

    The same sampled, truncated kernel as
    :func:`~hyperspy_chemomech.fields.masked_gaussian`, applied in
    Fourier space: the transforms of the weighted fields are kept, so each
    further sigma costs one inverse transform.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (ny, nx)
    weight : numpy.ndarray, shape (ny, nx), optional
        Pixel weights (the data's, so a blurred datum and its prediction average
        the same pixels); default 1 in the mask.
    """

    def __init__(self, mask, weight=None):
        w = mask.astype(float) if weight is None else weight
        ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        self._box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
        self._mask = mask
        self._w = w[(...,) + self._box]
        self._ft = {}

    def __call__(self, key, fields, sigma):
        """Blur ``fields`` (..., ny, nx) by ``sigma`` px; ``key`` names them in the cache."""
        box, w = self._box, self._w
        lw = int(3.5 * sigma + 0.5)  # scipy's kernel radius for truncate=3.5
        num = self._blur(key, lambda: np.where(w > 0, np.nan_to_num(fields[(...,) + box]) * w,
                                               0.0), sigma, lw)
        den = self._blur("_weight", lambda: w, sigma, lw)
        out = np.zeros(fields.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[(...,) + box] = np.where(self._mask[box] & (den > 1e-3), num / den, 0.0)
        return out

    def _blur(self, key, make, s, lw):
        """Zero-padded Gaussian (sigma ``s`` px, radius ``lw``) of cached maps, by FFT."""
        from scipy import fft

        ft = self._ft
        if key not in ft or ft[key][0] < lw:  # (re)transform with room for this kernel
            a = make()
            shape = tuple(fft.next_fast_len(n + lw, real=True) for n in a.shape[-2:])
            ft[key] = (lw, fft.rfft2(a, s=shape), a.shape[-2:], shape)
        _, A, (h, w), (ny, nx) = ft[key]
        x = np.arange(-lw, lw + 1)
        k = np.exp(-0.5 * (x / s) ** 2)
        k /= k.sum()

        def spectrum(n, real):
            kk = np.zeros(n)
            kk[:lw + 1], kk[n - lw:] = k[lw:], k[:lw]
            return fft.rfft(kk) if real else fft.fft(kk)

        K = spectrum(ny, False)[:, None] * spectrum(nx, True)[None, :]
        return fft.irfft2(A * K, s=(ny, nx))[..., :h, :w]


def candidate_sigmas(resolution, pixel_nm):
    """PSF sigmas (strain px) to consider, and where they come from.

    Parameters
    ----------
    resolution : ResolutionOptions
    pixel_nm : float
        Strain-grid pixel size (nm).

    Returns
    -------
    sigmas : list of float
        One value when the resolution is given; candidates to estimate from otherwise.
    source : str
    """
    if resolution.composition_resolution is not None:
        return [float(resolution.composition_resolution) / FWHM_PER_SIGMA / pixel_nm], "given"
    grid = SIGMA_GRID_PX if resolution.sigma_grid is None else resolution.sigma_grid
    if resolution.source_pixel_size is None:
        return sorted(float(v) for v in grid), "estimated"
    # the X-ray pixel (integration + bilinear resampling: sigma ~ pixel / 2, less the
    # Gaussian stand-in's shape error) is only a lower bound: the beam focus blurs
    # further. Estimate above it.
    floor = 0.5 * (1 - PSF_SHAPE_UNCERTAINTY) * float(resolution.source_pixel_size) / pixel_nm
    # grid values next to the floor would make a degenerate parabola
    sigmas = sorted({floor} | {float(v) for v in grid if v > floor + 0.25})
    if max(sigmas) < 2 * floor:
        sigmas += [1.5 * floor, 2 * floor]
    return sigmas, "estimated (X-ray pixel from the registration as lower bound)"


def _kernel_sq_sum(sigma):
    if sigma <= 0:
        return 1.0
    n = int(np.ceil(4 * sigma)) * 2 + 1
    d = np.zeros((n, n))
    d[n // 2, n // 2] = 1.0
    k = ndimage.gaussian_filter(d, sigma, mode="constant")
    return float(np.sum(k * k))


def blurred_variance(grid, variance, sigma):
    """Variance (4, ny, nx) of the strain data after the blur of ``sigma`` px, on ``grid``.

    White noise: the blur is a weighted mean, so the variance drops by the sum
    of the squared kernel weights. None stays None.
    """
    if variance is None:
        return None
    var = grid.blur(grid.pool(variance), sigma)
    if sigma > 0:
        var = var * _kernel_sq_sum(sigma)
    return var


def sigma_score(grid, design, sigma, weights, step=0.25):
    """A^T W dy/dsigma: how the weighted normal equations move with the data's blur.

    The model columns do not depend on sigma (the nuisance fields' blur aside,
    which only matters at the cores), so d coef / d sigma = (A^T W A)^-1 times
    this: one central difference of the blurred data, no new design.

    Parameters
    ----------
    grid : PooledGrid
    design : Design
        Rows of the data blurred by ``sigma`` on ``grid``.
    sigma : float
        PSF sigma (fine-grid px).
    weights : numpy.ndarray
        Weights of the rows (the robust fit's).
    step : float
        Half-step (px) of the central difference.
    """
    lo, hi = max(sigma - step, 0.0), sigma + step
    dy = grid.blur(grid.strain, hi) - (grid.blur(grid.strain, lo) if lo > 0 else grid.strain)
    dy = np.nan_to_num(dy.ravel()[design.flat]) / (hi - lo)
    return design.A.T @ (weights * dy)


def add_resolution_covariance(fit, mapping, gram, score, sigma_sd):
    """Add the estimated resolution's share J J^T var(sigma) to ``fit.cov`` (in place).

    Parameters
    ----------
    fit : FitResult
        Of the model ``A @ mapping``.
    mapping : numpy.ndarray, shape (n_columns, n_parameters)
    gram : numpy.ndarray
        A^T W A of the whole design.
    score : numpy.ndarray
        :func:`sigma_score`.
    sigma_sd : float
        Standard deviation of sigma (px).
    """
    J = _solve_normal(mapping.T @ gram @ mapping, mapping.T @ score)
    fit.cov = fit.cov + np.outer(J, J) * sigma_sd ** 2


def huber_loss(z, c=HUBER_C):
    a = np.abs(z)
    return np.where(a <= c, 0.5 * a * a, c * a - 0.5 * c * c)


def parabolic_min(x, y):
    """Grid minimum of y(x), refined by a parabola through it and its neighbours.

    ``y`` may be (..., len(x)) profiles (e.g. bootstrap replicates); returns the
    minima and the grid indices, of shape ``y.shape[:-1]``.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    i = np.argmin(y, axis=-1)
    j = np.clip(i, 1, len(x) - 2) if len(x) >= 3 else i
    x0, x1, x2 = (x[j + k] if len(x) >= 3 else x[i] for k in (-1, 0, 1))
    y0, y1, y2 = (np.take_along_axis(y, (j + k)[..., None], -1)[..., 0] if len(x) >= 3
                  else y[..., 0] for k in (-1, 0, 1))
    # vertex of the parabola through three points (Lagrange form)
    d01, d12, d02 = x0 - x1, x1 - x2, x0 - x2
    a = (y0 / (d01 * d02) - y1 / (d01 * d12) + y2 / (d02 * d12)) if len(x) >= 3 else 0 * y1
    b = (-y0 * (x1 + x2) / (d01 * d02) + y1 * (x0 + x2) / (d01 * d12)
         - y2 * (x0 + x1) / (d02 * d12)) if len(x) >= 3 else 0 * y1
    with np.errstate(invalid="ignore", divide="ignore"):
        vertex = np.clip(-b / (2 * a), x0, x2)
    inner = (i > 0) & (i < len(x) - 1) & (a > 0)
    return np.where(inner, vertex, x[i]), i


def _edge_band_rows(mask, width):
    """The body less a band ``ceil(width)`` px wide along its edge, and that width (px).

    A band that would leave less than ``EDGE_BAND_MIN_KEPT`` of the body is not left
    out (width 0): on a small particle the estimate needs all its pixels more than
    it gains from dropping the edge's bias.
    """
    n = int(np.ceil(width - 1e-9))
    if n > 0:
        rows = ndimage.binary_erosion(mask, iterations=n)
        if rows.sum() >= EDGE_BAND_MIN_KEPT * mask.sum():
            return rows, n
    return mask, 0


def below_floor_sigmas(sigmas):
    """Sigmas (px) below the candidates' lowest, a floor: ``BELOW_FLOOR_FACTORS`` x it.

    0, 0.3, 0.6 and 0.8 x the floor: down to sigma's own bound, 0, at about the
    candidates' spacing (none when the lowest is 0). Where the estimate may sit on the
    floor (the X-ray pixel), these let an estimator free of it show where the data
    would put sigma: the resolution's block bootstrap (:func:`estimate_resolution`)
    and the composition draws' refits.
    """
    lo = float(min(sigmas))
    return [f * lo for f in BELOW_FLOOR_FACTORS] if lo > 0 else []


def estimate_resolution(grid, comps, sigmas, law_columns, show_progressbar, n_boot=300, seed=0,
                        n_folds=5, edge_band=False, xray_pixel=None, floor=False):
    """PSF sigma (px) of the composition relative to the strain map, with its uncertainty.

    Each candidate sigma says "the composition, hence the prediction, is blurred
    by sigma". All candidates are compared against ONE target, the strain blurred
    by T = max(sigmas); candidate sigma's prediction is blurred by the remaining
    sqrt(T^2 - sigma^2). With a common target the noise enters every candidate
    alike, so a robust misfit (Huber loss at one fixed scale) compares them fairly.

    A flexible law can bend to mimic a wrong blur (curvature trades against
    sigma), so the law's degree is chosen with the resolution: spatially blocked
    cross-validation of the held-out Huber loss on every (sigma, degree), the
    simplest degree within one standard error of the best (each degree at its
    best sigma). At that degree the in-sample loss profile over sigma is refined
    by a parabola through the best grid point and its neighbours. Its standard
    deviation comes from a spatial block bootstrap of the whole choice: each
    replicate weighs the blocks by their counts, chooses the degree again from its
    held-out losses, then sigma at that degree (where two degrees are nearly tied and
    trade curvature against blur, the estimate jumps with the choice: on the demo
    chain at i0 = 1e4 a degree other than the map's is chosen in about a third of the
    replicates, and a bootstrap at the chosen degree alone says 0.075 px where the
    estimate spreads by 0.25 px across seeds); to it is added the spread of the
    Gaussian-equivalent width across data sets that no bootstrap within a map sees
    (``PSF_WIDTH_SPREAD``).

    A composition resampled from a coarser X-ray map is unreliable along the
    particle's outline: there the X-ray pixel, its PSF and the resampling mix
    particle with vacuum, and the composition is a ratio of blurred amounts. With
    the X-ray pixel known (``xray_pixel``) the comparison leaves out a band
    ``EDGE_BAND_XRAY_PIXELS`` X-ray pixels wide along the edge (not if that
    would leave less than ``EDGE_BAND_MIN_KEPT`` of the body: 150 x 250 px
    platelets of 4x X-ray pixels keep 74 %, 80 x 120 px ones 53 %). With that band in, on particles
    from ``simulate.realistic_particle`` (Airy PSF, two phases) a law of degree 3
    at too sharp a sigma fitted better than the true linear law at the right one
    (held-out loss 0.584 against 0.646, seed 1) and the Vegard slopes came out up to
    1.9 % high. The band is left out of this choice only: the fit at the chosen
    resolution uses the whole body.

    Parameters
    ----------
    grid : PooledGrid
        The maps, on a grid suited to a blur of ``max(sigmas)``.
    comps : list of int
        Data components fitted.
    sigmas : sequence of float
        Candidate sigmas (fine-grid px).
    law_columns : callable
        ``law_columns(design) -> list`` of column sets, one per candidate degree
        (simplest first).
    edge_band : bool
        Leave out the band along the edge where the blur and a held boundary's
        response do not commute (``boundary="dirichlet"``): ``max(sigmas)`` wide.
    xray_pixel : float, optional
        X-ray pixel (fine-grid px) the composition was resampled from: leave out
        the band of the X-ray map's edge (see above).
    floor : bool
        The lowest candidate is a lower bound (the X-ray pixel's), not a grid point:
        the estimate stays above it, its block bootstrap is that of the estimator
        free of it (candidates :func:`below_floor_sigmas` added). Noise in the
        composition makes the map look sharper than it is; at low X-ray dose the
        estimate sits on the floor, and there the replicates of the bounded estimate
        pile up on it and their spread says nothing of how loosely the data pin sigma
        (on the demo chain at i0 = 1e4 / 30, 15 of 40 seeds on the floor, 9 of them
        with a bootstrap SD of 0-0.08 px, where sigma spreads by 0.41 px across seeds;
        free of the floor 0.24-0.66 px).

    Returns
    -------
    sigma : float
    sigma_sd : float
    table : dict
        ``sigma_px`` candidates, ``loss`` per candidate at the chosen degree,
        ``degree_index`` (into the candidate degrees), ``cv_loss`` (sigma x degree),
        ``target_sigma_px``, ``sd_px`` (= ``sigma_sd``), ``sd_bootstrap_px`` (the
        block bootstrap's part), ``sd_degree_held_px`` (the bootstrap's spread among
        the replicates that chose the map's degree), ``degree_switch_fraction`` (of
        the replicates that chose another), ``edge_band_px`` (fine-grid px left out
        along the edge), ``bootstrap_below_floor`` (the bootstrap free of the floor).
    """
    sig = np.asarray(sigmas, dtype=float)
    n_sig = sig.size
    # below the floor last: the candidates' fits (one IRLS step each, in order) as without
    sig_all = np.r_[sig, below_floor_sigmas(sig) if floor else []]
    target_sigma = float(sig.max())
    target = grid.blur(grid.strain, target_sigma)  # on the grid pooled for the target
    extra_t = grid.blur_model("extra", target_sigma)  # dislocation fields: the data side
    loss_b, cv_b, scale, w = [], [], None, None
    for s in progressbar(sig_all, show_progressbar=show_progressbar,
                         desc="composition resolution", leave=False):
        rest = float(np.sqrt(max(target_sigma * target_sigma - s * s, 0.0)))
        rs = grid.blur_model("responses", rest)
        if w is None:  # rows are the same for every candidate (one target)
            width = max(target_sigma if edge_band else 0.0,
                        EDGE_BAND_XRAY_PIXELS * float(xray_pixel or 0.0))
            rows, band = _edge_band_rows(grid.mask, width / grid.factor)
            design = grid.design(target, rs, comps, rows=rows, extra=extra_t)
            f = robust_fit(design.A, design.y, design.comp, design.group, design.w0,
                           n_components=len(comps), n_iter=3, covariance=False)
            w, scale = f.weights, f.scale
            w0 = np.ones(design.y.size) if design.w0 is None else design.w0
            _, block = np.unique(design.group, return_inverse=True)
            n_blocks = int(block.max()) + 1
            k_folds = int(min(n_folds, n_blocks))
            fold = fold_assignment(n_blocks, k_folds, seed)
            row_fold = fold[block]
            col_sets = law_columns(design)
            row_index = np.arange(design.y.size)
            to_block = sparse.csr_matrix((np.ones(row_index.size), (block, row_index)))
        else:
            design.set_responses(rs)
        grams = BlockGrams.from_design(design.A, design.y, w, design.group)
        # normal equations of the whole set (index 0) and of each training set
        Ht, vt = grams.H.sum(axis=0), grams.v.sum(axis=0)
        onehot = fold == np.arange(k_folds)[:, None]
        Hs = Ht - np.concatenate([np.zeros((1,) + Ht.shape),
                                  np.tensordot(onehot, grams.H, 1)])
        vs = vt - np.concatenate([np.zeros((1,) + vt.shape), onehot @ grams.v])
        # coefficients of every (degree, whole set / training set), zero outside its
        # columns: all predictions in one product
        B = np.zeros((len(col_sets), 1 + k_folds, design.A.shape[1]))
        for d, cols in enumerate(col_sets):
            B[d][:, cols] = _solve_normal(Hs[:, cols][:, :, cols], vs[:, cols])
        P = (design.A @ B.reshape(-1, B.shape[-1]).T).reshape(row_index.size, len(col_sets), -1)
        inv = (1.0 / scale[design.comp])[:, None]
        z = (design.y[:, None] - P[:, :, 0]) * inv                           # (n, degree)
        zc = (design.y[:, None] - P[row_index, :, 1 + row_fold]) * inv       # held-out
        loss_b.append((to_block @ (w0[:, None] * huber_loss(z))).T)  # (degree, block)
        cv_b.append((to_block @ (w0[:, None] * huber_loss(zc))).T)   # held out, (degree, block)
        # one IRLS step per candidate: the next one starts from the Huber weights of
        # the most flexible law (neighbouring candidates differ little)
        w = w0 / scale[design.comp] ** 2 * _huber(z[:, -1], HUBER_C)
    # (n_sigma, n_degree, n_blocks), in-sample and held out; the floor's estimate on the
    # candidates, its bootstrap free of the floor (below)
    free = np.argsort(sig_all)
    loss_free, cv_free = np.array(loss_b)[free], np.array(cv_b)[free]
    loss_b, cv_b = np.array(loss_b)[:n_sig], np.array(cv_b)[:n_sig]
    counts = np.bincount(block, w0)
    onehot = (fold[:, None] == np.arange(k_folds)).astype(float)   # (n_blocks, n_folds)
    per_fold = (cv_b @ onehot) / (counts @ onehot)  # (n_sigma, n_degree, n_folds)
    # degree: simplest within one standard error of the best, each at its best sigma
    best_s = per_fold.mean(axis=2).argmin(axis=0)
    k = one_standard_error_choice(per_fold[best_s, np.arange(len(col_sets))])
    per_block = loss_b[:, k]                  # (n_sigma, n_blocks)
    loss = per_block.sum(axis=1) / counts.sum()
    sigma, i = parabolic_min(sig, loss)
    sigma, i = float(sigma), int(i)
    if i == len(sig) - 1:
        warnings.warn(f"the composition map looks at least as blurred as the largest candidate "
                      f"(sigma = {target_sigma:g} px); give composition_resolution explicitly",
                      RuntimeWarning, stacklevel=4)
    boot, boot_k = _block_bootstrap(sig_all[free], loss_free, cv_free, counts, onehot, n_boot,
                                    seed)
    # the whole estimator redone on resampled blocks: the degree chosen again (a
    # flexible law trades curvature against sigma, so where the choice is unstable
    # the estimate jumps with it), then sigma at that degree. With a floor, free of
    # it: at a boundary the bootstrap of the bounded estimate is inconsistent (its
    # replicates pile up on the floor, Andrews 2000), the free estimator's is not, and
    # as the truth lies above the floor the bounded estimate (the free one's projection
    # onto it) errs by no more than the free one
    sd_boot = float(boot.std(ddof=1)) if boot.size > 1 else 0.0
    # plus the spread across data sets of the Gaussian-equivalent width (PSF_WIDTH_SPREAD)
    sd = float(np.hypot(sd_boot, PSF_WIDTH_SPREAD * sigma))
    return float(sigma), sd, {"sigma_px": sig, "loss": loss, "degree_index": int(k),
                              "cv_loss": per_fold.mean(axis=2), "target_sigma_px": target_sigma,
                              "sd_px": sd, "sd_bootstrap_px": sd_boot, "sd_degree_held_px": float(
                                  boot[boot_k == k].std(ddof=1)) if np.sum(boot_k == k) > 1
                              else float("nan"),
                              "degree_switch_fraction": float(np.mean(boot_k != k)),
                              "edge_band_px": band * grid.factor,
                              "bootstrap_below_floor": bool(sig_all.size > n_sig)}


def _block_bootstrap(sig, loss_b, cv_b, counts, onehot, n_boot, seed):
    """Resolution estimates (n_boot,) and degree indices of a spatial block bootstrap.

    Each replicate weighs the blocks by their bootstrap counts, chooses the degree by
    the one-standard-error rule on its held-out losses per fold (each block keeps
    its fold; a fold left without blocks drops out) and takes sigma from its
    in-sample profile at that degree, as :func:`estimate_resolution` does once.
    """
    rng = np.random.default_rng(seed)
    G = counts.size
    draws = rng.integers(0, G, (n_boot, G)) + G * np.arange(n_boot)[:, None]
    c = np.bincount(draws.ravel(), minlength=n_boot * G).reshape(n_boot, G).astype(float)
    # held-out loss per (replicate, sigma, degree, fold)
    num = np.einsum("bg,sdg,gf->bsdf", c, cv_b, onehot)
    den = (c * counts) @ onehot                                       # (n_boot, n_folds)
    with np.errstate(invalid="ignore", divide="ignore"):
        pf = num / den[:, None, None, :]
    n_f = np.sum(den > 0, axis=1)                                     # folds with blocks
    mean = np.nanmean(pf, axis=3)                                     # (b, sigma, degree)
    best_s = mean.argmin(axis=1)                                      # (b, degree)
    b_ix, d_ix = np.arange(n_boot)[:, None], np.arange(mean.shape[2])[None, :]
    at = pf[b_ix, best_s, d_ix]                                       # (b, degree, fold)
    m = mean[b_ix, best_s, d_ix]
    se = np.nanstd(at, axis=2, ddof=1) / np.sqrt(n_f)[:, None] if at.shape[2] > 1 else 0 * m
    best = m.argmin(axis=1)
    ok = m <= (m[np.arange(n_boot), best] + np.nan_to_num(se[np.arange(n_boot), best]))[:, None]
    k = ok.argmax(axis=1)                                             # simplest within 1 SE
    prof = np.einsum("bg,sbg->bs", c, loss_b[:, k]) / (c @ counts)[:, None]
    return parabolic_min(sig, prof)[0], k
