"""Errors in the composition map (and its registration) carried into the law.

The law is learned from X as measured, ``X_obs = X + e``: noise in X widens the
spread of the coefficients and, as in any errors-in-variables problem,
attenuates them (the responses S[phi(X_obs)] carry S[phi(X_obs) - phi(X)],
correlated with the design). Both are handled by simulation on the fit as made:

- parametric bootstrap: errors ``e*`` drawn as the real ones were made (on the
  X-ray grid, through the X-ray chain: Poisson noise of the frames, the I0 and
  drift estimates' errors, the unmixing; then resampled onto the strain grid by
  the same transform, so that they are correlated as the real errors are; or
  the composition resampled through transforms drawn from the registration's
  covariance), in antithetic pairs, the responses re-solved with the cached
  factorisation and the law refitted at the fit's degree and robust weights
  (its resolution re-estimated when the fit estimated it);
- SIMEX (Cook & Stefanski 1994): the same at added error variances
  ``lambda * var(e)``, the coefficients extrapolated (linearly in lambda) to
  ``lambda = -1``, no error. The corrected estimator is a fixed linear
  combination of fits of one data set, so its cluster jackknife (leave one
  spatial block out of every fit) is as cheap as the naive one; the Monte-Carlo
  error of the draws is added to it.

References
----------
.. [1] J. R. Cook, L. A. Stefanski, "Simulation-extrapolation estimation in
   parametric measurement error models", J. Am. Stat. Assoc. 89, 1314 (1994).
.. [2] R. J. Carroll et al., *Measurement Error in Nonlinear Models*, 2nd ed.,
   Chapman & Hall (2006), ch. 5.
"""

import copy
from dataclasses import dataclass

import numpy as np

from ._design import eigenstrain_fields
from ._fit import BlockGrams, _solve_normal
from ._law import law_columns, linear_weights
from ._resolution import below_floor_sigmas

#: names of the error sources, as recorded with the law
SOURCES = ("composition", "registration")


@dataclass(frozen=True)
class CompositionErrors:
    """How the composition map's errors were made: what the bootstrap redraws.

    Attributes
    ----------
    sigma : numpy.ndarray, shape (my, mx)
        One standard deviation of X (fraction) per pixel of the grid X was
        measured on (NaN: no data), e.g. the unmixing's uncertainty on the
        X-ray grid.
    to_strain : callable, optional
        Maps fields (n, my, mx) on that grid to the strain grid (n, ny, nx) with
        the resampling that made the composition map (NaN outside). ``None``: X
        was measured on the strain grid (independent pixels).
    X_source : numpy.ndarray, shape (my, mx), optional
        The composition on its own grid (for the registration's draws).
    resample_with : callable, optional
        ``resample_with(fields, matrix)``: ``to_strain`` through another
        transform matrix (3, 3), for the registration's draws.
    matrix : numpy.ndarray, shape (3, 3), optional
        The registration's transform (source nm -> strain nm).
    matrix_covariance : numpy.ndarray, shape (6, 6), optional
        Covariance of the transform's first two rows (row-major; shift in nm).
    source_draw : callable, optional
        ``source_draw(rng, n, level)``: ``n`` error fields (n, my, mx) of X on its
        own grid at ``level`` times the measurement's error variance (``rng`` an
        :class:`Antithetic`: call ``rng.start(i)`` before draw ``i`` and draw with
        ``rng.standard_normal``), made as the
        measurement's were (e.g. the unmixing's coefficients redrawn from their
        covariance and unmixed again: the ratio and the bounds make the errors of
        X nonlinear, which a Gaussian of ``sigma`` misses). Default: Gaussian.
    """

    sigma: np.ndarray
    to_strain: object = None
    X_source: np.ndarray = None
    resample_with: object = None
    matrix: np.ndarray = None
    matrix_covariance: np.ndarray = None
    source_draw: object = None

    def __post_init__(self):
        sigma = np.asarray(self.sigma, float)
        if sigma.ndim != 2:
            raise ValueError(f"composition uncertainty must be a 2D map, got shape {sigma.shape}")
        if np.any(sigma[np.isfinite(sigma)] < 0):
            raise ValueError("composition uncertainty holds negative standard deviations")
        if not np.isfinite(sigma).any():
            raise ValueError("composition uncertainty has no finite pixel")
        object.__setattr__(self, "sigma", sigma)
        if self.matrix_covariance is not None:
            cov = np.asarray(self.matrix_covariance, float)
            if cov.shape != (6, 6) or not np.isfinite(cov).all():
                raise ValueError(f"the transform covariance must be a finite 6 x 6 array, got "
                                 f"shape {cov.shape}")
            if self.X_source is None or self.resample_with is None or self.matrix is None:
                raise ValueError("registration draws need X_source, resample_with and matrix")
            object.__setattr__(self, "matrix_covariance", cov)

    @property
    def sources(self):
        """Error sources this model redraws."""
        return SOURCES if self.matrix_covariance is not None else SOURCES[:1]

    def draw(self, source, rng, n, shape, level=1.0, antithetic=False):
        """``n`` error fields dX (n, ny, nx) on the strain grid at ``level`` x the error variance.

        ``antithetic``: draws in pairs, the second of each pair made from the negated
        random numbers of the first (the part of a draw's effect that is linear in
        its noise cancels in each pair's mean: the correction's Monte-Carlo error
        falls, each draw keeps its distribution).
        """
        g = Antithetic(rng, antithetic)
        if source == "composition":
            if self.source_draw is not None:
                e = np.asarray(self.source_draw(g, n, level), float)
            else:
                e = np.empty((n,) + self.sigma.shape)
                for i in range(n):
                    g.start(i)
                    e[i] = np.sqrt(level) * g.standard_normal(self.sigma.shape) * self.sigma
            e = e if self.to_strain is None else self.to_strain(e)
        else:
            L = np.sqrt(level) * _psd_sqrt(self.matrix_covariance)
            base = self.resample_with(self.X_source[None], self.matrix)[0]
            e = np.empty((n,) + tuple(shape))
            for i in range(n):
                g.start(i)
                m = np.array(self.matrix, float)
                m[:2, :] += (L @ g.standard_normal(6)).reshape(2, 3)
                e[i] = self.resample_with(self.X_source[None], m)[0] - base
        if e.shape[1:] != tuple(shape):
            raise ValueError(f"composition errors resample to {e.shape[1:]}, the strain grid is "
                             f"{tuple(shape)}")
        return np.nan_to_num(e)  # no data: no error drawn there (e.g. the extended rim)


class Antithetic:
    """Random numbers in antithetic pairs: draw ``2 j + 1`` replays draw ``2 j`` negated.

    Call :meth:`start` before each draw ``i``; ``standard_normal`` then records
    (even ``i``) or replays negated (odd ``i``) the draw's calls, in order. With a
    plain generator (``antithetic=False``) the draws are independent.
    """

    def __init__(self, rng, antithetic=True):
        self._rng, self._on = rng, bool(antithetic)
        self._calls, self._k, self._replay = [], 0, False

    def start(self, i):
        self._replay = self._on and i % 2 == 1
        if not self._replay:
            self._calls = []
        self._k = 0

    def standard_normal(self, size=None):
        if self._replay:
            z = -self._calls[self._k]
            self._k += 1
            return z
        z = self._rng.standard_normal(size)
        if self._on:
            self._calls.append(z)
        return z


@dataclass(frozen=True)
class ErrorPropagationOptions:
    """Draws of the composition-error propagation.

    Attributes
    ----------
    levels : tuple of float
        Added error variances (multiples of the model's) of the SIMEX refits;
        each level's draws also give the bootstrap covariance (scaled by 1/level).
        One level (1) extrapolates as precisely as two (1, 2) with twice the
        draws: the line through (0, theta) and its mean at 1.
    n_draws : int
        Draws per level of the composition; the registration's, held at the fit's
        resolution and nearly linear in its small parameters, get half as many
        (at least 2).
    correct : bool
        Correct the attenuation (SIMEX extrapolation to no error).
    add_bootstrap : bool
        Add the bootstrap covariance of each source to the cluster covariance
        (default). The cluster jackknife sees part of the composition errors (they
        are in the residuals), but on the demo chain at low X-ray dose (i0 = 1e3
        and 1e4 / 30) it alone covers 60-75 % of the seeds; with the bootstrap
        87.5-92.5 % (benchmarks/learning_uncertainty.py, 40 seeds).
    antithetic : bool
        Draws in antithetic pairs (``n_draws`` even): the part of the correction
        linear in the drawn noise, most of its Monte-Carlo error, cancels in each
        pair.
    resolution : {"auto", "held", "estimated"}
        Whether each draw re-estimates the composition's resolution (as the fit
        did) or holds the fit's. Noise in X makes the map look sharper, and a
        smaller sigma steepens the law: with an estimated resolution that is
        part of the errors' effect. ``"auto"``: re-estimated when the fit
        estimated it.
    below_floor : bool
        With an estimated resolution, the refits of the extrapolation (the map as
        measured and its draws) also consider sigmas below the candidates' lowest
        (the fit's floor, e.g. the X-ray pixel), down to 0
        (:func:`~._resolution.below_floor_sigmas`: 0, 0.3, 0.6 and 0.8 x it).
        Noise in X makes the map look sharper: at low dose the fit's estimate sits
        on the floor, where it cannot move with the added noise, and the
        extrapolation then misses the steepening it causes; let free, the refits
        show it. On the demo chain at i0 / 30 (40 seeds) the slopes' bias after the
        correction fell from 0.79 / 1.59 % to 0.44 / 1.25 % (2.05 / 2.77 % before
        it) with 0.6 and 0.8 x the floor; with those alone 19 of the 30 refits of
        six seeds on the floor still sat on the lowest, 0.6 x.
    seed : int
    """

    levels: tuple = (1.0,)
    n_draws: int = 4
    correct: bool = True
    add_bootstrap: bool = True
    antithetic: bool = True
    below_floor: bool = True
    resolution: str = "auto"
    seed: int = 0

    def __post_init__(self):
        lv = tuple(float(v) for v in self.levels)
        if not lv or min(lv) <= 0:
            raise ValueError(f"composition error levels must be positive, got {self.levels!r}")
        object.__setattr__(self, "levels", lv)
        if self.resolution not in ("auto", "held", "estimated"):
            raise ValueError(f"resolution must be 'auto', 'held' or 'estimated', got "
                             f"{self.resolution!r}")
        if int(self.n_draws) < 2:
            raise ValueError(f"n_draws must be >= 2 (a covariance), got {self.n_draws!r}")
        if self.antithetic and int(self.n_draws) % 2:
            raise ValueError(f"antithetic draws come in pairs: n_draws must be even, got "
                             f"{self.n_draws!r}")


def extrapolation_weights(levels):
    """Weights w with sum_j w_j theta(lambda_j) = the line through (0, *levels) at -1."""
    lam = np.r_[0.0, levels]
    d = lam - lam.mean()
    return 1.0 / lam.size + d * (-1.0 - lam.mean()) / np.sum(d * d)


def _psd_sqrt(cov):
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    return v * np.sqrt(np.clip(w, 0.0, None))


def _mean_covariance(est, antithetic):
    """Covariance of the mean of draws ``est`` (n, p): of independent draws, or of
    antithetic pairs (the pairs' means are the independent units; with one pair,
    the independent draws' value, which bounds it)."""
    if antithetic and est.shape[0] >= 4:
        est = est.reshape(est.shape[0] // 2, 2, -1).mean(axis=1)
    return np.atleast_2d(np.cov(est, rowvar=False)) / est.shape[0]


def _loo(Hb, vb):
    """Full and leave-one-block-out solutions (G, p) of per-block normal equations."""
    H, v = Hb.sum(axis=0), vb.sum(axis=0)
    return _solve_normal(H, v), _solve_normal(H[None] - Hb, v[None] - vb)


def _jackknife(loo):
    G = loo.shape[0]
    dev = loo - loo.mean(axis=0)
    return (G - 1) / G * dev.T @ dev


class _Refit:
    """The fit at fixed rows, weights, degree and resolution, for new composition maps."""

    def __init__(self, fits, solver, X, mask, crystal_angle, d_sel):
        self.fits, self.solver, self.X, self.mask = fits, solver, X, mask
        self.angle = crystal_angle
        opts = fits.options
        self.n_comp, d_max = opts.basis.n_components, opts.basis.d_max
        kind = opts.basis.kind
        from ._bases import LawBasis

        # responses needed: the law's d_sel columns and the linear (Vegard) law's
        lin = linear_weights(opts.basis.full_basis())
        self.n_lin = int(np.flatnonzero(np.abs(lin) > 1e-12).max()) + 1
        self.d_r = max(d_sel, self.n_lin)
        self.basis = LawBasis(kind, self.d_r) if kind != "linear" else LawBasis(kind, 1)
        design = fits.design
        p = design.A.shape[1]
        self.resp_cols = law_columns(self.n_comp, d_max, self.d_r)
        law_cols = design.columns(self.n_comp, d_max, d_sel)
        self.T_law = np.eye(p)[:, law_cols]
        self.n_law = self.n_comp * d_sel
        T = np.zeros((p, self.n_comp + p - design.n_resp))
        for c in range(self.n_comp):
            T[c * d_max:c * d_max + self.n_lin, c] = lin[:self.n_lin]
        T[design.n_resp:, self.n_comp:] = np.eye(p - design.n_resp)
        self.T_lin = T

    def estimates(self, grams):
        """(law coef (n_law,), slopes (n_comp,)) and their leave-one-block-out values."""
        out = []
        for T, k in ((self.T_law, self.n_law), (self.T_lin, self.n_comp)):
            b, loo = _loo(T.T @ grams.H @ T, grams.v @ T)
            out.append((b[:k], loo[:, :k]))
        return out

    def naive(self):
        return self.estimates(self.fits.grams)

    def refit(self, X_new):
        """Estimates for each composition map of ``X_new`` (n, ny, nx)."""
        fits, grid, design = self.fits, self.fits.grid, self.fits.design
        n = X_new.shape[0]
        eig = np.concatenate([eigenstrain_fields(self.basis, X_new[i], self.mask, self.n_comp,
                                                 self.angle) for i in range(n)])
        resp = self.solver.solve(eig, show_progressbar=False).strain_and_rotation
        # as the fit's design: the data are blurred to the composition's resolution,
        # the responses of the (measured, so already blurred) composition are not
        resp = grid.pool(resp)
        k = len(self.resp_cols)
        A = design.A.copy(order="F")
        out = []
        for i in range(n):
            for j, col in enumerate(self.resp_cols):
                A[:, col] = resp[i * k + j].ravel()[design.flat]
            g = BlockGrams.from_design(A, design.y, fits.weights, design.group)
            out.append(self.estimates(g))
        return out


class _RefitResolution:
    """The fit for new composition maps with the resolution re-estimated (degree held).

    Each map gets its responses, its resolution estimate on the candidate sigmas,
    then the robust fit at that resolution, as :func:`~._learn.learn_law` does.
    """

    def __init__(self, fits, solver, mask, crystal_angle, d_sel, context):
        from dataclasses import replace

        from ._options import BasisOptions

        b = fits.options.basis
        self.options = replace(fits.options, basis=BasisOptions(
            b.kind, int(d_sel), b.max_degree, shear=b.shear))
        self.solver, self.mask, self.angle, self.d_sel = solver, mask, crystal_angle, d_sel
        self.ctx = context
        self.n_comp, self.d_max = self.options.basis.n_components, self.options.basis.d_max
        self.n_law = self.n_comp * d_sel
        self._grids = None
        self.sigmas_px = []  # the resolution estimated for each map, in order

    def _estimates(self, fits):
        from ._law import vegard_map

        design = fits.design
        p = design.A.shape[1]
        T_law = np.eye(p)[:, design.columns(self.n_comp, self.d_max, self.d_sel)]
        T_lin = vegard_map(self.options.basis.full_basis(), self.n_comp, p)
        out = []
        for T, k in ((T_law, self.n_law), (T_lin, self.n_comp)):
            b, loo = _loo(T.T @ fits.grams.H @ T, fits.grams.v @ T)
            out.append((b[:k], loo[:, :k]))
        return out

    def refit(self, X_new):
        from ._design import PooledGrids
        from ._resolution import estimate_resolution
        from ._strain_gap import StrainGapFits

        ctx, opts = self.ctx, self.options
        basis = opts.basis.full_basis()
        n = X_new.shape[0]
        eig = np.concatenate([eigenstrain_fields(basis, X_new[i], self.mask, self.n_comp,
                                                 self.angle) for i in range(n)])
        resp = self.solver.solve(eig, show_progressbar=False).strain_and_rotation
        k = resp.shape[0] // n
        sigmas, out = ctx["sigmas"], []
        if self._grids is None:  # the data and nuisance fields pooled once for every map
            self._grids = PooledGrids(ctx["strain"], resp[:k], ctx["extra"], self.mask,
                                      ctx["blocks"])

        def grid_for(s, fields):
            base = self._grids.at(s)
            if base.factor not in pooled:  # each map pooled once per factor
                pooled[base.factor] = base.pool(fields)
            g = copy.copy(base)
            g.responses, g._model_blur = pooled[base.factor], None
            return g

        for i in range(n):
            fields, pooled = resp[i * k:(i + 1) * k], {}
            sigma = estimate_resolution(
                grid_for(max(sigmas), fields), opts.components, sigmas,
                lambda design: [design.columns(self.n_comp, self.d_max, self.d_sel)], False,
                n_boot=2, seed=opts.selection.seed, n_folds=opts.selection.n_folds,
                edge_band=opts.body.boundary == "dirichlet",
                xray_pixel=ctx.get("xray_pixel"))[0]
            self.sigmas_px.append(float(sigma))
            fits = StrainGapFits(grid_for(sigma, fields), sigma, 0.0, ctx["variance"], opts)
            out.append(self._estimates(fits))
        return out


def _rim_fill(support, mask):
    """Index of the nearest composition pixel for each pixel (the body's rim took its X)."""
    from scipy import ndimage

    if support is None or support[mask].all():
        return None
    return ndimage.distance_transform_edt(~support, return_indices=True)[1]


def propagate(fits, solver, X, mask, crystal_angle, d_sel, model, options, support=None,
              context=None):
    """Bootstrap covariance and SIMEX correction of the law and its Vegard slopes.

    Parameters
    ----------
    fits : StrainGapFits
        The fit as made (rows, robust weights, resolution).
    solver : ParticleElasticity
        Factorised for the body (reused: each draw costs forward solves only).
    X : numpy.ndarray, shape (ny, nx)
        Composition (fraction) as fitted, body completed.
    mask : numpy.ndarray of bool
        The body.
    crystal_angle : float
        rad.
    d_sel : int
        Degree of the law (held).
    model : CompositionErrors
    options : ErrorPropagationOptions
    support : numpy.ndarray of bool, optional
        Where X was measured: a body extended beyond it (``extend_body``) gave its
        rim the nearest measured X, so the rim gets that pixel's error too.
    context : dict, optional
        What re-estimating the resolution needs (``strain`` as fitted, ``extra``
        nuisance fields, ``blocks``, candidate ``sigmas``, ``variance``); given when
        the fit estimated it.

    Returns
    -------
    dict
        ``law`` and ``vegard``: each with ``naive`` and ``corrected`` estimates,
        ``cov_added`` (add to the naive fit's covariance: the correction's
        jackknife change, its Monte-Carlo error and, if asked, the bootstrap
        covariances), and ``cov_by_source`` (bootstrap covariance per source);
        ``sources``, ``levels``, ``n_draws``.
    """
    estimated = (options.resolution == "estimated" or (options.resolution == "auto"
                                                         and context is not None))
    if estimated and context is None:
        raise ValueError("resolution='estimated' needs the fit's context (an estimated "
                         "resolution)")
    rng = np.random.default_rng(options.seed)
    fill = _rim_fill(support, mask)
    held = _Refit(fits, solver, X, mask, crystal_angle, d_sel)
    naive = held.naive()
    # per source: the refit and the draws' reference (the same estimator, no added error).
    # Registration errors (sub-pixel shifts) barely change the map's sharpness: their
    # draws hold the resolution, at a fraction of the cost
    refit = {s: (held, naive) for s in model.sources}
    if estimated:
        ctx = context
        if options.below_floor:  # the draws' resolution free to fall below the fit's floor
            ctx = dict(context, sigmas=sorted(set(context["sigmas"])
                                              | set(below_floor_sigmas(context["sigmas"]))))
        rf = _RefitResolution(fits, solver, mask, crystal_angle, d_sel, ctx)
        refit["composition"] = (rf, rf.refit(np.where(mask, X, 0.0)[None])[0])
    w = extrapolation_weights(options.levels)
    n_draws = {s: int(options.n_draws) if s == "composition" else
               max(2, 2 * (int(options.n_draws) // 4)) for s in model.sources}
    acc = {s: [] for s in model.sources}  # per source, per level: [(est, loo) per draw]
    for s in model.sources:
        for lam in options.levels:
            dX = model.draw(s, rng, n_draws[s], X.shape, lam, antithetic=options.antithetic)
            if fill is not None:
                dX = dX[(slice(None),) + tuple(fill)]
            acc[s].append(refit[s][0].refit(np.where(mask, X, 0.0)[None] + dX))
    out = {"sources": list(model.sources), "levels": list(options.levels), "n_draws": n_draws,
           "corrected": options.correct, "bootstrap_added": options.add_bootstrap,
           "resolution": "estimated" if estimated else "held",
           "antithetic": bool(options.antithetic),
           "below_floor": bool(estimated and options.below_floor)}
    for q, name in enumerate(("law", "vegard")):
        b0, loo0 = naive[q]
        corr, loo_c = b0.copy(), loo0.copy()
        mc = np.zeros((b0.size, b0.size))
        by_source = {}
        for s in model.sources:
            r0, rloo0 = refit[s][1][q]  # increments from the same estimator at no added error
            boot = []
            for j, (lam, draws) in enumerate(zip(options.levels, acc[s])):
                est = np.array([d[q][0] for d in draws])
                cov_l = np.atleast_2d(np.cov(est, rowvar=False))
                boot.append(cov_l / lam)  # the estimator's spread, at its own resolution
                if options.correct:
                    loo = np.mean([d[q][1] for d in draws], axis=0)
                    corr += w[j + 1] * (est.mean(axis=0) - r0)
                    loo_c += w[j + 1] * (loo - rloo0)
                    mc += w[j + 1] ** 2 * _mean_covariance(est, options.antithetic)
            by_source[s] = np.mean(boot, axis=0)
        # the corrected estimator's jackknife, where it exceeds the naive one's (its
        # PSD part: the correction never narrows the band), and its Monte-Carlo error
        L = _psd_sqrt(_jackknife(loo_c) - _jackknife(loo0))
        added = L @ L.T + mc
        if options.add_bootstrap:
            added = added + sum(by_source.values())
        out[name] = {"naive": b0, "corrected": corr, "cov_added": added,
                     "cov_monte_carlo": mc, "cov_by_source": by_source}
    return out


def as_error_model(value, shape):
    """A :class:`CompositionErrors` from what ``learn_law`` was given."""
    if isinstance(value, CompositionErrors):
        return value
    if isinstance(value, str):
        raise ValueError(f"composition_uncertainty={value!r}: the engine takes a "
                         "CompositionErrors or a sigma(X) map ('auto' is read from a "
                         "CompositionMap by StrainField.learn_eigenstrain)")
    sigma = np.asarray(value, float)
    if sigma.shape != tuple(shape):
        raise ValueError(f"composition uncertainty map has shape {sigma.shape}, the composition "
                         f"{tuple(shape)}")
    return CompositionErrors(sigma)


def apply_propagation(fit, vegard, prop, n_law, resolution_estimated):
    """Correct ``fit`` (law coefficients and covariance, in place) and ``vegard``.

    Returns
    -------
    vegard : dict
        Slopes corrected, ``stderr`` and ``ci95`` widened; ``slopes_uncorrected``,
        ``stderr_uncorrected`` and ``stderr_by_source`` (the share of each error source).
    errors : dict
        What entered the band: ``band_sources``, ``sources`` redrawn, ``levels``,
        ``n_draws`` (per source), ``corrected``, ``bootstrap_added``, ``resolution``,
        ``antithetic``, ``below_floor``.
    """
    from scipy import stats

    law, veg = prop["law"], prop["vegard"]
    fit.coef = fit.coef.copy()
    fit.coef[:n_law] = law["corrected"]
    fit.cov = fit.cov.copy()
    fit.cov[:n_law, :n_law] += law["cov_added"]
    se0 = np.asarray(vegard["stderr"], float)
    se = np.sqrt(np.maximum(se0 ** 2 + np.diag(veg["cov_added"]), 0.0))
    t = stats.t.ppf(0.975, max(vegard["dof"], 1))
    slopes = veg["corrected"]
    by_source = {"strain (cluster jackknife" + (", resolution)" if resolution_estimated
                                                 else ")"): se0}
    for s, cov in veg["cov_by_source"].items():
        by_source[s] = np.sqrt(np.maximum(np.diag(cov), 0.0))
    correction = np.diag(veg["cov_added"]) - sum(np.diag(c) for c in veg["cov_by_source"].values()
                                                 ) * bool(prop.get("bootstrap_added", False))
    by_source["attenuation correction"] = np.sqrt(np.maximum(correction, 0.0))
    vegard = dict(vegard, slopes=slopes, stderr=se,
                  ci95=np.column_stack([slopes - t * se, slopes + t * se]),
                  slopes_uncorrected=veg["naive"], stderr_uncorrected=se0,
                  stderr_by_source=by_source)
    band = ["strain (cluster jackknife)"] + (["resolution"] if resolution_estimated else [])
    band += [f"{s} (attenuation corrected)" for s in prop["sources"]]
    if prop.get("bootstrap_added"):
        band += [f"{s} (bootstrap)" for s in prop["sources"]]
    errors = {"band_sources": band, "sources": list(prop["sources"]),
              "levels": list(prop["levels"]), "n_draws": dict(prop["n_draws"]),
              "corrected": bool(prop.get("corrected", True)),
              "bootstrap_added": bool(prop.get("bootstrap_added", False)),
              "resolution": str(prop.get("resolution", "held")),
              "antithetic": bool(prop.get("antithetic", False)),
              "below_floor": bool(prop.get("below_floor", False))}
    return vegard, errors
