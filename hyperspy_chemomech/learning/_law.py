"""The learned law and its statistics: LawFit, Vegard slopes, the linearity test, BIC.

Shared by both fits (strain gap and equilibrium gap): each hands over fitted
models (:class:`~._fit.FitResult`) on the nested law columns, and the
statistics here read the law off them.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ._bases import LawBasis
from ._fit import _solve_normal


@dataclass
class LawFit:
    """Everything a learned law carries (plain numpy; wrapped by EigenstrainLaw)."""

    basis: LawBasis
    coefficients: np.ndarray         #: (n_comp, degree) per crystal component
    covariance: np.ndarray           #: (n_comp*degree, n_comp*degree), cluster-robust
    covariance_white: np.ndarray     #: white-noise covariance (diagnostic)
    dof: int                         #: degrees of freedom of the t quantile (clusters - 1)
    reference: np.ndarray            #: (4,) e11, e22, e12, theta offsets (image frame)
    n_components: int
    sigma_px: float                  #: resolution-matching PSF sigma (strain px)
    sigma_source: str                #: "given", or how it was estimated
    sigma_sd_px: float               #: standard deviation of an estimated sigma (0 if given)
    selection: dict                  #: CV / BIC tables
    x_range: tuple                   #: observed composition range (0.5 and 99.5 %)
    noise: np.ndarray                #: robust residual scale per data component
    vegard: dict                     #: linear fit: slopes, standard errors, intervals
    linearity: dict                  #: test of linearity against the best nonlinear degree
    method: str
    settings: dict = field(default_factory=dict)
    condition: float = np.nan
    prediction: np.ndarray = None    #: (4, ny, nx) fitted model (incl. reference), unblurred
    residual: np.ndarray = None      #: (4, ny, nx) data - prediction at the fit's resolution
    x_histogram: np.ndarray = None   #: counts of X inside the particle in 50 bins over [0, 1]
    dislocations: dict = None        #: cores fitted as nuisance: positions_px (y, x), burgers_nm
    body: dict = None                #: the mechanics body: mask, n_extended (rim pixels added)

    def evaluate(self, X):
        """eps0(X) - eps0(0) per component, shape (n_comp, len(X)); see :func:`law_values`."""
        return law_values(self.coefficients, self.basis, X)

    def band(self, X, level=0.95):
        """Half-width of the pointwise confidence band at ``X``; see :func:`law_band`."""
        return law_band(self.covariance, self.basis, self.dof, X, level)


def law_values(coefficients, basis, X):
    """The law ``eps0(X) - eps0(0)`` from its basis coefficients.

    Parameters
    ----------
    coefficients : array_like, shape (n_comp, degree)
        Coefficients per crystal-frame component (dimensionless).
    basis : LawBasis
    X : array_like
        Compositions (fraction in [0, 1]).

    Returns
    -------
    numpy.ndarray, shape (n_comp, len(X))
        Eigenstrain differences (dimensionless), crystal frame.
    """
    phi = basis(np.atleast_1d(np.asarray(X, float)))
    return np.asarray(coefficients, float) @ phi


def law_band(covariance, basis, dof, X, level=0.95):
    """Half-width of the pointwise confidence band of the law at ``X``.

    Parameters
    ----------
    covariance : array_like, shape (n_comp * degree, n_comp * degree)
        Covariance of the coefficients, component-major (cluster-robust).
    basis : LawBasis
    dof : int
        Degrees of freedom of the Student t quantile (clusters - 1).
    X : array_like
        Compositions.
    level : float
        Coverage of the band (0.95: the 95 % pointwise band).

    Returns
    -------
    numpy.ndarray, shape (n_comp, len(X))
        Half-widths (dimensionless).
    """
    X = np.atleast_1d(np.asarray(X, float))
    covariance = np.asarray(covariance, float)
    phi = basis(X)  # (d, n)
    d = basis.n
    n_comp = covariance.shape[0] // d
    t = stats.t.ppf(0.5 + level / 2, max(int(dof), 1))
    out = np.empty((n_comp, X.size))
    for c in range(n_comp):
        cov = covariance[c * d:(c + 1) * d, c * d:(c + 1) * d]
        out[c] = t * np.sqrt(np.maximum(np.einsum("in,ij,jn->n", phi, cov, phi), 0))
    return out


def composition_summary(X, mask):
    """``x_range`` (0.5 and 99.5 % quantiles) and ``x_histogram`` (50 bins) of X in the body."""
    lo, hi = np.quantile(X[mask], [0.005, 0.995])
    return {"x_range": (float(lo), float(hi)),
            "x_histogram": np.histogram(X[mask], bins=50, range=(0, 1))[0]}


def law_columns(n_comp, d_max, degree):
    """Design columns of the law at ``degree``: the nested basis is stored d_max per component."""
    return np.array([c * d_max + k for c in range(n_comp) for k in range(degree)], dtype=int)


def linear_weights(basis):
    """Coefficients a with sum_k a_k phi_k(X) = X (every basis here spans X).

    The Vegard fit then needs no solve of its own: its forward response is the
    same combination of the basis responses.
    """
    grid = np.linspace(0.0, 1.0, 64)
    phi = basis(grid)
    a, *_ = np.linalg.lstsq(phi.T, grid, rcond=None)
    if np.max(np.abs(phi.T @ a - grid)) > 1e-9:
        raise RuntimeError(f"{basis!r} does not reproduce a linear law")
    return a


def vegard_map(basis, n_comp, n_columns):
    """Map from (slopes per component, nuisance parameters) to the design's columns.

    The first ``n_comp * basis.n`` columns are the law's (nested basis, one block
    per component); the rest are nuisance terms (reference offsets, dislocations),
    passed through.
    """
    lin = linear_weights(basis)
    d_max, n_law = basis.n, n_comp * basis.n
    T = np.zeros((n_columns, n_comp + n_columns - n_law))
    for c in range(n_comp):
        T[c * d_max:(c + 1) * d_max, c] = lin
    T[n_law:, n_comp:] = np.eye(n_columns - n_law)
    return T


def vegard_stats(fit_linear, n_comp):
    """Slope of the linear (Vegard) fit per component, with 95 % interval (cluster-robust).

    ``fit_linear()`` returns the FitResult of the model whose first ``n_comp``
    coefficients are the slopes per unit X.
    """
    f = fit_linear()
    slopes = f.coef[:n_comp]
    se = np.sqrt(np.diag(f.cov)[:n_comp])
    t = stats.t.ppf(0.975, max(f.n_clusters - 1, 1))
    return {
        "slopes": slopes,
        "stderr": se,
        "ci95": np.column_stack([slopes - t * se, slopes + t * se]),
        "dof": int(f.n_clusters - 1),
    }


def linearity_test(fit_degree, n_comp, d_sel, basis):
    """Wald test that all nonlinear coefficients vanish (nested Legendre basis).

    ``fit_degree(d)`` returns ``(columns, FitResult)`` of the law at degree ``d``.
    """
    if basis != "legendre":
        return {"tested": False, "reason": f"needs the nested legendre basis, got {basis}"}
    d_nl = max(d_sel, 2)
    cols, f = fit_degree(d_nl)
    idx = [c * d_nl + k for c in range(n_comp) for k in range(1, d_nl)]
    b = f.coef[idx]
    V = f.cov[np.ix_(idx, idx)]
    q = len(idx)
    G = f.n_clusters
    try:
        wald = float(b @ np.linalg.solve(V, b))
    except np.linalg.LinAlgError:
        wald = float(b @ np.linalg.pinv(V) @ b)
    # small-sample F approximation for a cluster-robust Wald statistic
    F = wald / q * (G - q) / max(G - 1, 1)
    p = float(stats.f.sf(F, q, max(G - q, 1))) if G > q else float("nan")
    return {"tested": True, "degree": int(d_nl), "wald": wald, "F": float(F), "p_value": p,
            "n_clusters": int(G), "reject_linear_at_5pct": bool(p < 0.05)}


def bic_table(grams, col_sets, n_blocks, n_comps):
    """BIC of each nested model (column set), shape (n_models, 1), from the block Grams.

    The effective sample size counts one independent datum per block and
    component (residuals are spatially correlated), capped by the row count.
    """
    n = grams.n_rows
    H, v, c = grams.H.sum(axis=0), grams.v.sum(axis=0), grams.c.sum()
    wmean = grams.m.sum() / n
    out = np.empty((len(col_sets), 1))
    n_eff = min(n, n_blocks * n_comps * 10)
    for k, cols in enumerate(col_sets):
        Hc, vc = H[np.ix_(cols, cols)], v[cols]
        beta = _solve_normal(Hc, vc)
        rss = max(c - 2 * beta @ vc + beta @ Hc @ beta, 1e-300) / wmean
        out[k, 0] = n_eff * np.log(rss / n) + len(cols) * np.log(n_eff)
    return out
