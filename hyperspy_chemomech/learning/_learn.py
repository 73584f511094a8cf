"""Learn the eigenstrain law eps0(X) from registered strain and composition maps.

:func:`learn_law` reads as the steps of a fit, each in the module named after it:

1. the inputs checked and the body completed (:mod:`._inputs`), the options
   grouped and checked (:mod:`._options`);
2. the forward responses S[phi_k(X)] of the basis eigenstrains, one
   factorisation (:mod:`._design`);
3. the nuisance terms: dislocation fields, a held boundary's response
   (:mod:`._nuisance`);
4. the composition's resolution, given or estimated with the degree
   (:mod:`._resolution`);
5. the strain-gap fit at that resolution: degree, covariance, Vegard slopes and
   the linearity test (:mod:`._strain_gap`, :mod:`._law`).

``method="equilibrium_gap"`` branches off after step 2 (:mod:`._equilibrium_gap`).
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._utils import with_one_blas_thread
from ._bases import LawBasis
from ._composition_errors import (
    ErrorPropagationOptions,
    apply_propagation,
    as_error_model,
    propagate,
)
from ._design import PooledGrids, eigenstrain_fields, forward_responses
from ._inputs import mean_pixel_size, prepare_body
from ._law import LawFit, composition_summary, linearity_test, vegard_stats
from ._nuisance import nuisance_fields, split_nuisance
from ._options import (
    BasisOptions,
    BodyOptions,
    LearnOptions,
    NuisanceOptions,
    ResolutionOptions,
    SelectionOptions,
    UncertaintyOptions,
)
from ._resolution import candidate_sigmas, estimate_resolution
from ._strain_gap import StrainGapFits, fit_blocks, model_maps


@with_one_blas_thread
def learn_law(strain, X, pixel_size, stiffness, *, crystal_angle=0.0, mask=None, variance=None,
              composition_resolution=None, source_pixel_size=None, basis="legendre",
              degree="auto", max_degree=6, method="strain_gap", boundary="free",
              use_rotation=True, shear=False, selection="cv", n_folds=5, block_size=None,
              sigma_grid=None, min_range=0.1, monotonic=False, dislocations="fit",
              dislocation_lattice=None, extend_body=True, uncertainty="jackknife", show_progressbar=None, seed=0,
              solver=None, composition_uncertainty=None, composition_errors=None):
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
        adds its own blur): the resolution is estimated from there up, leaving out
        of that estimate a band ``EDGE_BAND_XRAY_PIXELS`` (3) X-ray pixels wide along
        the body's edge, where the X-ray map mixes particle and vacuum.
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
        (see :func:`~._inputs.extend_body`). The number of pixels added is reported.
    uncertainty : {"jackknife", "bootstrap"}
        Covariance of the coefficients: cluster jackknife over spatial blocks
        (default, CR3) or spatial block bootstrap; both are robust to spatially
        correlated residuals, unlike the white-noise formula.
    dislocations : {"fit", "ignore"}
        ``"fit"`` (default): find edge dislocations in the measured maps (their Nye
        content: the chemical and elastic parts are compatible and have none) and
        fit their long-range fields (isotropic Volterra, Burgers vector free) as
        nuisance terms, so that their 1/r strain does not leak into the law.
    dislocation_lattice : array_like, shape (2,) or (k, 2), optional
        In-plane lattice parameters (a, c) (nm): a found core is fitted only if its
        Burgers content is a lattice translation (length test, see
        :func:`~hyperspy_chemomech.decomposition.find_dislocations`).
    show_progressbar : bool, optional
    seed : int
        Seed of the fold assignment.
    solver : ParticleElasticity, optional
        A solver already factorised for this mask and stiffness (reused).
    composition_uncertainty : CompositionErrors or numpy.ndarray, optional
        Errors of X carried into the law (:mod:`._composition_errors`): a
        :class:`~._composition_errors.CompositionErrors` (how they were made: the
        per-pixel sigma on the X-ray grid, the resampling onto this grid, the
        registration's covariance), or a (ny, nx) map of sigma(X) on this grid
        (independent pixels). The coefficients are corrected for the attenuation
        (SIMEX) and their covariance carries the correction's uncertainty; the
        Vegard slopes report each source's standard error. ``None``: X exact.
    composition_errors : ErrorPropagationOptions, optional
        Draws of that propagation (levels, draws per level, seed).

    Returns
    -------
    LawFit
    """
    opts = LearnOptions(
        method=method, use_rotation=use_rotation,
        basis=BasisOptions(basis, degree, max_degree, shear=shear, monotonic=monotonic),
        resolution=ResolutionOptions(composition_resolution, source_pixel_size, sigma_grid),
        selection=SelectionOptions(selection, n_folds, seed),
        body=BodyOptions(boundary, extend_body, min_range),
        nuisance=NuisanceOptions(dislocations, dislocation_lattice),
        uncertainty=UncertaintyOptions(uncertainty, block_size))
    clock = _Clock()
    body_report = {}
    X_given = X
    strain, X, mask, variance, n_extended = prepare_body(strain, X, mask, pixel_size, variance,
                                                         opts.body, report=body_report)
    # where X was measured (before the rim was added); the input was validated above
    support = np.isfinite(np.asarray(X_given, dtype=float))
    pixel_nm = mean_pixel_size(pixel_size)
    n_comp, comps, full_basis = opts.basis.n_components, opts.components, opts.basis.full_basis()
    solver = _solver_for(solver, mask, pixel_size, stiffness, X, crystal_angle, opts)
    eig = eigenstrain_fields(full_basis, X, mask, n_comp, crystal_angle)
    if opts.method == "equilibrium_gap":
        from ._equilibrium_gap import equilibrium_gap_fit

        return equilibrium_gap_fit(strain, X, mask, solver, eig, full_basis, n_comp,
                                   opts.basis.degrees, crystal_angle=crystal_angle,
                                   pixel_size=pixel_nm, use_rotation=use_rotation,
                                   seed=opts.selection.seed)
    clock("setup")
    prob = strain_gap_problem(strain, mask, pixel_size, variance, solver, eig, opts,
                              show_progressbar, clock)
    fits, sel_info, sigmas = prob.fits, prob.selection, prob.sigmas
    strain, cores, extra, responses = prob.strain, prob.cores, prob.extra, prob.responses
    sigma, sigma_sd, sigma_source = fits.sigma, fits.sigma_sd, prob.sigma_source
    blocks, block_size = prob.blocks, prob.block_size
    d_sel, selection_table = fits.select_degree(sel_info["n_blocks"])
    sel_info.update(selection_table)
    clock("fit")
    fits.include_resolution_uncertainty()
    clock("resolution uncertainty")
    cols, fit = fits.fit_selected(d_sel)
    _warn_if_ill_conditioned(fit.condition)
    vegard = vegard_stats(fits.fit_linear, n_comp)
    linearity = linearity_test(fits.fit_degree, n_comp, d_sel, opts.basis.kind)
    clock("law, Vegard, linearity")
    n_law = n_comp * d_sel
    errors = None
    if composition_uncertainty is not None:
        model = as_error_model(composition_uncertainty, X.shape)
        prop = propagate(fits, solver, X, mask, crystal_angle, d_sel, model,
                         composition_errors or ErrorPropagationOptions(),
                         support=support if support.shape == mask.shape else None,
                         context=None if len(sigmas) == 1 else dict(
                             strain=strain, extra=extra, blocks=blocks, sigmas=sigmas,
                             variance=variance, xray_pixel=_xray_pixel(opts, pixel_nm)))
        vegard, errors = apply_propagation(fit, vegard, prop, n_law, sigma_sd > 0)
        clock("composition errors")
    reference, burgers = split_nuisance(fit.coef, comps, n_law, n_cores=len(cores))
    prediction, residual = model_maps(strain, mask, sigma, responses[cols[:n_law]],
                                      fit.coef[:n_law], reference, use_rotation)
    clock("maps")
    return LawFit(
        basis=LawBasis(opts.basis.kind, d_sel), coefficients=fit.coef[:n_law].reshape(n_comp, d_sel),
        covariance=fit.cov[:n_law, :n_law], covariance_white=fit.cov_white[:n_law, :n_law],
        dof=int(fit.n_clusters - 1), reference=reference, n_components=n_comp,
        sigma_px=float(sigma), sigma_sd_px=float(sigma_sd), sigma_source=sigma_source,
        selection=dict(sel_info, timings_s=clock.times), noise=fit.scale, vegard=vegard,
        linearity=linearity, method=method, condition=fit.condition, prediction=prediction,
        residual=residual, **composition_summary(X, mask),
        dislocations={"positions_px": cores, "burgers_nm": burgers},
        body={"mask": mask, "n_extended": n_extended, **body_report}, errors=errors,
        settings=dict(crystal_angle=float(crystal_angle), pixel_size_nm=pixel_nm,
                      boundary=boundary, use_rotation=bool(use_rotation), shear=bool(shear),
                      basis=basis, degree=degree if degree == "auto" else int(degree),
                      selection=selection, block_size_px=int(block_size), n_folds=int(n_folds),
                      uncertainty=uncertainty, max_degree=int(max_degree),
                      dislocations=dislocations, seed=seed, extend_body=extend_body,
                      method=method, monotonic=bool(monotonic), min_range=float(min_range)),
    )


@dataclass
class StrainGapProblem:
    """Steps 2-4 of :func:`learn_law` done: what the degree choice and the fits start from."""

    fits: StrainGapFits        #: the robust fit's weights and block Grams at ``sigma``
    strain: np.ndarray         #: the data as fitted (less a held edge's response)
    responses: np.ndarray      #: (n_comp * d_max, 4, ny, nx) forward responses
    cores: np.ndarray          #: (n, 2) dislocation cores (y, x), px
    extra: np.ndarray          #: nuisance fields, or None
    blocks: np.ndarray         #: spatial block labels
    block_size: int
    sigmas: list               #: candidate (or the given) PSF sigmas, px
    sigma_source: str
    selection: dict            #: block size, number of blocks, the resolution's table


def strain_gap_problem(strain, mask, pixel_size, variance, solver, eig, opts,
                       show_progressbar=None, clock=None, responses=None):
    """Forward responses, nuisance fields, resolution and the robust fit (steps 2-4).

    Shared by :func:`learn_law` and the collection engine
    (:mod:`._collection`), which keeps only the block Grams of each member.

    Parameters
    ----------
    strain, mask, variance : numpy.ndarray
        As returned by :func:`~._inputs.prepare_body`.
    pixel_size : float or (float, float)
        nm.
    solver : ParticleElasticity
    eig : numpy.ndarray
        Basis eigenstrains (:func:`~._design.eigenstrain_fields`).
    opts : LearnOptions
    show_progressbar : bool, optional
    clock : callable, optional
        ``clock(stage)`` records the time of each stage.
    responses : numpy.ndarray, optional
        The forward responses of ``eig``, (n, 4, ny, nx), when the caller made
        them (the collection engine's, corrected for the blur's commutator);
        default ``solver``'s responses of ``eig``.

    Returns
    -------
    StrainGapProblem
    """
    clock = clock or (lambda stage: None)
    pixel_nm = mean_pixel_size(pixel_size)
    n_comp, comps = opts.basis.n_components, opts.components
    if responses is None:
        responses = forward_responses(solver, eig, show_progressbar)
    clock("mechanics")
    strain, cores, extra = nuisance_fields(strain, mask, pixel_size, solver, opts)
    clock("dislocations")

    # resolution: given, or estimated jointly with the degree on candidate sigmas
    sigmas, sigma_source = candidate_sigmas(opts.resolution, pixel_nm)
    blocks, block_size = fit_blocks(mask, sigmas, opts.uncertainty.block_size)
    # maps compared after a blur of >= 1.5 px are oversampled: the fits run on pooled grids
    grids = PooledGrids(strain, responses, extra, mask, blocks)
    sel_info = {"block_size_px": int(block_size), "n_blocks": int(blocks.max() + 1)}
    sigma, sigma_sd = sigmas[0], 0.0
    if len(sigmas) > 1:
        degrees, d_max = opts.basis.degrees, opts.basis.d_max
        sigma, sigma_sd, table = estimate_resolution(
            grids.at(max(sigmas)), comps, sigmas,
            lambda design: [design.columns(n_comp, d_max, d) for d in degrees],
            show_progressbar, seed=opts.selection.seed, n_folds=opts.selection.n_folds,
            edge_band=opts.body.boundary == "dirichlet",
            xray_pixel=_xray_pixel(opts, pixel_nm),
            floor=opts.resolution.source_pixel_size is not None)
        table["degree"] = degrees[table.pop("degree_index")]
        sel_info["resolution"] = table
    clock("resolution")

    # the robust fit at that resolution: its weights and block Grams serve every model
    fits = StrainGapFits(grids.at(sigma), sigma, sigma_sd, variance, opts)
    return StrainGapProblem(fits, strain, responses, cores, extra, blocks, block_size,
                            sigmas, sigma_source, sel_info)


def _solver_for(solver, mask, pixel_size, stiffness, X, crystal_angle, opts):
    """The elasticity solver of the body: the one given (checked), or a cached one."""
    from ..mechanics import get_solver

    if solver is None:
        return get_solver(mask, pixel_size, stiffness, composition=X,
                          crystal_angle=crystal_angle, boundary=opts.solver_boundary)
    if opts.method == "strain_gap" and solver.boundary != opts.body.boundary:
        raise ValueError(f"the solver given has boundary={solver.boundary!r}, the fit "
                         f"boundary={opts.body.boundary!r}")
    return solver


def _xray_pixel(opts, pixel_nm):
    """The composition's source (X-ray) pixel in strain pixels, or None when unknown."""
    src = opts.resolution.source_pixel_size
    return None if src is None else float(src) / pixel_nm


def _warn_if_ill_conditioned(condition):
    # stacklevel 4: this helper, learn_law, its BLAS-thread wrapper, the caller
    if condition > 1e8:
        warnings.warn(f"ill-conditioned learning problem (condition number {condition:.2e}): "
                      "the composition field does not separate the basis functions; lower the "
                      "degree", RuntimeWarning, stacklevel=4)


class _Clock:
    """Wall time per stage (s), reported with the fit: where the time goes."""

    def __init__(self):
        self._now = time.perf_counter
        self._t = self._now()
        self.times = {}

    def __call__(self, stage):
        t = self._now()
        self.times[stage] = self.times.get(stage, 0.0) + t - self._t
        self._t = t
