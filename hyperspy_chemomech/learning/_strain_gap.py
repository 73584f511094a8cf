"""The strain-gap fit at one resolution (the default method of ``learn_law``).

The measured maps are

    eps_meas = eps_ref + sum_k theta_k S[phi_k(X)] + nuisance + noise,

linear in (theta, eps_ref, nuisance): a robust weighted least-squares problem,
the maximum-likelihood estimate under Gaussian noise (finite-element model
updating; Avril & Pierron 2007). One robust (IRLS) fit of the most flexible
model gives the weights; every nested degree and the Vegard model are then
solved from per-block Gram matrices (p x p work each).
"""

import numpy as np

from ._fit import (
    BlockGrams,
    _mad,
    blocked_cv,
    one_standard_error_choice,
    robust_fit,
    spatial_blocks,
)
from ._law import bic_table, vegard_map
from ..fields import masked_gaussian
from ._resolution import add_resolution_covariance, blurred_variance, sigma_score


def fit_blocks(mask, sigmas, block_size=None):
    """Spatial blocks of the fit (clusters of the covariance, CV folds) and their side (px)."""
    if block_size is None:
        # Dislocation far fields (1/r) correlate residuals over long ranges: clusters
        # of a quarter of the particle size keep the sandwich covariance honest
        # (coverage measured in benchmarks/learning.py).
        block_size = int(max(8, round(np.sqrt(mask.sum()) / 4), 3 * max(sigmas)))
    return spatial_blocks(mask, block_size), block_size


class StrainGapFits:
    """The strain-gap problem on one grid at resolution ``sigma``, and its fitted models.

    Parameters
    ----------
    grid : PooledGrid
        The maps on the grid pooled for ``sigma``.
    sigma, sigma_sd : float
        PSF sigma of the composition (fine-grid px) and its standard deviation
        (0 if given).
    variance : numpy.ndarray, shape (4, ny, nx), optional
        Per-pixel variance of the strain (full resolution).
    options : LearnOptions
    """

    def __init__(self, grid, sigma, sigma_sd, variance, options):
        self.grid, self.sigma, self.sigma_sd = grid, sigma, sigma_sd
        self.options = options
        self.n_comp, self.d_max = options.basis.n_components, options.basis.d_max
        self.comps = options.components
        var_s = blurred_variance(grid, variance, sigma)
        self.design = design = grid.design(grid.blur(grid.strain, sigma), grid.responses,
                                           self.comps, variance=var_s,
                                           extra=grid.blur_model("extra", sigma))
        # one robust (IRLS) fit of the most flexible model; its weights serve all the
        # nested and mapped models below, each from the per-block Grams (p x p work)
        self.weights = robust_fit(design.A, design.y, design.comp, design.group, design.w0,
                                  n_components=len(self.comps), covariance=False).weights
        self.grams = BlockGrams.from_design(design.A, design.y, self.weights, design.group)
        self.offset = None  #: model offset taken off the data (this grid), :meth:`offset_data`
        self._score = None

    def offset_data(self, delta):
        """Take a model offset off the data, the robust fit's weights held.

        For a term of the model that is known (to first order) rather than fitted,
        e.g. the blur's commutator with the body at a pilot law
        (:func:`~._collection.commutator_offset`): the Grams become those of
        ``y - delta`` against the same columns.

        Parameters
        ----------
        delta : numpy.ndarray, shape (4, ny, nx)
            Full-resolution model fields (strain units), finite on the body; pooled
            as the responses are.
        """
        d = self.design
        pooled = self.grid.pool_model(delta)
        self.offset = pooled if self.offset is None else self.offset + pooled
        d.y = d.y - pooled.ravel()[d.flat]
        self.grams = BlockGrams.from_design(d.A, d.y, self.weights, d.group)

    def select_degree(self, n_blocks):
        """Degree by spatially blocked CV (or BIC) over the candidates; and the table."""
        degrees, sel = self.options.basis.degrees, self.options.selection
        if len(degrees) == 1:
            return degrees[0], {"criterion": "none (degree given)"}
        col_sets = [self.design.columns(self.n_comp, self.d_max, d) for d in degrees]
        if sel.criterion == "cv":
            err = blocked_cv(None, None, None, None, col_sets, n_folds=sel.n_folds, seed=sel.seed,
                             grams=self.grams)
            d_sel = degrees[one_standard_error_choice(err)]
        else:
            err = bic_table(self.grams, col_sets, n_blocks=n_blocks, n_comps=len(self.comps))
            d_sel = degrees[int(np.argmin(err[:, 0]))]
        return d_sel, dict(criterion=sel.criterion, degrees=np.asarray(degrees),
                           errors=err.mean(axis=1), errors_fold_sd=err.std(axis=1))

    def include_resolution_uncertainty(self):
        """Let every later fit's covariance carry the estimated resolution's share.

        An estimated resolution is uncertain, and the law depends on it: its share
        of the covariance is J J^T var(sigma), J = d coef / d sigma
        (:func:`~._resolution.sigma_score`).
        """
        if self.sigma_sd > 0:
            self._score = sigma_score(self.grid, self.design, self.sigma, self.weights)
        self._gram = self.grams.H.sum(axis=0)

    def fit_mapped(self, mapping):
        """Fit of the model ``A @ mapping`` (reduced parameters -> design columns) at the
        robust fit's weights, from the block Grams."""
        f = self.grams.fit(mapping, cov_method=self.options.uncertainty.method)
        f.weights = self.weights
        if self._score is not None:
            add_resolution_covariance(f, mapping, self._gram, self._score, self.sigma_sd)
        return f

    def fit_degree(self, d):
        """``(columns, FitResult)`` of the law at degree ``d`` with all nuisance terms."""
        cols = self.design.columns(self.n_comp, self.d_max, d)
        return cols, self.fit_mapped(np.eye(self.design.A.shape[1])[:, cols])

    def fit_linear(self):
        """The Vegard model: coefficients are the slopes per component, then the nuisance."""
        return self.fit_mapped(vegard_map(self.options.basis.full_basis(), self.n_comp,
                                          self.design.A.shape[1]))

    def fit_selected(self, d):
        """The law at degree ``d``, with its robust residual scale per data component
        (and monotonic coefficients where asked)."""
        design = self.design
        cols, fit = self.fit_degree(d)
        z = (design.y - design.A[:, cols] @ fit.coef) * (
            1.0 if design.w0 is None else np.sqrt(design.w0))
        fit.scale = np.array([_mad(z[design.comp == j]) for j in range(len(self.comps))])
        if self.options.basis.monotonic:
            fit.coef = monotonic_coefficients(design.A[:, cols], design.y, fit, self.n_comp, d)
        return cols, fit


def model_maps(strain, mask, sigma, responses, coef, reference, use_rotation):
    """Prediction (unblurred) and residual (at the fit's resolution) maps, (4, ny, nx) each.

    Parameters
    ----------
    strain : numpy.ndarray, shape (4, ny, nx)
        The data as fitted (full grid).
    mask : numpy.ndarray of bool
    sigma : float
        PSF sigma (px) the data were blurred by.
    responses : numpy.ndarray, shape (k, 4, ny, nx)
        Forward responses of the law's columns.
    coef : numpy.ndarray, shape (k,)
    reference : numpy.ndarray, shape (4,)
    use_rotation : bool
        Without it the rotation's residual is NaN (not fitted).
    """
    data = masked_gaussian(strain, mask, sigma) if sigma > 0 else strain
    pred = np.einsum("k,kcyx->cyx", coef, responses)
    pred = pred + reference[:, None, None]
    pred = np.where(mask, pred, np.nan)
    resid = np.where(mask, data - pred, np.nan)
    if not use_rotation:
        resid[3] = np.nan
    return pred, resid


def monotonic_coefficients(A, y, fit, n_comp, d):
    """Re-solve with monotonic B-spline coefficients per component (bounded increments)."""
    from scipy.optimize import lsq_linear

    p = A.shape[1]
    # coef_{c,j} = sum_{i<=j} delta_{c,i}: T maps increments to coefficients
    T = np.eye(p)
    lower, upper = np.full(p, -np.inf), np.full(p, np.inf)
    for c in range(n_comp):
        blk = slice(c * d, (c + 1) * d)
        T[blk, blk] = np.tril(np.ones((d, d)))
        if c < 2:  # shear (third) component is left free
            # direction from the unconstrained end-point value (B-splines: last coefficient)
            if fit.coef[c * d + d - 1] >= 0:
                lower[blk] = 0.0
            else:
                upper[blk] = 0.0
    sw = np.sqrt(fit.weights)
    res = lsq_linear((A @ T) * sw[:, None], y * sw, bounds=(lower, upper), method="bvls")
    return T @ res.x
