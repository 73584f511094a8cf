"""Learn the eigenstrain law eps0(X) from registered strain and composition maps.

Strain-gap fit (default). With eps0(X) = sum_k theta_k phi_k(X) per crystal-frame
component, the mechanics engine gives the forward response S[phi_k(X)] (total
strain and lattice rotation of the traction-free particle) once per basis
function, from one factorisation. The measured maps are then

    eps_meas = eps_ref + sum_k theta_k S[phi_k(X)] + noise,

linear in (theta, eps_ref): a robust weighted least-squares problem. This is the
maximum-likelihood estimate under Gaussian noise (finite-element model updating;
Avril & Pierron 2007).

Resolution matching. The composition comes from a coarser, blurrier X-ray map.
The prediction S[phi(X_blur)] is then at the X-ray resolution, so the measured
strain is blurred with the same Gaussian point-spread function (width sigma, px)
before the fit. sigma comes from the user (``composition_resolution``), from the
registration (the X-ray pixel size) or, when nothing says, from spatially blocked
cross-validation, jointly with the degree of the law.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse, stats

from .._utils import progressbar, with_one_blas_thread
from ._bases import LawBasis
from ._fit import (
    BlockGrams,
    _huber,
    _mad,
    _solve_normal,
    blocked_cv,
    fold_assignment,
    one_standard_error_choice,
    robust_fit,
    spatial_blocks,
)
from ._resolution import FWHM_PER_SIGMA, masked_gaussian, pool

CRYSTAL_COMPONENTS = ("e_100", "e_001", "e_shear")
DATA_COMPONENTS = ("e11", "e22", "e12", "theta")
#: Relative uncertainty of a Gaussian-equivalent PSF width (model error of the shape):
#: for 4x pixels plus bilinear resampling the misfit-optimal Gaussian (1.75 px) and
#: the variance-matched one (2.0 px) differ by 13 %.
PSF_SHAPE_UNCERTAINTY = 0.15
#: Candidate PSF sigmas (px) tried when the composition's resolution is unknown.
#: Huber threshold (robust standard deviations) of the robust fits.
HUBER_C = 1.345
SIGMA_GRID_PX = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0)
METHODS = ("strain_gap", "equilibrium_gap")


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
        """eps0(X) - eps0(0) per component, shape (n_comp, len(X))."""
        phi = self.basis(np.atleast_1d(np.asarray(X, float)))
        return self.coefficients @ phi

    def band(self, X, level=0.95):
        """Half-width of the pointwise confidence band at ``X``, shape (n_comp, len(X))."""
        X = np.atleast_1d(np.asarray(X, float))
        phi = self.basis(X)  # (d, n)
        d = self.basis.n
        t = stats.t.ppf(0.5 + level / 2, max(self.dof, 1))
        out = np.empty((self.n_components, X.size))
        for c in range(self.n_components):
            cov = self.covariance[c * d:(c + 1) * d, c * d:(c + 1) * d]
            out[c] = t * np.sqrt(np.maximum(np.einsum("in,ij,jn->n", phi, cov, phi), 0))
        return out


def _extend_body(strain, X, reach_px):
    """Add to the body the strain-finite pixels just outside the composition's support.

    An X-ray composition map loses the thin rim of a particle (its thickness
    threshold), while the 4D-STEM strain map still sees it. The body of the
    mechanics must be the whole particle: a traction-free edge a few pixels inside
    the real one biases the law by several per cent. Pixels with finite strain
    within ``reach_px`` of the composition's support join the body with the
    composition of the nearest pixel that has one.

    Returns
    -------
    X_ext : numpy.ndarray
        Composition, extended (a new array).
    n_added : int
    """
    from scipy import ndimage

    have = np.isfinite(X)
    dist, idx = ndimage.distance_transform_edt(~have, return_indices=True)
    seen = np.isfinite(strain).any(axis=0)
    # only pixels connected to the body through strain-finite pixels within reach
    grow = have.copy()
    add = seen & ~have & (dist <= reach_px)
    for _ in range(int(np.ceil(reach_px))):
        new = add & ndimage.binary_dilation(grow) & ~grow
        if not new.any():
            break
        grow |= new
    X_ext = np.where(grow & ~have, X[tuple(idx)], X)
    return X_ext, int((grow & ~have).sum())


def _validate(strain, X, mask, pixel_size):
    strain = np.asarray(strain, dtype=float)
    X = np.asarray(X, dtype=float)
    if strain.ndim != 3 or strain.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx) (e11, e22, e12, theta), got {strain.shape}")
    if X.shape != strain.shape[1:]:
        raise ValueError(
            f"composition grid {X.shape} differs from the strain grid {strain.shape[1:]}; "
            "resample it first (e.g. CorrelativeTransform.apply(comp, onto=strain))"
        )
    if mask is None:
        mask = np.isfinite(X)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != X.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the grid {X.shape}")
        holes = mask & ~np.isfinite(X)
        if holes.any():
            raise ValueError(f"composition is NaN at {int(holes.sum())} pixel(s) inside the mask")
    if not mask.any():
        raise ValueError("the particle is empty: no finite composition (or empty mask)")
    xin = X[mask]
    bad = (xin < 0) | (xin > 1)
    if bad.any():
        raise ValueError(
            f"composition outside [0, 1] at {int(bad.sum())} pixel(s) "
            f"(min {xin.min():.3g}, max {xin.max():.3g}); X is a fraction, fix the unmixing "
            "rather than clipping"
        )
    if np.isinf(strain).any():
        raise ValueError("strain holds infinite values; use NaN for failed fits")
    ps = float(np.mean(np.broadcast_to(np.asarray(pixel_size, float), (2,))))
    if not np.isfinite(ps) or ps <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size}")
    return strain, X, mask


def _check_identifiable(X, mask, min_range):
    lo, hi = np.quantile(X[mask], [0.05, 0.95])
    if hi - lo < min_range:
        raise ValueError(
            f"composition range too narrow to identify a law: 90 % of the particle lies in "
            f"X = [{lo:.3f}, {hi:.3f}] (span {hi - lo:.3f} < {min_range}); only eps0 "
            "differences between compositions present in the particle can be learned"
        )
    gy, gx = np.gradient(np.where(mask, X, np.nan))
    g = np.hypot(gx, gy)
    frac = np.mean(np.nan_to_num(g[mask]) > 0.01)
    if frac < 0.01:
        raise ValueError(
            f"composition barely varies in space ({100 * frac:.2f} % of pixels with |grad X| > "
            "0.01 /px): a uniform composition gives no coherency strain to learn from"
        )


def _eigenstrain_fields(basis, X, mask, n_comp, crystal_angle):
    """Image-frame eigenstrain of each (component, basis function): (n_comp*d, 3, ny, nx)."""
    from ..mechanics import rotate_strain

    phi = basis(np.where(mask, X, 0.0))  # (d, ny, nx)
    d = basis.n
    out = np.zeros((n_comp * d, 3) + X.shape)
    for c in range(n_comp):
        crystal = np.zeros((d, 3) + X.shape)
        crystal[:, c] = phi  # c = 0: [100], 1: [001], 2: tensor shear
        out[c * d:(c + 1) * d] = rotate_strain(crystal, crystal_angle, axis=1)
    out[:, :, ~mask] = 0.0
    return out


def _responses(solver, eig, show_progressbar):
    """Forward responses (n, 4, ny, nx): total strain and rotation of each eigenstrain."""
    return solver.solve(eig, show_progressbar=show_progressbar).strain_and_rotation


def _kernel_sq_sum(sigma):
    if sigma <= 0:
        return 1.0
    n = int(np.ceil(4 * sigma)) * 2 + 1
    d = np.zeros((n, n))
    d[n // 2, n // 2] = 1.0
    k = ndimage.gaussian_filter(d, sigma, mode="constant")
    return float(np.sum(k * k))


class _Design:
    """Rows (component, pixel) of the least-squares problem at one resolution.

    Rows run block by block (spatial blocks), so that per-block Gram matrices
    (:class:`~._fit.BlockGrams`) are sums over contiguous slices. ``A`` is
    column-major: each column is filled by one gather.
    """

    def __init__(self, data, responses, mask, comps, blocks, variance=None, extra=None,
                 weight=None):
        npix = mask.size
        cidx = np.asarray(comps)
        # (component, pixel) of every valid datum, as one flat index into (4, ny, nx)
        flat = np.concatenate([c * npix + np.flatnonzero(mask & np.isfinite(data[c]))
                               for c in comps])
        pix = flat % npix
        flat = flat[np.argsort(blocks.ravel()[pix], kind="stable")]
        pix = flat % npix
        self.flat = flat  #: flat index into (4, ny, nx) of each row
        self.group = blocks.ravel()[pix]
        self.comp = np.searchsorted(cidx, flat // npix)
        self.y = data.ravel()[flat]
        w0 = None
        if variance is not None:
            w0 = 1.0 / np.maximum(variance.ravel()[flat], 1e-30)
        if weight is not None:  # pooled pixels: weighted by their fraction in the body
            wp = np.broadcast_to(weight, data.shape).ravel()[flat]
            w0 = wp if w0 is None else w0 * wp
        self.w0 = w0
        n_resp = responses.shape[0]
        n_extra = 0 if extra is None else extra.shape[0]
        n_off = len(comps)
        A = np.empty((flat.size, n_resp + n_off + n_extra), order="F")
        self.A = A
        self.set_responses(responses)
        A[:, n_resp:n_resp + n_off] = self.comp[:, None] == np.arange(n_off)  # references
        for k in range(n_extra):
            A[:, n_resp + n_off + k] = extra[k].ravel()[flat]
        self.n_resp, self.n_off = n_resp, n_off

    def set_responses(self, responses):
        """Refill the law's columns (same rows), e.g. with responses blurred differently."""
        for k in range(responses.shape[0]):
            self.A[:, k] = responses[k].ravel()[self.flat]

    def columns(self, n_comp, d_max, d):
        """Columns for degree d (nested basis), plus the reference offsets and nuisance fields."""
        cols = [c * d_max + k for c in range(n_comp) for k in range(d)]
        return np.r_[cols, np.arange(self.n_resp, self.A.shape[1])]


@with_one_blas_thread
def learn_law(strain, X, pixel_size, stiffness, *, crystal_angle=0.0, mask=None, variance=None,
              composition_resolution=None, source_pixel_size=None, basis="legendre",
              degree="auto", max_degree=6, method="strain_gap", boundary="free",
              use_rotation=True, shear=False, selection="cv", n_folds=5, block_size=None,
              sigma_grid=None, min_range=0.1, monotonic=False, dislocations="fit",
              extend_body=True, uncertainty="jackknife", show_progressbar=None, seed=0,
              solver=None):
    """Learn eps0(X) - eps0(0) from strain and composition maps on one grid.

    Parameters
    ----------
    strain : numpy.ndarray, shape (4, ny, nx)
        Measured e11, e22, e12 (tensor shear), theta (rad), image frame; NaN =
        missing (left out of the misfit, not of the body).
    X : numpy.ndarray, shape (ny, nx)
        Composition in [0, 1]; finite inside the particle.
    pixel_size : float or (float, float)
        Strain-grid pixel size (dy, dx) in nm.
    stiffness : array_like
        Plane stiffness (GPa) in the crystal frame, 3x3, or a pair (Q at X=0,
        Q at X=1) for composition-dependent stiffness, or a callable X -> Q.
    crystal_angle : float
        Angle from +x to [100] (rad), toward +y.
    mask : numpy.ndarray of bool, optional
        The body; default where X is finite.
    variance : numpy.ndarray, shape (4, ny, nx), optional
        Per-pixel variance of the strain data (weights 1/variance).
    composition_resolution : float, optional
        FWHM (nm) of the composition map's point-spread function.
    source_pixel_size : float, optional
        Pixel size (nm) of the X-ray map the composition was resampled from. Pixel
        integration plus bilinear resampling blur by a Gaussian-equivalent sigma of
        pixel / 2 (variance-matched; the misfit-optimal one is ~13 % narrower), so
        sigma >= 0.5 (1 - PSF_SHAPE_UNCERTAINTY) pixel is a lower bound (the beam
        adds its own blur): the resolution is estimated from there up.
    basis : {"legendre", "bspline", "linear"}
    degree : "auto" or int
    max_degree : int
        Largest degree tried by ``degree="auto"``.
    method : {"strain_gap", "equilibrium_gap"}
    boundary : {"free", "dirichlet"}
        Boundary condition of the forward model. ``"free"``: traction-free edges,
        for a whole particle in the field of view. ``"dirichlet"``: the body's
        edge is held at the measured displacement (integrated from the data),
        for a field of view that cuts the particle or a clamped particle (see
        :func:`_remove_boundary_response`). The equilibrium gap always uses the
        measured edge.
    use_rotation : bool
        Use the lattice-rotation map as data.
    shear : bool
        Learn a crystal-frame shear eigenstrain as a third component.
    selection : {"cv", "bic"}
        How ``degree="auto"`` (and the resolution, when unknown) are chosen.
    n_folds : int
        Folds of the spatially blocked cross-validation.
    block_size : int, optional
        Side (px) of the spatial blocks for cross-validation and the cluster-robust
        covariance; default from the particle size and the resolution.
    sigma_grid : sequence of float, optional
        Candidate PSF sigmas (px) when the resolution is estimated.
    min_range : float
        Smallest 5-95 % spread of X accepted as identifiable.
    monotonic : bool
        Constrain every component to be monotonic in X (direction from the
        unconstrained fit). Needs ``basis="bspline"`` with a given degree: B-spline
        coefficients with monotonic increments give a monotonic curve, so the
        constraint is a bound on the increments (scipy.optimize.lsq_linear). The
        covariance is that of the unconstrained fit (conservative where a bound
        is active).
    extend_body : bool or float
        Without an explicit ``mask``, let the body take in strain-finite pixels
        within 8 px (or this many px) of where X is finite, with the nearest X:
        the thin rim that an X-ray thickness threshold cuts off is still particle
        (see :func:`_extend_body`). The number of pixels added is reported.
    uncertainty : {"jackknife", "bootstrap"}
        Covariance of the coefficients: cluster jackknife over spatial blocks
        (default, CR3) or spatial block bootstrap; both are robust to spatially
        correlated residuals, unlike the white-noise formula.
    dislocations : {"fit", "ignore"}
        ``"fit"`` (default): find edge dislocations in the measured maps (their Nye
        content: the chemical and elastic parts are compatible and have none) and
        fit their long-range fields (isotropic Volterra, Burgers vector free) as
        nuisance terms, so that their 1/r strain does not leak into the law.
    show_progressbar : bool, optional
    seed : int
        Seed of the fold assignment.
    solver : ParticleElasticity, optional
        A solver already factorised for this mask and stiffness (reused).

    Returns
    -------
    LawFit
    """
    from .._solver_cache import get_solver

    n_extended = 0
    given_mask = mask
    strain, X, mask = _validate(strain, X, mask, pixel_size)
    if given_mask is None and extend_body:
        reach = extend_body if not isinstance(extend_body, bool) else 8.0
        X, n_extended = _extend_body(strain, X, reach)
        mask = np.isfinite(X)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if boundary not in ("free", "dirichlet"):
        raise ValueError(f"boundary must be 'free' or 'dirichlet', got {boundary!r}")
    if uncertainty not in ("jackknife", "bootstrap"):
        raise ValueError(f"uncertainty must be 'jackknife' or 'bootstrap', got {uncertainty!r}")
    if selection not in ("cv", "bic"):
        raise ValueError(f"selection must be 'cv' or 'bic', got {selection!r}")
    clock = _Clock()
    _check_identifiable(X, mask, min_range)
    if monotonic and (basis != "bspline" or degree == "auto"):
        raise ValueError("monotonic=True needs basis='bspline' with an integer degree "
                         "(a monotonic B-spline is a bound on its coefficient increments)")
    if variance is not None:
        variance = np.asarray(variance, float)
        if variance.shape != strain.shape:
            raise ValueError(f"variance shape {variance.shape} differs from strain {strain.shape}")
    n_comp = 3 if shear else 2
    comps = [0, 1, 2, 3] if use_rotation else [0, 1, 2]
    ps = float(np.mean(np.broadcast_to(np.asarray(pixel_size, float), (2,))))

    if degree == "auto":
        if basis == "linear":
            degrees = [1]
        else:
            degrees = list(range(1, int(max_degree) + 1))
    else:
        degrees = [int(degree)]
    # legendre responses always include degree 2, for the linearity test
    d_max = max(max(degrees), 2 if basis == "legendre" else 1)
    full_basis = LawBasis(basis, d_max)
    if basis == "bspline" and len(degrees) > 1:
        # B-spline families are not nested: each degree gets its own responses.
        raise ValueError("degree='auto' needs a nested basis; use basis='legendre' or give a degree")

    if solver is None:
        solver = get_solver(mask, pixel_size, stiffness, composition=X,
                            crystal_angle=crystal_angle,
                            boundary="dirichlet" if (boundary == "dirichlet" and
                                                     method == "strain_gap") else "free")
    elif method == "strain_gap" and solver.boundary != boundary:
        raise ValueError(f"the solver given has boundary={solver.boundary!r}, the fit "
                         f"boundary={boundary!r}")
    eig = _eigenstrain_fields(full_basis, X, mask, n_comp, crystal_angle)

    if method == "equilibrium_gap":
        from ._equilibrium_gap import equilibrium_gap_fit

        return equilibrium_gap_fit(strain, X, mask, solver, eig, full_basis, n_comp, degrees,
                                   crystal_angle=crystal_angle, pixel_size=ps,
                                   use_rotation=use_rotation, seed=seed)

    clock("setup")
    responses = _responses(solver, eig, show_progressbar)
    if dislocations not in ("fit", "ignore"):
        raise ValueError(f"dislocations must be 'fit' or 'ignore', got {dislocations!r}")
    clock("mechanics")
    cores, extra = _dislocation_fields(strain, mask, pixel_size) if (
        dislocations == "fit" and use_rotation) else (np.zeros((0, 2)), None)
    n_traces = 0
    if boundary == "dirichlet":
        # the data's own boundary displacement drives a known part of the field:
        # remove it from the data and, alike, from the nuisance fields
        strain = _remove_boundary_response(solver, strain, use_rotation)
        if extra is not None:
            extra = np.nan_to_num(_remove_boundary_response(solver, extra, use_rotation))
        traces = _reference_traces(solver, mask, use_rotation)
        if traces is not None:
            extra = traces if extra is None else np.concatenate([extra, traces])
            n_traces = len(traces)

    clock("dislocations")
    # --- resolution: given, from the registration, or estimated
    if composition_resolution is not None:
        sigmas = [float(composition_resolution) / FWHM_PER_SIGMA / ps]
        sigma_source = "given"
    elif source_pixel_size is not None:
        # the X-ray pixel (integration + bilinear resampling: sigma ~ pixel / 2, less
        # the Gaussian stand-in's shape error) is only a lower bound: the beam focus
        # blurs further. Estimate above it.
        floor = 0.5 * (1 - PSF_SHAPE_UNCERTAINTY) * float(source_pixel_size) / ps
        grid = SIGMA_GRID_PX if sigma_grid is None else sigma_grid
        # grid values next to the floor would make a degenerate parabola
        sigmas = sorted({floor} | {float(v) for v in grid if v > floor + 0.25})
        if max(sigmas) < 2 * floor:
            sigmas += [1.5 * floor, 2 * floor]
        sigma_source = "estimated (X-ray pixel from the registration as lower bound)"
    else:
        sigmas = sorted(float(v) for v in (sigma_grid if sigma_grid is not None else SIGMA_GRID_PX))
        sigma_source = "estimated"
    size = np.sqrt(mask.sum())
    if block_size is None:
        # Dislocation far fields (1/r) correlate residuals over long ranges: clusters
        # of a quarter of the particle size keep the sandwich covariance honest
        # (coverage measured in benchmarks/learning.py).
        block_size = int(max(8, round(size / 4), 3 * max(sigmas)))
    blocks = spatial_blocks(mask, block_size)

    # Maps compared after a blur of >= 1.5 px are oversampled: the fits run on a
    # grid pooled 2 x 2 (data and model pooled alike), one per pooling factor.
    grids = {}

    def grid(s):
        f = _pool_factor(s)
        if f not in grids:  # 4 x 4 from the 2 x 2 grid (a quarter of the work)
            grids[f] = (_Pooled(strain, responses, extra, mask, blocks, f) if f <= 2 else
                        grid(2).coarsen(f // 2))
        return grids[f]

    # --- resolution: estimated by a fixed-target fit when nothing gives it
    sel_info = {"block_size_px": int(block_size), "n_blocks": int(blocks.max() + 1)}
    if len(sigmas) > 1:
        sigma, sigma_sd, table = _estimate_resolution(
            grid(max(sigmas)), comps, sigmas,
            lambda des: [des.columns(n_comp, d_max, d) for d in degrees], show_progressbar,
            seed=seed, n_folds=n_folds, edge_band=boundary == "dirichlet")
        table["degree"] = degrees[table.pop("degree_index")]
        sel_info["resolution"] = table
    else:
        sigma, sigma_sd = sigmas[0], 0.0

    clock("resolution")
    # --- degree: spatially blocked cross-validation (or BIC) at that resolution
    g = grid(sigma)
    var_s = None
    if variance is not None:
        var_s = g.blur(g.pool(variance), sigma)
        if sigma > 0:
            var_s = var_s * _kernel_sq_sum(sigma)
    des = _Design(g.blur(g.strain, sigma), g.responses, g.mask, comps, g.blocks, var_s,
                  g.blur_model("extra", sigma), weight=g.weight)
    # one robust (IRLS) fit of the most flexible model; its weights serve all the
    # nested and mapped models below, each from the per-block Grams (p x p work)
    fit0 = robust_fit(des.A, des.y, des.comp, des.group, des.w0, n_components=len(comps),
                      covariance=False)
    w_fit = fit0.weights
    grams = BlockGrams.from_design(des.A, des.y, w_fit, des.group)
    if len(degrees) > 1:
        col_sets = [des.columns(n_comp, d_max, d) for d in degrees]
        if selection == "cv":
            err = blocked_cv(None, None, None, None, col_sets, n_folds=n_folds, seed=seed,
                             grams=grams)
            d_sel = degrees[one_standard_error_choice(err)]
        else:
            err = _bic_table(grams, col_sets, n_blocks=int(blocks.max() + 1), n_comps=len(comps))
            d_sel = degrees[int(np.argmin(err[:, 0]))]
        sel_info.update(criterion=selection, degrees=np.asarray(degrees),
                        errors=err.mean(axis=1), errors_fold_sd=err.std(axis=1))
    else:
        d_sel = degrees[0]
        sel_info["criterion"] = "none (degree given)"

    # An estimated resolution is uncertain, and the law depends on it: its share
    # of the covariance is J J^T var(sigma), J = d coef / d sigma. The model
    # columns do not depend on sigma (the nuisance fields' blur aside, which only
    # matters at the cores), so J = (A^T W A)^-1 A^T W dy/dsigma: one central
    # difference of the blurred data, no new design.
    clock("fit")
    dv = None
    if sigma_sd > 0:
        h = 0.25
        lo_, hi_ = max(sigma - h, 0.0), sigma + h
        dy = (g.blur(g.strain, hi_) - (g.blur(g.strain, lo_) if lo_ > 0 else g.strain))
        dy = np.nan_to_num(dy.ravel()[des.flat]) / (hi_ - lo_)
        dv = des.A.T @ (w_fit * dy)
    H_all = grams.H.sum(axis=0)

    n_ref = des.A.shape[1] - des.n_resp

    def fit_mapped(T):
        """Fit of the model A @ T (T: reduced parameters -> design columns) at the
        robust fit's weights, from the block Grams."""
        f = grams.fit(T, cov_method=uncertainty)
        f.weights = w_fit
        if dv is not None:
            J = _solve_normal(T.T @ H_all @ T, T.T @ dv)
            f.cov = f.cov + np.outer(J, J) * sigma_sd ** 2
        return f

    def fit_degree(d):
        cols = des.columns(n_comp, d_max, d)
        return cols, fit_mapped(np.eye(des.A.shape[1])[:, cols])

    lin = linear_weights(full_basis)

    def fit_linear():
        T = np.zeros((des.A.shape[1], n_comp + n_ref))
        for c in range(n_comp):
            T[c * d_max:(c + 1) * d_max, c] = lin
        T[des.n_resp:, n_comp:] = np.eye(n_ref)
        return fit_mapped(T)

    clock("resolution uncertainty")
    cols, fit = fit_degree(d_sel)
    nk = n_comp * d_sel
    # robust residual scale per data component, for the selected model
    z = (des.y - des.A[:, cols] @ fit.coef) * (1.0 if des.w0 is None else np.sqrt(des.w0))
    fit.scale = np.array([_mad(z[des.comp == j]) for j in range(len(comps))])
    if monotonic:
        fit.coef = _monotonic_coefficients(des.A[:, cols], des.y, fit, n_comp, d_sel)
    coef = fit.coef[:nk].reshape(n_comp, d_sel)
    cov = fit.cov[:nk, :nk]
    cov_w = fit.cov_white[:nk, :nk]
    dof = fit.n_clusters - 1
    ref = np.zeros(4)
    ref[comps] = fit.coef[nk:nk + des.n_off]
    burgers = fit.coef[nk + des.n_off:nk + des.n_off + 2 * len(cores)].reshape(-1, 2)
    if n_traces:
        # held edge: the reference strain is what multiplies its traces
        ref[:3] += fit.coef[len(fit.coef) - n_traces:]
    if fit.condition > 1e8:
        warnings.warn(f"ill-conditioned learning problem (condition number {fit.condition:.2e}): "
                      "the composition field does not separate the basis functions; lower the degree",
                      RuntimeWarning, stacklevel=3)

    # Vegard (degree 1) and the test of linearity against the best nonlinear degree
    vegard = _vegard_stats(fit_linear, n_comp)
    linearity = _linearity_test(fit_degree, n_comp, d_sel, basis)

    clock("law, Vegard, linearity")
    # prediction and residual maps (full grid)
    data = masked_gaussian(strain, mask, sigma) if sigma > 0 else strain
    pred = np.einsum("k,kcyx->cyx", fit.coef[:nk], responses[cols[:nk]])
    pred = pred + ref[:, None, None]
    pred = np.where(mask, pred, np.nan)
    resid = np.where(mask, data - pred, np.nan)
    if not use_rotation:
        resid[3] = np.nan

    clock("maps")
    lo, hi = np.quantile(X[mask], [0.005, 0.995])
    return LawFit(
        basis=LawBasis(basis, d_sel), coefficients=coef, covariance=cov,
        covariance_white=cov_w, dof=int(dof), reference=ref, n_components=n_comp,
        sigma_px=float(sigma), sigma_sd_px=float(sigma_sd), sigma_source=sigma_source,
        selection=dict(sel_info, timings_s=clock.times),
        x_range=(float(lo), float(hi)), noise=fit.scale, vegard=vegard, linearity=linearity,
        method=method, condition=fit.condition, prediction=pred, residual=resid,
        x_histogram=np.histogram(X[mask], bins=50, range=(0, 1))[0],
        dislocations={"positions_px": cores, "burgers_nm": burgers},
        body={"mask": mask, "n_extended": n_extended},
        settings=dict(crystal_angle=float(crystal_angle), pixel_size_nm=ps, boundary=boundary,
                      use_rotation=bool(use_rotation), shear=bool(shear), basis=basis,
                      degree=degree if degree == "auto" else int(degree), selection=selection,
                      block_size_px=int(block_size), n_folds=int(n_folds),
                      uncertainty=uncertainty),
    )


class _Clock:
    """Wall time per stage (s), reported with the fit: where the time goes."""

    def __init__(self):
        import time

        self._now = time.perf_counter
        self._t = self._now()
        self.times = {}

    def __call__(self, stage):
        t = self._now()
        self.times[stage] = self.times.get(stage, 0.0) + t - self._t
        self._t = t


def _monotonic_coefficients(A, y, fit, n_comp, d):
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


def _huber_loss(z, c=HUBER_C):
    a = np.abs(z)
    return np.where(a <= c, 0.5 * a * a, c * a - 0.5 * c * c)


def _remove_boundary_response(solver, fields, use_rotation=True):
    """Fields minus the response of the body to their own boundary displacement.

    For a body held at its measured edge (``boundary="dirichlet"``: a field of view
    that cuts the particle, or a clamped particle) the strain is

        S_D[eps0; u_b] = S_D[eps0; 0] + S_D[0; u_b],

    with u_b the displacement on the boundary nodes. u_b comes from the data
    (the least-squares integral of its displacement gradient,
    :meth:`~hyperspy_chemomech.mechanics.ParticleElasticity.integrate_gradient`),
    so S_D[0; u_b] is a known field: subtracted, the rest is linear in the law with
    the homogeneous-Dirichlet responses S_D[phi_k; 0]. The map d -> d - S_D[0; u_b(d)]
    is linear; it is applied alike to the data and to every nuisance column.

    Parameters
    ----------
    solver : ParticleElasticity
        Factorised with ``boundary="dirichlet"``.
    fields : numpy.ndarray, shape (4, ny, nx) or (n, 4, ny, nx)
        e11, e22, e12, theta; NaN = no data.

    Returns
    -------
    numpy.ndarray, same shape; NaN where ``fields`` is NaN or outside the body.
    """
    f = np.asarray(fields, float)
    single = f.ndim == 3
    f = f[None] if single else f
    ub = solver.measured_edge_displacement(f, use_rotation=use_rotation)
    sol = solver.solve(np.zeros(f[:, :3].shape), boundary_displacement=ub,
                       show_progressbar=False)
    own = np.asarray(sol.strain_and_rotation).reshape(f.shape)
    out = np.where(solver.mask, f - own, np.nan)
    return out[0] if single else out


def _reference_traces(solver, mask, use_rotation=True, tol=1e-3):
    """What a uniform reference strain leaves in the held-edge data.

    The reference strain (the 4D-STEM reference lattice) is no elastic strain, but
    it is in the measured edge displacement. Held at the edge, a body whose
    stiffness varies with X does not deform uniformly inside, so
    :func:`_remove_boundary_response` leaves ``ref_j (e_j - S_D[0; u_b(e_j)])``, a
    non-uniform field that correlates with X (on LFP50_P2, reference e11 = -0.045,
    it moved the [100] slope from 0.046 to 0.073). These fields (one per strain
    component) enter as nuisance columns, so the fit takes that trace out. A rigid
    rotation leaves none; with homogeneous stiffness nor do strains (the patch
    test: below 2e-6 of the unit strain, against 0.15-0.3 for C(X) between FePO4
    and LiFePO4), and None is returned.

    Returns
    -------
    numpy.ndarray, shape (3, 4, ny, nx), or None
    """
    unit = np.zeros((3, 4) + mask.shape)
    for j in range(3):
        unit[j, j][mask] = 1.0
    mapped = np.nan_to_num(_remove_boundary_response(solver, unit, use_rotation))
    return mapped if np.abs(mapped).max() > tol else None


def _dislocation_fields(strain, mask, pixel_size):
    """Cores found in the measured maps and their unit-Burgers-vector fields.

    The measured distortion is a displacement gradient, compatible everywhere but
    at dislocations, whatever the chemistry: its Nye content finds the cores
    without knowing the law.

    Returns
    -------
    cores : numpy.ndarray, shape (n, 2)
        Core positions (y, x) in pixels.
    fields : numpy.ndarray, shape (2 n, 4, ny, nx) or None
        For each core, the e11, e22, e12, theta maps of b = (1 nm, 0) and (0, 1 nm).
    """
    from ..decomposition import find_dislocations
    from ..simulate.dislocations import (
        edge_dislocation_gradient,
        gradient_to_components,
    )

    dy, dx = np.broadcast_to(np.asarray(pixel_size, float), (2,))
    found = find_dislocations(np.where(mask, strain, np.nan), (dy, dx), mask=mask)
    if len(found) == 0:
        return np.zeros((0, 2)), None
    cores = np.column_stack([found["y"] / dy, found["x"] / dx])
    ny, nx = mask.shape
    # all cores at once, on the body's bounding box: (n, h, w) positions from each core
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    x = (np.arange(xs[0], xs[-1] + 1)[None, None, :] - cores[:, 1, None, None]) * dx
    y = (np.arange(ys[0], ys[-1] + 1)[None, :, None] - cores[:, 0, None, None]) * dy
    x, y = np.broadcast_arrays(x, y)
    fields = np.zeros((len(cores), 2, 4, ny, nx))
    for k, b in enumerate(((1.0, 0.0), (0.0, 1.0))):
        g = edge_dislocation_gradient(x, y, b, core_radius=0.5 * min(dy, dx))
        fields[:, k, :, box[0], box[1]] = np.moveaxis(gradient_to_components(g), 0, 1)
    fields[..., ~mask] = 0.0
    return cores, fields.reshape((-1, 4, ny, nx))


def _parabolic_min(x, y):
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


def _pool_factor(sigma):
    """Pooling factor for maps compared after a Gaussian blur of ``sigma`` px.

    A pooled grid keeps >= 0.75 pooled px of blur: the box stays narrow next to
    the Gaussian, and it is applied to data and model alike.
    """
    return 1 if sigma < 1.5 else 2 if sigma < 4.5 else 4


class _Pooled:
    """Strain, responses and nuisance fields on a grid pooled by ``factor``.

    A Gaussian of sigma px on the fine grid acts as one of sigma / factor px here;
    data and model are pooled by the same (linear, masked-mean) operator, so the
    comparison stays consistent, at 1/factor^2 of the rows and 1/factor^3 of the
    blur cost.
    """

    def __init__(self, strain, responses, extra, mask, blocks, factor, strain_weight=None,
                 body=None, fine=None):
        f = int(factor)
        self._fine_mask = mask if fine is None else fine._fine_mask
        self._model = None  # weights, box and Fourier transforms for blur_model
        self.factor = f * (1 if fine is None else fine.factor)  # fine px per pixel here
        if f == 1:
            self.strain, self.responses, self.extra = strain, responses, extra
            self.mask, self.blocks, self.weight = mask, blocks, strain_weight
            self.body = body
            return
        self.strain, w, self.mask = pool(strain, mask, f, strain_weight)
        self.weight = np.nan_to_num(w)
        self.body = pool(np.ones(mask.shape), mask, f, body, finite=True)[1]  # body fraction
        self.responses = pool(responses, mask, f, body, finite=True)[0]
        self.extra = None if extra is None else pool(extra, mask, f, body, finite=True)[0]
        # each pooled pixel keeps the lowest block label among its body pixels
        big = blocks.max() + 1
        b = np.where(mask, blocks, big)
        ny, nx = mask.shape
        b = np.pad(b, ((0, -ny % f), (0, -nx % f)), constant_values=big)
        b = b.reshape(b.shape[0] // f, f, b.shape[1] // f, f).min(axis=(1, 3))
        self.blocks = np.where(self.mask, b, -1)

    def pool(self, fields):
        """Masked mean of full-resolution (..., ny, nx) maps over this grid's pixels."""
        if self.factor == 1:
            return fields
        return pool(fields, self._fine_mask, self.factor)[0]

    def coarsen(self, factor):
        """This grid pooled again by ``factor``."""
        return _Pooled(self.strain, self.responses, self.extra, self.mask, self.blocks,
                       factor, strain_weight=self.weight, body=self.body, fine=self)

    def blur(self, fields, sigma):
        """Masked Gaussian of ``sigma`` fine-grid px of data maps (NaN = missing) on this grid."""
        if fields is None or sigma <= 0:
            return fields
        return masked_gaussian(fields, self.mask, sigma / self.factor, weight=self.weight)

    def blur_model(self, name, sigma):
        """Masked Gaussian of the model fields ``"responses"`` or ``"extra"`` (0 off-body).

        Blurred with the data's weights (so a blurred datum and its prediction
        average the same pixels). The same sampled, truncated kernel as
        :func:`masked_gaussian`, applied in Fourier space: the transforms of the
        weighted fields are kept, so each further sigma costs one inverse
        transform.
        """
        fields = getattr(self, name)
        if fields is None or sigma <= 0:
            return fields
        if self._model is None:
            w = self.mask.astype(float) if self.weight is None else self.weight
            ys, xs = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
            box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
            self._model = {"w": w[(...,) + box], "box": box, "ft": {}}
        m = self._model
        box = m["box"]
        s = sigma / self.factor
        lw = int(3.5 * s + 0.5)  # scipy's kernel radius for truncate=3.5
        num = self._fft_blur(name, lambda: np.where(m["w"] > 0, np.nan_to_num(
            fields[(...,) + box]) * m["w"], 0.0), s, lw)
        den = self._fft_blur("_weight", lambda: m["w"], s, lw)
        out = np.zeros(fields.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[(...,) + box] = np.where(self.mask[box] & (den > 1e-3), num / den, 0.0)
        return out

    def _fft_blur(self, key, make, s, lw):
        """Zero-padded Gaussian (sigma ``s`` px, radius ``lw``) of cached maps, by FFT."""
        from scipy import fft

        ft = self._model["ft"]
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


def _estimate_resolution(g, comps, sigmas, law_columns, show_progressbar, n_boot=300, seed=0,
                         n_folds=5, edge_band=False):
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
    by a parabola through the best grid point and its neighbours; its standard
    deviation comes from a spatial block bootstrap of the profile.

    Parameters
    ----------
    g : _Pooled
        The maps, on a grid suited to a blur of ``max(sigmas)``.
    law_columns : callable
        ``law_columns(design) -> list`` of column sets, one per candidate degree
        (simplest first).

    Returns
    -------
    sigma : float
    sigma_sd : float
    table : dict
        ``sigma_px`` candidates, ``loss`` per candidate at the chosen degree,
        ``degree_index`` (into the candidate degrees), ``cv_loss`` (sigma x degree),
        ``target_sigma_px``, ``sd_px``.
    """
    sig = np.asarray(sigmas, dtype=float)
    T = float(sig.max())
    target = g.blur(g.strain, T)  # on grid g (pooled for T)
    extra_t = g.blur_model("extra", T)  # dislocation fields belong to the data side
    loss_b, cv_f, scale, w = [], [], None, None
    for s in progressbar(sig, show_progressbar=show_progressbar,
                         desc="composition resolution", leave=False):
        rs = g.blur_model("responses", float(np.sqrt(max(T * T - s * s, 0.0))))
        if w is None:  # rows are the same for every candidate (one target)
            rows_mask = g.mask
            if edge_band:  # leave out the band where the blur and S_D do not commute
                rows_mask = ndimage.binary_erosion(g.mask, iterations=int(np.ceil(T / g.factor)))
            des = _Design(target, rs, rows_mask, comps, g.blocks, extra=extra_t,
                          weight=g.weight)
            f = robust_fit(des.A, des.y, des.comp, des.group, des.w0, n_components=len(comps),
                           n_iter=3, covariance=False)
            w, scale = f.weights, f.scale
            w0 = np.ones(des.y.size) if des.w0 is None else des.w0
            _, block = np.unique(des.group, return_inverse=True)
            n_blocks = int(block.max()) + 1
            k_folds = int(min(n_folds, n_blocks))
            fold = fold_assignment(n_blocks, k_folds, seed)
            row_fold = fold[block]
            col_sets = law_columns(des)
            rows = np.arange(des.y.size)
            to_block = sparse.csr_matrix((np.ones(rows.size), (block, rows)))
            to_fold = sparse.csr_matrix((np.ones(rows.size), (row_fold, rows)),
                                        shape=(k_folds, rows.size))
        else:
            des.set_responses(rs)
        grams = BlockGrams.from_design(des.A, des.y, w, des.group)
        # normal equations of the whole set (index 0) and of each training set
        Ht, vt = grams.H.sum(axis=0), grams.v.sum(axis=0)
        onehot = fold == np.arange(k_folds)[:, None]
        Hs = Ht - np.concatenate([np.zeros((1,) + Ht.shape),
                                  np.tensordot(onehot, grams.H, 1)])
        vs = vt - np.concatenate([np.zeros((1,) + vt.shape), onehot @ grams.v])
        # coefficients of every (degree, whole set / training set), zero outside its
        # columns: all predictions in one product
        B = np.zeros((len(col_sets), 1 + k_folds, des.A.shape[1]))
        for d, cols in enumerate(col_sets):
            B[d][:, cols] = _solve_normal(Hs[:, cols][:, :, cols], vs[:, cols])
        P = (des.A @ B.reshape(-1, B.shape[-1]).T).reshape(rows.size, len(col_sets), -1)
        inv = (1.0 / scale[des.comp])[:, None]
        z = (des.y[:, None] - P[:, :, 0]) * inv                      # (n, degree)
        zc = (des.y[:, None] - P[rows, :, 1 + row_fold]) * inv       # held-out
        loss_b.append((to_block @ (w0[:, None] * _huber_loss(z))).T)  # (degree, block)
        cv_f.append((to_fold @ (w0[:, None] * _huber_loss(zc))).T)    # (degree, fold)
        # one IRLS step per candidate: the next one starts from the Huber weights of
        # the most flexible law (neighbouring candidates differ little)
        w = w0 / scale[des.comp] ** 2 * _huber(z[:, -1], HUBER_C)
    loss_b = np.array(loss_b)                 # (n_sigma, n_degree, n_blocks)
    counts = np.bincount(block, w0)
    per_fold = np.array(cv_f) / np.bincount(row_fold, w0)  # (n_sigma, n_degree, n_folds)
    # degree: simplest within one standard error of the best, each at its best sigma
    best_s = per_fold.mean(axis=2).argmin(axis=0)
    k = one_standard_error_choice(per_fold[best_s, np.arange(len(col_sets))])
    per_block = loss_b[:, k]                  # (n_sigma, n_blocks)
    loss = per_block.sum(axis=1) / counts.sum()
    sigma, i = _parabolic_min(sig, loss)
    sigma, i = float(sigma), int(i)
    if i == len(sig) - 1:
        warnings.warn(f"the composition map looks at least as blurred as the largest candidate "
                      f"(sigma = {T:g} px); give composition_resolution explicitly",
                      RuntimeWarning, stacklevel=4)
    rng = np.random.default_rng(seed)
    G = counts.size
    draws = rng.integers(0, G, (n_boot, G)) + G * np.arange(n_boot)[:, None]
    c = np.bincount(draws.ravel(), minlength=n_boot * G).reshape(n_boot, G)
    boot = _parabolic_min(sig, (c @ per_block.T) / (c @ counts)[:, None])[0]
    # sampling spread of the estimate, plus the approximation of a real PSF
    # (pixel integration, interpolation, beam) by a Gaussian: equivalent widths by
    # different criteria differ by ~13 % (PSF_SHAPE_UNCERTAINTY)
    sd = float(np.hypot(boot.std(ddof=1), PSF_SHAPE_UNCERTAINTY * sigma))
    return float(sigma), sd, {"sigma_px": sig, "loss": loss, "degree_index": int(k),
                              "cv_loss": per_fold.mean(axis=2), "target_sigma_px": T,
                              "sd_px": sd}


def _bic_table(grams, col_sets, n_blocks, n_comps):
    n = grams.n_rows
    H, v, c = grams.H.sum(axis=0), grams.v.sum(axis=0), grams.c.sum()
    wmean = grams.m.sum() / n
    out = np.empty((len(col_sets), 1))
    # effective sample size: one independent datum per block and component
    n_eff = min(n, n_blocks * n_comps * 10)
    for k, cols in enumerate(col_sets):
        Hc, vc = H[np.ix_(cols, cols)], v[cols]
        beta = _solve_normal(Hc, vc)
        rss = max(c - 2 * beta @ vc + beta @ Hc @ beta, 1e-300) / wmean
        out[k, 0] = n_eff * np.log(rss / n) + len(cols) * np.log(n_eff)
    return out


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


def _vegard_stats(fit_linear, n_comp):
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


def _linearity_test(fit_degree, n_comp, d_sel, basis):
    """Wald test that all nonlinear coefficients vanish (nested Legendre basis)."""
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


def resolve_stiffness(material, plane="stress"):
    """Plane stiffness (crystal frame, GPa) from a material description.

    Parameters
    ----------
    material : str, Material, array_like or pair
        A material name (``"LiFePO4"``: homogeneous C), a
        :class:`~hyperspy_chemomech.mechanics.Material`, a 6x6 Voigt stiffness
        (GPa), or a pair of any of these, ``(X = 0 end member, X = 1 end member)``,
        for a stiffness linear in X (e.g. ``("FePO4", "LiFePO4")``).
    plane : {"stress", "strain"}

    Returns
    -------
    numpy.ndarray (3, 3) or tuple of two
    """
    from ..mechanics import Material, get_material, plane_stiffness

    if plane not in ("stress", "strain"):
        raise ValueError(f"plane must be 'stress' or 'strain', got {plane!r}")

    def one(m):
        if isinstance(m, str):
            m = get_material(m)
        if isinstance(m, Material):
            return plane_stiffness(m.stiffness, plane=plane)
        a = np.asarray(m, dtype=float)
        if a.shape == (6, 6):
            return plane_stiffness(a, plane=plane)
        raise ValueError(
            f"material must be a name, a Material, a 6x6 stiffness or a pair of those; got "
            f"an array of shape {a.shape}"
        )

    if isinstance(material, (tuple, list)) and len(material) == 2 and not (
        np.ndim(material[0]) == 1 and np.size(material[0]) == 6
    ):
        return (one(material[0]), one(material[1]))
    return one(material)
