"""One eigenstrain law from many particles (or from the frames of an operando series).

Each member m of a collection has its own nuisance terms (reference strain and
rotation, composition resolution, dislocation cores, a held edge's traces), its
own crystal frame, stiffness, grid and pixel size; the law's coefficients theta
are shared. The strain-gap problem of one member is what :func:`~._learn.learn_law`
sets up (:func:`~._learn.strain_gap_problem`): one robust fit whose weights give
per-block Gram matrices over [law | nuisance] columns. Eliminating the nuisance
(Schur complement)

    Hr_m = H_ll - H_ln H_nn^-1 H_nl,   vr_m = v_l - H_ln H_nn^-1 v_n,

leaves each member as a few L x L blocks (L = law columns), the same for every
spatial block left out (the cluster jackknife). The shared law solves
(sum_m Hr_m) theta = sum_m vr_m; its covariance is the cluster (CR3) jackknife
over all blocks of all members, plus each member's estimated-resolution share,
plus the members' common model error: a random effect u_m ~ N(0, Tau) on each
member's law, Tau estimated from how far the members' own laws scatter beyond
their own noise (:mod:`._collection_model_error`), which adds
H^-1 (sum_m Hr_m Tau Hr_m) H^-1;
a member's own law is its fit alone (exactly :func:`learn_law` at that degree).
Nothing is quadratic in the number of members, and only the block Grams (a few
tens of kB per member) leave the member's worker.

The homogeneity test compares each member's law with the shared law of the
others: a cluster-robust Wald statistic with the small-sample F reference the
single fit's linearity test uses (so that correlated residuals do not inflate
it), Holm-corrected over members; the collection is rejected when any member is.
It asks whether one law explains every member up to each member's own noise:
on synthetic members that scatter ~2x beyond their own noise (a misfit of the
forward model that differs between outlines and composition patterns; worst for
core-shell patterns in diamond outlines) it rejects half of the homogeneous
collections of 20. By default it also allows for the members' common model
error Tau (estimated robustly, from below: members far off left out), with a
Satterthwaite F reference: false alarms 0.125 instead of 0.50, detections of 3
odd members unchanged (1.00; see :data:`._collection_model_error.EXCLUDE_P`).

The misfit itself is mostly the blur's commutator with the body's mechanics:
resolution matching compares B[strain] with S[phi(B X)], which is exact only
where the blur B and the elasticity S of the body commute (an infinite,
homogeneous body); on a finite particle with free edges B S - S B leaves a
misfit that depends on the outline and the pattern (measured on one member, a
core-shell pattern in a diamond outline, noise-free, composition blurred by
exactly the model's Gaussian at the true width: law off by (+0.5, -4.2)e-4;
not the stiffness C(X) (the same with a homogeneous one), not the edge rows
(leaving out a band of 2 / 4 / 8 px along the edge makes it worse), not the
kernel's shape (the strain passed through the X-ray map's own operator leaves it)).
Each member's model is corrected for it to first order, at the member's own
law as a pilot (:func:`commutator_offset`, ``commutator=True``; one solve): what
remains is second order, largest for core-shell patterns.

An operando series (one particle, same grid) shares its body: one factorisation
serves every frame (with C(X), each frame's solve is conjugate gradients
preconditioned by the first frame's factor, to 1e-12); frames may be registered
to the first by phase correlation of their outlines.

With a ``dask.distributed`` client, each member (or chunk of frames) is one task
on plain arrays; the shared fit runs on the client.
"""

import time
import warnings
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice

import numpy as np
from scipy import ndimage, stats

from .._utils import one_blas_thread, progressbar
from ._bases import LawBasis
from ._collection_model_error import EXCLUDE_P, effective_dof, member_model_error
from ._design import eigenstrain_fields
from ._fit import (
    BlockGrams, FitResult, _mad, _solve_stack, blocked_cv, one_standard_error_choice,
)
from ._inputs import mean_pixel_size, prepare_body
from ._law import (
    LawFit,
    law_columns,
    linearity_test,
    vegard_map,
    vegard_stats,
)
from ._nuisance import split_nuisance
from ._options import (
    BasisOptions,
    BodyOptions,
    LearnOptions,
    NuisanceOptions,
    ResolutionOptions,
    SelectionOptions,
    UncertaintyOptions,
)
from ._resolution import add_resolution_covariance, sigma_score


# --------------------------------------------------------------------------- per member
@dataclass
class MemberBlocks:
    """What one member hands back: its block Grams and a few numbers (no maps).

    Columns of the Grams: the law's ``n_law`` (``n_comp * d_max``, nested basis),
    one reference offset per fitted data component, then the nuisance fields
    (two per dislocation core, then a held edge's reference traces).
    """

    grams: BlockGrams
    n_law: int
    comps: list                      #: data components fitted
    n_cores: int
    cores: np.ndarray                #: (n, 2) (y, x) px
    score: np.ndarray                #: A^T W dy/dsigma (resolution), or None
    sigma_px: float
    sigma_sd_px: float
    sigma_source: str
    noise: np.ndarray                #: robust residual scale per data component (full model)
    x_range: tuple
    x_histogram: np.ndarray
    mask: np.ndarray                 #: the body
    n_extended: int
    block_size: int
    shift_px: tuple = (0.0, 0.0)     #: drift applied to register the frame (operando)
    #: for a resolution shared by the members: the block Grams at each of
    #: ``joint_sigmas_px`` (the member's robust weights held, an edge band left out),
    #: and the member's resolution table (held-out loss per sigma and degree)
    joint_grams: list = None
    joint_sigmas_px: np.ndarray = None
    resolution_table: dict = None
    xray_pixel_px: float = None      #: X-ray pixel (strain px) the composition came from
    factorised: bool = False         #: a factorisation was made for this member
    #: width (strain px) of the blur the model was corrected at (commutator_offset)
    commutator_sigma_px: float = None
    timings_s: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def n_blocks(self):
        return int(self.grams.ids.size)


def member_blocks(strain, X, pixel_size, stiffness, options, crystal_angle=0.0, mask=None,
                  variance=None, like=None, joint=False, commutator=False):
    """The strain-gap problem of one member, reduced to its block Grams.

    Parameters
    ----------
    strain : numpy.ndarray, shape (4, ny, nx)
    X : numpy.ndarray, shape (ny, nx)
    pixel_size : float or (float, float)
        nm.
    stiffness : array_like or pair or callable
        Plane stiffness (crystal frame, GPa), as :func:`~._learn.learn_law`.
    options : LearnOptions
    crystal_angle : float
        rad.
    mask : numpy.ndarray of bool, optional
    variance : numpy.ndarray, optional
    like : ParticleElasticity, optional
        The solver of a member with the same body (operando): its factorisation
        is reused (no new one).
    joint : bool
        Also hand back what a resolution shared by all members needs
        (:func:`joint_grams`), when the resolution is estimated.
    commutator : bool
        Correct the law's responses for the blur's commutator with the body's
        mechanics (:func:`commutator_offset`), at the given resolution or the
        X-ray pixel's variance-matched width (none when neither is known).

    Returns
    -------
    member : MemberBlocks
    solver : ParticleElasticity
    """
    from ..mechanics import ParticleElasticity
    from ._learn import _Clock, strain_gap_problem

    with one_blas_thread():
        clock = _Clock()
        report = {}
        strain, X, mask, variance, n_ext = prepare_body(strain, X, mask, pixel_size, variance,
                                                        options.body, report=report)
        comp_dependent = isinstance(stiffness, (tuple, list)) or callable(stiffness)
        if like is not None and not comp_dependent and np.array_equal(like.mask, mask):
            solver = like                      # homogeneous C: the very same operator
        else:
            # not the solver cache: members may run in threads, and a collection would
            # only push the user's own solvers out of it
            solver = ParticleElasticity(mask, pixel_size=pixel_size, stiffness=stiffness,
                                        composition=np.where(mask, X, 0.0),
                                        crystal_angle=crystal_angle,
                                        boundary=options.solver_boundary)
        fresh = solver._factor is None and (like is None or solver is like)
        clock("setup")
        solver.factorize(like=like if like is not None and solver is not like else None)
        clock("factorisation")
        eig = eigenstrain_fields(options.basis.full_basis(), X, mask,
                                 options.basis.n_components, crystal_angle)
        prob = strain_gap_problem(strain, mask, pixel_size, variance, solver, eig, options,
                                  show_progressbar=False, clock=clock)
        fits = prob.fits
        clock("grams")
        from ._fit import _solve_normal

        sigma_c = commutator_sigma(options, pixel_size) if commutator else None
        if sigma_c is not None:
            # the member's own most flexible law as the pilot: the correction is
            # first order, so the pilot's error enters it only at second order
            pilot = _solve_normal(fits.grams.H.sum(axis=0), fits.grams.v.sum(axis=0))
            fits.offset_data(commutator_offset(solver, eig, prob.responses,
                                               pilot[:eig.shape[0]], mask, sigma_c))
            clock("commutator")
        score = None
        if fits.sigma_sd > 0:
            score = sigma_score(fits.grid, fits.design, fits.sigma, fits.weights)
        # robust residual scale per data component of the most flexible model
        d = fits.design
        g = fits.grams
        beta = _solve_normal(g.H.sum(axis=0), g.v.sum(axis=0))
        z = (d.y - d.A @ beta) * (1.0 if d.w0 is None else np.sqrt(d.w0))
        noise = np.array([_mad(z[d.comp == j]) for j in range(len(options.components))])
        joint_g = None
        if joint and len(prob.sigmas) > 1:
            joint_g = joint_grams(fits, prob.sigmas, options)
        clock("grams")
        iterations = getattr(solver._factor, "iterations", None)
        if like is not None and solver is not like and iterations:
            report["cg_iterations"] = float(np.mean(iterations))   # solves by the shared factor
        lo, hi = np.quantile(X[mask], [0.005, 0.995])
        member = MemberBlocks(
            grams=g, n_law=options.basis.n_components * options.basis.d_max,
            comps=list(options.components), n_cores=len(prob.cores), cores=prob.cores,
            score=score, sigma_px=float(fits.sigma), sigma_sd_px=float(fits.sigma_sd),
            sigma_source=prob.sigma_source, noise=noise, x_range=(float(lo), float(hi)),
            x_histogram=np.histogram(X[mask], bins=50, range=(0, 1))[0], mask=mask,
            n_extended=int(n_ext), block_size=int(prob.block_size), factorised=bool(fresh),
            timings_s=dict(clock.times), joint_grams=joint_g, commutator_sigma_px=sigma_c,
            joint_sigmas_px=None if joint_g is None else np.asarray(prob.sigmas, float),
            resolution_table=prob.selection.get("resolution"),
            xray_pixel_px=None if options.resolution.source_pixel_size is None else
            float(options.resolution.source_pixel_size) / mean_pixel_size(pixel_size),
            settings=dict(pixel_size_nm=mean_pixel_size(pixel_size),
                          crystal_angle=float(crystal_angle), **{
                              k: v for k, v in report.items() if np.isscalar(v)}))
    return member, solver


def commutator_sigma(options, pixel_size):
    """Blur width (strain px) for :func:`commutator_offset`: the given resolution, else the
    X-ray pixel's variance-matched width (the shared fit's floor), else None."""
    r = options.resolution
    pixel_nm = mean_pixel_size(pixel_size)
    if r.composition_resolution is not None:
        from ..fields import FWHM_PER_SIGMA

        sigma = float(r.composition_resolution) / FWHM_PER_SIGMA / pixel_nm
    elif r.source_pixel_size is not None:
        sigma = VARIANCE_MATCHED * float(r.source_pixel_size) / pixel_nm
    else:
        return None
    return sigma if sigma > 0 else None


def commutator_offset(solver, eig, responses, coef, mask, sigma):
    """The blur's commutator with the body's mechanics, to first order, at a pilot law.

    Resolution matching compares the measured strain blurred by B (the masked
    Gaussian of ``sigma`` px) with the response to the blurred composition,
    S[phi(B X)]: exact where B and the body's mechanics S commute (an infinite,
    homogeneous body), not on a finite particle with traction-free edges, where
    B S[phi(X)] - S[B phi(X)] (the commutator) is a misfit that depends on the
    outline and the composition pattern. With the observed X_o = B X in place of
    the unknown X, the commutator of the law ``phi = sum_k c_k phi_k`` is estimated as

        K[c] = B S[phi(X_o)] - S[B phi(X_o)]      (exact to first order in the blur's variance)

    which the model adds to its responses. K is linear in the law's coefficients,
    and itself a small fraction of the response, so it is evaluated once, at a pilot
    law ``coef`` (the member's own uncorrected fit), and taken off the data
    (:meth:`~._strain_gap.StrainGapFits.offset_data`): the pilot's error enters at
    second order. One forward solve (the exact linear form, each column's
    responses corrected, costs one per law column).

    Measured (synthetic members of ~100 x 170 px, X-ray pixels 4x coarser,
    noise-free, sigma = 2 px): member laws' errors ~1-3e-4 -> ~0.1-0.5e-4 except
    core-shell patterns (~4e-4 remain, second order).

    Parameters
    ----------
    solver : ParticleElasticity
    eig : numpy.ndarray, shape (n, 3, ny, nx)
        Basis eigenstrains (image frame).
    responses : numpy.ndarray, shape (n, 4, ny, nx)
        Their forward responses S[phi_k].
    coef : numpy.ndarray, shape (n,)
        The pilot law's coefficients (dimensionless).
    mask : numpy.ndarray of bool, shape (ny, nx)
    sigma : float
        Blur width (px).

    Returns
    -------
    numpy.ndarray, shape (4, ny, nx)
        K[coef] (strain, rad), 0 off the body.
    """
    from ..fields import masked_gaussian
    from ._design import forward_responses

    coef = np.asarray(coef, float)
    phi = np.tensordot(coef, eig, axes=1)
    Rc = np.tensordot(coef, responses, axes=1)
    blurred = np.nan_to_num(masked_gaussian(np.where(mask, phi, 0.0), mask, sigma))
    SB = forward_responses(solver, blurred[None], False)[0]
    BR = np.nan_to_num(masked_gaussian(np.where(mask, Rc, np.nan), mask, sigma))
    return np.where(mask, BR - SB, 0.0)


#: Gaussian-equivalent sigma of an X-ray pixel's blur (pixel integration plus
#: bilinear resampling), per X-ray pixel, matched in variance (p^2/12 + p^2/6).
VARIANCE_MATCHED = 0.5
#: Relative uncertainty of the shared Gaussian-equivalent width (its shape error): the
#: widths that zero each slope's bias lay within 0.2 % of the variance-matched one on
#: 80 x 128 px members, 1.5 % (2.5 % on [001]) on 40 x 64 px ones (noise-free, 20 members).
JOINT_SHAPE_UNCERTAINTY = 0.015
def joint_grams(fits, sigmas, options):
    """Block Grams of a member's data blurred by each of ``sigmas`` (px), weights held.

    The member's own robust fit (its ``fits``) gives the rows' weights; the data
    are blurred by each candidate sigma on the same grid (the dislocation fields
    with them), the law's responses unblurred, as in the member's own fit.
    Interpolated in sigma (:func:`_interpolate_grams`), these give the member's
    blocks at a resolution shared by all members. (Leaving a band along the edge
    out of these rows was measured and made the shared [001] slope worse: on 20
    members of 40 x 64 px, noise-free, -1.0e-4 without a band, -1.5e-4 / -2.1e-4
    / -2.3e-4 with one of 2 / 4 / 6 px.)
    """
    grid = fits.grid
    rows = grid.mask
    w_full = np.zeros(grid.mask.size * 4)
    w_full[fits.design.flat] = fits.weights
    out = []
    for s in sigmas:
        data = grid.blur(grid.strain, s)
        if fits.offset is not None:             # e.g. the commutator (member_blocks)
            data = data - fits.offset
        d = grid.design(data, grid.responses, options.components, rows=rows,
                        extra=grid.blur_model("extra", s))
        out.append(BlockGrams.from_design(d.A, d.y, w_full[d.flat], d.group))
    return out


def _interpolate_grams(grams, sigmas, s):
    """Block Grams at sigma ``s`` from those at ``sigmas`` (quadratic, 3 nearest nodes).

    Returns the Grams and d v / d sigma summed over blocks (the resolution's score).
    """
    sig = np.asarray(sigmas, float)
    if sig.size < 3:
        j = np.arange(sig.size)
    else:
        i = int(np.clip(np.searchsorted(sig, s), 1, sig.size - 1))
        i = i - 1 if i == sig.size - 1 or (i > 1 and s - sig[i - 1] < sig[i] - s) else i
        j = np.arange(i - 1, i + 2) if sig.size >= 3 else j
    x = sig[j]
    # Lagrange weights and their derivatives at s
    L = np.ones(len(j))
    dL = np.zeros(len(j))
    for a in range(len(j)):
        others = [b for b in range(len(j)) if b != a]
        den = np.prod([x[a] - x[b] for b in others])
        L[a] = np.prod([s - x[b] for b in others]) / den
        dL[a] = sum(np.prod([s - x[c] for c in others if c != b]) for b in others) / den
    gs = [grams[k] for k in j]
    g0 = gs[0]
    H = sum(l * g.H for l, g in zip(L, gs))
    v = sum(l * g.v for l, g in zip(L, gs))
    c = sum(l * g.c for l, g in zip(L, gs))
    dv = sum(l * g.v.sum(axis=0) for l, g in zip(dL, gs))
    return BlockGrams(g0.ids, 0.5 * (H + np.swapaxes(H, -1, -2)), v, c, g0.m, g0.n_rows), dv


def _member_task(items, options, share_factor, like=None, with_solver=False,
                 record_warnings=False):
    """Members of one task, one after the other (a chunk of frames shares its factor).

    ``items`` are dicts of plain arrays and calibration (a worker's input), or
    callables returning such a dict (a lazy member, computed here, one at a time).
    Returns ``[(index, MemberBlocks)]`` and the wall time (s) (and the solver
    whose factor the next frames share, with ``with_solver``; and, with
    ``record_warnings`` (another process), the warnings raised, as
    ``[(index, category, message)]``, for :func:`_warn_again`).
    """
    out, t0, records = [], time.perf_counter(), []
    for item in items:
        item = item() if callable(item) else item
        if record_warnings:
            # every warning, unfiltered: the caller's filters apply where it is raised again
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                like = _one_member(item, options, share_factor, like, out)
            records += [(item["index"], w.category, str(w.message)) for w in caught]
        else:
            like = _one_member(item, options, share_factor, like, out)
    t = time.perf_counter() - t0
    result = (out, t, like) if with_solver else (out, t)
    return result + (records,) if record_warnings else result


def _warn_again(records):
    """Raise here the warnings a worker process recorded (:func:`_member_task`)."""
    for index, category, message in records:
        warnings.warn(f"member {index}: {message}", category, stacklevel=5)


def _one_member(item, options, share_factor, like, out):
    """One member's blocks appended to ``out``; returns the solver later frames share."""
    strain, X, mask = item["strain"], item["X"], item.get("mask")
    shift = (0.0, 0.0)
    if item.get("register_to") is not None or item.get("shift") is not None:
        strain, X, shift = register_frame(strain, X, item.get("register_to"),
                                          item.get("shift"))
    if item.get("fixed_body"):
        X = fill_body(X, mask)
    member, solver = member_blocks(strain, X, item["pixel_size"], item["stiffness"],
                                   item.get("options", options),
                                   crystal_angle=item.get("crystal_angle", 0.0), mask=mask,
                                   variance=item.get("variance"), like=like,
                                   joint=bool(item.get("joint")),
                                   commutator=bool(item.get("commutator")))
    member.shift_px = tuple(float(s) for s in shift)
    if share_factor and like is None:
        like = solver
    out.append((item["index"], member))
    return like


# --------------------------------------------------------------------------- operando
def phase_correlation_shift(reference, moving):
    """Integer shift (dy, dx) px that moves ``moving`` onto ``reference`` (phase correlation).

    Both are (ny, nx) images (e.g. particle outlines as 0/1); zero-padded to
    twice the size so that the correlation does not wrap.
    """
    a = np.nan_to_num(np.asarray(reference, float))
    b = np.nan_to_num(np.asarray(moving, float))
    shape = tuple(2 * n for n in a.shape)
    Fa, Fb = np.fft.rfft2(a, s=shape), np.fft.rfft2(b, s=shape)
    R = Fa * np.conj(Fb)
    R /= np.maximum(np.abs(R), 1e-12 * np.abs(R).max())
    r = np.fft.irfft2(R, s=shape)
    peak = np.unravel_index(np.argmax(r), shape)
    return tuple(int(p if p < n // 2 else p - n) for p, n in zip(peak, shape))


def shift_map(a, shift):
    """(..., ny, nx) maps moved by ``shift`` (dy, dx) px; NaN where nothing moved in.

    Integer shifts move pixels exactly; fractional ones interpolate bilinearly
    between finite pixels (NaN where any neighbour is missing).
    """
    a = np.asarray(a, float)
    dy, dx = (float(s) for s in shift)
    if dy == 0 and dx == 0:
        return a.copy()
    finite = np.isfinite(a)
    lead = (0,) * (a.ndim - 2)
    if float(dy).is_integer() and float(dx).is_integer():
        out = np.full(a.shape, np.nan)
        iy, ix = int(dy), int(dx)
        ny, nx = a.shape[-2:]
        src = (..., slice(max(-iy, 0), ny - max(iy, 0)), slice(max(-ix, 0), nx - max(ix, 0)))
        dst = (..., slice(max(iy, 0), ny - max(-iy, 0)), slice(max(ix, 0), nx - max(-ix, 0)))
        out[dst] = a[src]
        return out
    val = ndimage.shift(np.where(finite, a, 0.0), lead + (dy, dx), order=1, cval=0.0)
    ok = ndimage.shift(finite.astype(float), lead + (dy, dx), order=1, cval=0.0)
    return np.where(ok > 1 - 1e-6, val / np.maximum(ok, 1e-12), np.nan)


def register_frame(strain, X, reference_outline=None, shift=None):
    """A frame's strain and composition moved onto the first frame's grid.

    Parameters
    ----------
    strain : numpy.ndarray, shape (4, ny, nx)
    X : numpy.ndarray, shape (ny, nx)
    reference_outline : numpy.ndarray of bool, optional
        The first frame's particle; the shift is found by phase correlation of
        the outlines (integer px), unless ``shift`` is given.
    shift : (float, float), optional
        (dy, dx) px to apply.

    Returns
    -------
    strain, X : numpy.ndarray (new arrays)
    shift : (float, float)
    """
    if shift is None:
        outline = np.isfinite(X) | np.isfinite(strain).any(axis=0)
        shift = phase_correlation_shift(reference_outline, outline)
    return shift_map(strain, shift), shift_map(X, shift), tuple(float(s) for s in shift)


def fill_body(X, mask):
    """X on a fixed body: pixels of ``mask`` without X take the nearest measured X."""
    have = np.isfinite(X) & mask
    if not have.any():
        raise ValueError("the composition has no finite value on the body")
    if (mask & ~have).any():
        idx = ndimage.distance_transform_edt(~have, return_distances=False, return_indices=True)
        X = np.where(mask & ~have, X[tuple(idx)], X)
    return np.where(mask, X, np.nan)


# --------------------------------------------------------------------------- shared fit


def _schur(H, v, c, k):
    """Eliminate the columns after the first ``k``: reduced (H, v, c) of the law's columns."""
    Hll, Hln, Hnn = H[..., :k, :k], H[..., :k, k:], H[..., k:, k:]
    if Hnn.shape[-1] == 0:
        return Hll, v[..., :k], c
    rhs = np.concatenate([np.swapaxes(Hln, -1, -2), v[..., k:, None]], axis=-1)
    sol = _solve_stack(Hnn, rhs)
    Hr = Hll - Hln @ sol[..., :k]
    vr = v[..., :k] - (Hln @ sol[..., k:])[..., 0]
    cr = c - np.einsum("...i,...i->...", v[..., k:], sol[..., k])
    return 0.5 * (Hr + np.swapaxes(Hr, -1, -2)), vr, cr


class _Reduced:
    """One member with its nuisance eliminated, for every left-out block too."""

    def __init__(self, m):
        g, k = m.grams, m.n_law
        H, v, c = g.H.sum(axis=0), g.v.sum(axis=0), g.c.sum()
        self.H, self.v, self.c = _schur(H, v, c, k)
        self.Hloo, self.vloo, _ = _schur(H - g.H, v - g.v, c - g.c, k)
        self.n_rows, self.wsum, self.p = g.n_rows, g.m.sum(), H.shape[0]
        self.G = g.ids.size
        self.sd = m.sigma_sd_px
        self.score = None
        if m.score is not None:     # the resolution's score, its nuisance part eliminated
            Hnn, Hnl = H[k:, k:], H[k:, :k]
            s = m.score
            self.score = s[:k] - (Hnl.T @ _solve_stack(Hnn, s[k:, None])[:, 0]
                                  if Hnn.shape[0] else 0.0)


class SharedFit:
    """The shared law's normal equations from the members' reduced blocks.

    Every model is a linear map ``T`` (law columns at ``d_max`` -> parameters):
    a degree's columns, the Vegard slopes.
    """

    def __init__(self, members, common_sd=None, model_error=True):
        self.members = members
        #: include the members' common model error (a random effect per member)
        self.model_error = bool(model_error)
        self.red = [_Reduced(m) for m in members]
        #: sd (px) of a resolution shared by all members (one error for all), or None
        self.common_sd = common_sd
        self.H = sum(r.H for r in self.red)
        self.v = sum(r.v for r in self.red)
        self.L = self.H.shape[0]

    def fit(self, T=None):
        """Shared fit of the model ``T`` (default all law columns).

        Returns
        -------
        FitResult
            Cluster jackknife (CR3) over every spatial block of every member, plus
            the estimated resolutions' share; ``n_clusters`` counts those blocks.
        """
        T = np.eye(self.L) if T is None else T
        red = self.red
        H = T.T @ sum(r.H for r in red) @ T
        v = sum(r.v for r in red) @ T
        beta = _solve_stack(H, v[:, None])[:, 0]
        loo = []
        for r in red:
            Hg = H - T.T @ r.H @ T + T.T @ r.Hloo @ T
            vg = v - r.v @ T + r.vloo @ T
            loo.append(_solve_stack(Hg, vg[..., None])[..., 0])
        loo = np.concatenate(loo)
        G = loo.shape[0]
        dev = loo - loo.mean(axis=0)
        cov = (G - 1) / G * dev.T @ dev
        if self.common_sd is not None:   # one resolution: the members' shares add up
            s_tot = sum(T.T @ r.score for r in red if r.score is not None)
            if self.common_sd > 0 and np.ndim(s_tot):
                J = _solve_stack(H, s_tot[:, None])[:, 0]
                cov = cov + np.outer(J, J) * self.common_sd ** 2
        else:
            for r in red:
                if r.score is not None and r.sd > 0:
                    J = _solve_stack(H, (T.T @ r.score)[:, None])[:, 0]
                    cov = cov + np.outer(J, J) * r.sd ** 2
        if self.model_error and len(red) >= 3:
            cov = cov + self.model_error_covariance(T, H, v)[0]
        rss = max(float(sum(r.c for r in red) - 2 * beta @ v + beta @ H @ beta), 0.0)
        n = sum(r.n_rows for r in red)
        p = T.shape[1] + sum(r.p - self.L for r in red)
        cov_white = rss / max(n - p, 1) * np.linalg.pinv(H)
        dg = np.sqrt(np.maximum(np.diag(H), 1e-300))
        cond = float(np.sqrt(np.linalg.cond(H / dg[:, None] / dg[None, :])))
        return FitResult(beta, cov, cov_white, None, None, None, int(G), cond)

    def member_deviations(self, T, H=None, v=None):
        """Each member's own fit of ``T`` against the shared fit of the others.

        Returns
        -------
        d : numpy.ndarray, shape (M, k)
            Member's coefficients minus the others' (at this fit's resolution).
        S : numpy.ndarray, shape (M, k, k)
            The member's own covariance (its blocks' jackknife, its resolution's share).
        Hm : numpy.ndarray, shape (M, k, k)
            The members' reduced Grams.
        """
        H = T.T @ self.H @ T if H is None else H
        v = self.v @ T if v is None else v
        Hm = np.array([T.T @ r.H @ T for r in self.red])
        vm = np.array([r.v @ T for r in self.red])
        own = _solve_stack(Hm, vm[..., None])[..., 0]
        rest = _solve_stack(H[None] - Hm, (v[None] - vm)[..., None])[..., 0]
        S = np.empty_like(Hm)
        for i, r in enumerate(self.red):
            loo = _solve_stack(T.T @ r.Hloo @ T, (r.vloo @ T)[..., None])[..., 0]
            G = loo.shape[0]
            dev = loo - loo.mean(axis=0)
            S[i] = (G - 1) / max(G, 1) * dev.T @ dev
            if self.common_sd is None and r.score is not None and r.sd > 0:
                J = _solve_stack(Hm[i], (T.T @ r.score)[:, None])[:, 0]
                S[i] += np.outer(J, J) * r.sd ** 2
        return own - rest, S, Hm

    def model_error_covariance(self, T, H=None, v=None):
        """The shared fit's share of the members' model error (a random effect per member).

        ``Tau`` (:func:`~._collection_model_error.member_model_error`, from the
        members' deviations at this model) enters each member's normal equations
        as ``H_m u_m``, ``u_m ~ N(0, Tau)``: ``H^-1 (sum_m H_m Tau H_m) H^-1``.

        Returns
        -------
        cov : numpy.ndarray, shape (k, k)
        Tau : numpy.ndarray, shape (k, k)
        """
        H = T.T @ self.H @ T if H is None else H
        d, S, Hm = self.member_deviations(T, H, v)
        Tau, _, _ = member_model_error(d, S)
        Hi = np.linalg.pinv(H)
        meat = np.einsum("mij,jk,mkl->il", Hm, Tau, Hm)
        cov = Hi @ meat @ Hi
        return 0.5 * (cov + cov.T), Tau

    def influence(self, T):
        """Per-member pieces of the shared fit of ``T`` that leaving members out needs.

        Returns a function ``others(E) -> (coef, cov)``: the shared fit without the
        members in ``E``, its covariance the cluster jackknife linearised about the
        full fit (each block's deviation ``H d_g`` kept, those of the members left out
        dropped), so a test of every member stays linear in M.
        """
        H = T.T @ self.H @ T
        v = self.v @ T
        full_coef = _solve_stack(H, v[:, None])[:, 0]
        k = T.shape[1]
        Hm = np.array([T.T @ r.H @ T for r in self.red])          # (M, k, k)
        vm = np.array([r.v @ T for r in self.red])                # (M, k)
        meat = np.zeros((len(self.red), k, k))
        res = np.zeros((len(self.red), k, k))
        G = 0
        for i, r in enumerate(self.red):
            Hg = H - Hm[i] + T.T @ r.Hloo @ T
            vg = v - vm[i] + r.vloo @ T
            u = (_solve_stack(Hg, vg[..., None])[..., 0] - full_coef) @ H   # (G_m, k)
            meat[i] = u.T @ u
            G += u.shape[0]
            if r.score is not None and r.sd > 0:
                s_r = T.T @ r.score
                res[i] = np.outer(s_r, s_r) * r.sd ** 2
        meat_tot, res_tot = meat.sum(axis=0), res.sum(axis=0)
        n_blocks = np.array([r.G for r in self.red])

        def others(exclude):
            E = np.asarray(sorted(exclude), int)
            A = H - Hm[E].sum(axis=0)
            b = v - vm[E].sum(axis=0)
            coef = _solve_stack(A, b[:, None])[:, 0]
            g = G - n_blocks[E].sum()
            centre = (g - 1) / max(g, 1) * (meat_tot - meat[E].sum(axis=0)) + \
                res_tot - res[E].sum(axis=0)
            Ai = np.linalg.pinv(A)
            return coef, Ai @ centre @ Ai

        return others

    def select_degree(self, n_comp, d_max, degrees, n_folds=5, seed=0):
        """Degree by cross-validation over members (the held-out members' nuisance refitted).

        A held-out member's error at the law theta, its own nuisance refitted, is
        ``c_r - 2 theta . v_r + theta^T H_r theta`` from its reduced blocks. With
        one member, the single fit's spatially blocked CV.
        """
        col_sets = [law_columns(n_comp, d_max, d) for d in degrees]
        if len(degrees) == 1:
            return degrees[0], {"criterion": "none (degree given)"}
        M = len(self.red)
        if M < 2:
            m = self.members[0]
            sets = [np.r_[c, np.arange(m.n_law, m.grams.H.shape[1])] for c in col_sets]
            err = blocked_cv(None, None, None, None, sets, n_folds=n_folds, seed=seed,
                             grams=m.grams)
            criterion = "cv (spatial blocks of the one member)"
        else:
            from ._fit import fold_assignment

            k = int(min(n_folds, M))
            fold = fold_assignment(M, k, seed)
            err = np.empty((len(col_sets), k))
            for f in range(k):
                test = [r for r, fi in zip(self.red, fold) if fi == f]
                train = [r for r, fi in zip(self.red, fold) if fi != f]
                Ht, vt = sum(r.H for r in train), sum(r.v for r in train)
                for j, cols in enumerate(col_sets):
                    ix = np.ix_(cols, cols)
                    beta = _solve_stack(Ht[ix], vt[cols][:, None])[:, 0]
                    sse = sum(r.c - 2 * beta @ r.v[cols] + beta @ r.H[ix] @ beta for r in test)
                    err[j, f] = max(float(sse), 0.0) / sum(r.wsum for r in test)
            criterion = "cv (folds of members)"
        d_sel = degrees[one_standard_error_choice(err)]
        return d_sel, dict(criterion=criterion, degrees=np.asarray(degrees),
                           errors=err.mean(axis=1), errors_fold_sd=err.std(axis=1))

    def nuisance(self, i, T, beta):
        """Member ``i``'s nuisance coefficients at the shared law ``beta`` (model ``T``)."""
        g, k = self.members[i].grams, self.members[i].n_law
        H, v = g.H.sum(axis=0), g.v.sum(axis=0)
        Hnn, Hnl = H[k:, k:], H[k:, :k]
        return _solve_stack(Hnn, (v[k:] - Hnl @ (T @ beta))[:, None])[:, 0]


# --------------------------------------------------------------------------- homogeneity
@dataclass
class HomogeneityTest:
    """Does one law explain every member? A per-member test, Holm step-down.

    For each member, the Wald statistic of its own law against the shared law
    of the others, ``W = d^T (V_m + V_others)^-1 d`` over the law's
    coefficients at the shared degree (``q`` of them), with cluster-robust
    (jackknife) covariances; referred, as the single fit's linearity test, to
    ``F = W / q (G - q) / (G - 1) ~ F(q, G - q)``, G the member's spatial blocks
    (so that spatially correlated residuals do not make false alarms). Holm's
    step-down over members, the others' law refitted without the members
    already found odd (:func:`homogeneity_test`); the collection is rejected at
    ``level`` when any member is. ``p_value`` is the smallest Holm-adjusted
    p-value (the first step: Bonferroni's global test), ``statistic`` the largest
    F; ``member_p_values`` are each member's raw p-value at its last test (odd
    members against the law of the clean ones).
    """

    statistic: float
    p_value: float
    rejected: bool
    level: float
    odd_members: list                #: indices of the members that do not fit (Holm, at level)
    member_p_values: np.ndarray      #: raw p-value of each member (NaN: too few blocks to test)
    member_adjusted_p: np.ndarray    #: Holm-adjusted
    member_statistics: np.ndarray    #: F of each member
    member_wald: np.ndarray          #: W of each member
    q: int                           #: coefficients compared
    member_dof: np.ndarray           #: denominator degrees of freedom of each member's F
    #: (q, q) the members' common model error (between-member covariance of their
    #: laws' coefficients beyond their own noise) the test allows for; zeros: none
    model_error: np.ndarray = None
    method: str = ("per-member Wald (cluster jackknife, F reference) vs the others' shared law, "
                   "Holm step-down with the odd members left out of the reference")

    @property
    def odd_p_values(self):
        """``{member index: Holm-adjusted p-value}`` of the odd members."""
        return {int(i): float(self.member_adjusted_p[i]) for i in self.odd_members}

    def to_dict(self):
        return {"statistic": float(self.statistic), "p_value": float(self.p_value),
                "rejected": bool(self.rejected), "level": float(self.level),
                "odd_members": np.asarray(self.odd_members, int),
                "member_p_values": np.asarray(self.member_p_values, float),
                "member_adjusted_p": np.asarray(self.member_adjusted_p, float),
                "member_statistics": np.asarray(self.member_statistics, float),
                "q": int(self.q), "method": self.method}

    def __repr__(self):
        n = len(self.member_p_values)
        verdict = "rejected" if self.rejected else "not rejected"
        odd = ", ".join(f"{i} (p = {self.member_adjusted_p[i]:.2g})" for i in self.odd_members)
        return (f"<HomogeneityTest: one law for {n} members {verdict} at {self.level:g} "
                f"(p = {self.p_value:.3g}, largest F = {self.statistic:.3g}, q = {self.q}); "
                f"odd members: {odd or 'none'}>")


def holm(p):
    """Holm's step-down adjusted p-values (NaN entries left out, kept NaN)."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok])]
    m = ok.size
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def homogeneity_test(shared, T, member_fits, level=0.05, model_error=True):
    """The per-member step-down test of :class:`HomogeneityTest` for the model ``T``.

    Holm's step-down procedure, with the reference law refitted without the
    members already found odd (a member far off would otherwise pull the
    others' law toward it and make good members look odd): at step j the
    remaining members are each tested against the shared law of the other
    remaining ones; the smallest p-value is compared with ``level / (M - j)``; if
    below, that member is odd and the next step starts without it. Under a
    homogeneous collection the first step is Bonferroni's global test, so the
    false-alarm rate is at most ``level`` (as far as the reference holds).

    With ``model_error``, each step first estimates the members' common model
    error ``Tau`` from the remaining members' deviations
    (:func:`~._collection_model_error.member_model_error`, robust: members far
    off are left out of it) and tests each member's deviation against
    ``V_m + V_others + Tau``, referred to ``F(q, nu - q + 1)`` with ``nu`` the
    Satterthwaite degrees of freedom of that sum (Hotelling's T^2 form; without
    ``Tau``, ``nu = G - 1`` and this is the F reference of the single fit's
    linearity test). A member is then odd when it is far off relative to how
    far the members scatter among themselves, not only to its own noise.

    Parameters
    ----------
    shared : SharedFit
    T : numpy.ndarray, shape (L, q)
    member_fits : list of FitResult
        Each member's own fit of the same model (its first q coefficients the law's).
    level : float
    model_error : bool

    Returns
    -------
    HomogeneityTest
    """
    M = len(member_fits)
    q = T.shape[1]
    W, F, p, dof = (np.full(M, np.nan) for _ in range(4))
    adj = np.full(M, np.nan)
    odd = []
    error = np.zeros((q, q))
    if M >= 2:
        others = shared.influence(T)
        testable = [i for i, f in enumerate(member_fits) if f.n_clusters > q]
        for i in range(M):
            dof[i] = member_fits[i].n_clusters - q

        def deviation(i, reference_out):
            f = member_fits[i]
            coef, cov = others(set(reference_out) | {i})
            return f.coef[:q] - coef, f.cov[:q, :q] + cov

        def model_error_of(members, d, V):
            """The members' model error: (its estimate, each member's q x q share, dof)."""
            if not model_error or len(members) < 3:
                return error, np.zeros_like(V), None, np.zeros(q)
            tau, used, off = member_model_error(d, V, exclude_p=EXCLUDE_P, center=True)
            return tau, np.broadcast_to(tau, V.shape), int(used.sum()) - 1, off

        def stat(d, V, extra, G, dof_tau):
            try:
                w = float(d @ np.linalg.solve(V + extra, d))
            except np.linalg.LinAlgError:
                w = float(d @ np.linalg.pinv(V + extra) @ d)
            nu = G - 1.0 if dof_tau is None or not extra.any() else \
                float(effective_dof(V[None], extra, [G - 1], dof_tau)[0])
            n2 = max(nu - q + 1, 1.0)
            fs = w / q * n2 / max(nu, 1.0)
            return w, fs, float(stats.f.sf(fs, q, n2)), n2

        running = 0.0
        dof_tau, offset = None, np.zeros(q)
        while True:
            clean = [i for i in testable if i not in odd]
            if len(clean) < 2 and odd:
                break
            dv = [deviation(i, odd) for i in clean]
            d = np.array([x[0] for x in dv])
            V = np.array([x[1] for x in dv])
            error, share, dof_tau, offset = model_error_of(clean, d, V)
            for k, i in enumerate(clean):
                W[i], F[i], p[i], dof[i] = stat(d[k] - offset, V[k], share[k], member_fits[i].n_clusters,
                                                dof_tau)
            j = min(clean, key=lambda i: p[i])
            m_left = len(testable) - len(odd)
            running = max(running, min(1.0, m_left * p[j]))
            if running < level and len(clean) > 1:
                adj[j] = running
                odd.append(j)
                continue
            for i in clean:   # the rest, against the law of the clean members
                adj[i] = max(running, min(1.0, m_left * p[i]))
            break
        for i in odd:         # each odd member against the law (and model error) of the clean ones
            d, V = deviation(i, odd)
            W[i], F[i], p[i], dof[i] = stat(d - offset, V, error, member_fits[i].n_clusters,
                                            dof_tau)
    p_global = float(np.nanmin(adj)) if np.isfinite(adj).any() else np.nan
    return HomogeneityTest(statistic=float(np.nanmax(F)) if np.isfinite(F).any() else np.nan,
                           p_value=p_global, rejected=bool(odd), level=float(level),
                           odd_members=sorted(odd), member_p_values=p, member_adjusted_p=adj,
                           member_statistics=F, member_wald=W, q=int(q), member_dof=dof,
                           model_error=error)


# --------------------------------------------------------------------------- the engine
@dataclass
class CollectionFit:
    """Result of :func:`learn_law_collection` (plain numpy; wrapped by the signal layer)."""

    law: LawFit                      #: the shared law
    member_laws: list                #: LawFit of each member alone, at the shared degree
    homogeneity: HomogeneityTest
    members: list                    #: per member: reference, burgers, sigma, shift, blocks ...
    info: dict                       #: n_members, n_factorisations, timings


def _per_member(value, M, name, scalar=np.isscalar):
    """``value`` for each of M members: a list of M values, or one value for all."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype != object and not scalar(value):
        value = list(value)
    if isinstance(value, (list, tuple)) and not scalar(value):
        if len(value) != M:
            raise ValueError(f"{name} has {len(value)} entries for {M} members: give one value "
                             f"for all members or one per member")
        return list(value)
    return [value] * M


def _array(a):
    """A member's data as a float numpy array (a dask array is computed here)."""
    return None if a is None else np.asarray(a, dtype=float)


def _deferred(a):
    """Keep an array that reads itself (``reads_itself``: a worker reads it), else read it."""
    return a if getattr(a, "reads_itself", False) else _array(a)


def _pickled_size(obj):
    """Bytes of ``obj`` pickled, or None where it does not pickle (an h5py-backed recipe)."""
    import pickle

    try:
        return len(pickle.dumps(obj))
    except Exception:  # noqa: BLE001 - any failure means: read it here and scatter the arrays
        return None


def _pickles(obj):
    """Whether ``obj`` pickles (a zarr-backed recipe does; an h5py-backed one does not)."""
    return _pickled_size(obj) is not None


def _recipes_travel(loads):
    """Whether the members' recipes, not their arrays, should go to the workers: they pickle
    and are far smaller than the arrays (a file's chunk graph; a dask array over memory
    carries its data, which is better scattered)."""
    size = _pickled_size(loads)
    data = sum(8 * int(np.prod(v.shape)) for d in loads for v in d.values()
               if getattr(v, "reads_itself", False))
    return size is not None and size < data / 4


def _read_item(d):
    """A member's dict with its self-reading arrays read here (on the worker)."""
    return {k: _array(v) if getattr(v, "reads_itself", False) else v for k, v in d.items()}


def learn_law_collection(strains, compositions, pixel_sizes, stiffnesses, *, crystal_angles=0.0,
                         masks=None, variances=None, composition_resolution=None,
                         source_pixel_size=None, dislocation_lattice=None, same_body=False,
                         drift=None, client=None, show_progressbar=None, level=0.05,
                         basis="legendre", degree="auto", max_degree=6, boundary="free",
                         use_rotation=True, shear=False, selection="cv", n_folds=5,
                         block_size=None, sigma_grid=None, min_range=0.1, dislocations="fit",
                         extend_body=True, uncertainty="jackknife", seed=0, method="strain_gap",
                         monotonic=False, share_factor=True, n_jobs=None, backend="auto",
                         shared_resolution=True, model_error=True, commutator=True):
    """Learn one eigenstrain law from a collection of particles (plain arrays).

    Parameters
    ----------
    strains : sequence of numpy.ndarray, each (4, ny, nx)
        Measured e11, e22, e12, theta of each member (image frame; NaN = no data).
        Members may differ in grid; dask arrays are computed one member at a time.
    compositions : sequence of numpy.ndarray, each (ny, nx)
        X of each member on its strain grid.
    pixel_sizes : float or sequence
        Strain-grid pixel size (nm) of each member (or one for all), ``dy`` or ``(dy, dx)``.
    stiffnesses : sequence
        Plane stiffness of each member (crystal frame, GPa), as ``learn_law``'s
        ``stiffness`` (a 3x3, a pair for C(X), a callable); length = members.
    crystal_angles : float or sequence of float
        rad, per member or one for all.
    masks, variances : sequence, optional
        Per member (None entries allowed).
    composition_resolution, source_pixel_size : float or sequence, optional
        As ``learn_law``, per member or one for all (nm).
    dislocation_lattice : array_like or sequence, optional
        As ``learn_law`` (one for all, or a list of one per member).
    same_body : bool
        An operando series: one particle on one grid, the body fixed (the first
        frame's, or ``masks[0]``), one factorisation for every frame.
    n_jobs : int, optional
        Without a client: members computed at once by that many workers
        (``backend``); default the CPUs this process may use, at most 8. An
        operando series runs its frames one after the other (they share one factor).
    backend : {"auto", "threads", "processes"}
        Without a client, how ``n_jobs > 1`` workers run: threads of this process,
        or worker processes (joblib's loky pool, kept for the session: its start,
        ~2 s of imports, is paid once). A member's pipeline is many mid-sized NumPy
        steps that hold the GIL most of the time: on 2 cores two threads gained
        only 1.16-1.3x over one, two processes 1.7-1.9x. ``"auto"``: processes
        when there are at least ``PROCESS_MIN_MEMBERS_PER_WORKER`` members per
        worker (and this process may have children), threads otherwise. Warnings
        raised in a worker process are raised again here, naming the member.
    share_factor : bool
        Operando only: one factorisation for every frame (default). With C(X)
        the other frames are then solved by conjugate gradients preconditioned
        by the first frame's factor (exact to 1e-12, ~13 direct solves each);
        ``False`` factorises each frame (faster on small grids).
    shared_resolution : bool
        When every member's resolution is estimated on the same candidates (no
        ``composition_resolution`` given; the X-ray pixel the same number of
        strain px in every member, or no X-ray pixel and one strain pixel size),
        the shared law is fitted at one resolution for all members
        (:func:`joint_resolution`: their summed held-out loss, at least the
        X-ray pixel's variance-matched width). Each member's own law keeps its
        own estimate. ``False``: each member's own estimate in the shared fit too.
    drift : None, "register" or array_like (M, 2)
        Operando only: frames moved onto the first (``"register"``: integer
        shift by phase correlation of the outlines; an array: (dy, dx) px per frame).
    client : distributed.Client, "auto" or None
        Run each member (each chunk of frames) as a task on this cluster;
        ``"auto"``: the active client, if any.
    show_progressbar : bool, optional
    level : float
        Level of the homogeneity test.
    model_error : bool or "interval"
        Allow for the members' common model error (default True): a random effect
        per member, its covariance ``Tau`` estimated from how far the members'
        own laws scatter beyond their own noise
        (:func:`~._collection_model_error.member_model_error`). It widens the
        shared interval by ``H^-1 (sum_m H_m Tau H_m) H^-1`` (every member) and
        enters the homogeneity test (robustly: estimated from below, on the
        members within :data:`~._collection_model_error.EXCLUDE_P`), which then
        asks whether one law explains every member up to the scatter the members
        share. ``"interval"``: in the shared interval only. ``False``: each
        member's own noise only.
    commutator : bool
        Correct each member's model for the commutator of the blur with its
        finite body's mechanics (:func:`commutator_offset`, to first order at the
        member's own law; one more solve), at the given resolution or the X-ray pixel's
        variance-matched width; nothing where the blur is unknown. The members'
        misfit it removes is what made homogeneous collections look inhomogeneous.
        ``False``: the responses of :func:`~._learn.learn_law` (a collection of
        one is then exactly the single fit).
    basis, degree, max_degree, boundary, use_rotation, shear, selection, n_folds, block_size, sigma_grid, min_range, dislocations, extend_body, seed
        As :func:`~._learn.learn_law`; the basis (and its X range [0, 1]) is
        common to all members. ``degree="auto"`` is chosen by cross-validation
        over members (their nuisance refitted).
    uncertainty : {"jackknife"}
        The cluster jackknife over all blocks of all members (only choice).
    method, monotonic
        Only the strain gap, unconstrained, is supported for collections (and
        ``selection="cv"``: the degree by cross-validation over members).

    Returns
    -------
    CollectionFit
    """
    t_start = time.perf_counter()
    if method != "strain_gap":
        raise ValueError(f"collections are learned by the strain gap only, got method={method!r}")
    if monotonic:
        raise ValueError("monotonic=True is not supported for collections")
    if selection != "cv":
        raise ValueError(f"collections choose the degree by cross-validation over members "
                         f"(selection='cv'), got selection={selection!r}")
    if uncertainty != "jackknife":
        raise ValueError(f"collections use the cluster jackknife, got uncertainty={uncertainty!r}")
    if not (np.isscalar(level) and 0 < level < 1):
        raise ValueError(f"level (of the homogeneity test) must lie in (0, 1), got {level!r}")
    strains, compositions = list(strains), list(compositions)
    M = len(strains)
    if M == 0:
        raise ValueError("the collection is empty: give at least one strain map")
    if len(compositions) != M:
        raise ValueError(f"{M} strain maps but {len(compositions)} composition maps: give one "
                         "composition per member")
    if not isinstance(stiffnesses, (list, tuple)) or len(stiffnesses) != M:
        raise ValueError(f"stiffnesses must be a list of one stiffness per member ({M}), got "
                         f"{type(stiffnesses).__name__} of length {len(stiffnesses) if hasattr(stiffnesses, '__len__') else 'n/a'}")
    pixel_sizes = _per_member(pixel_sizes, M, "pixel_sizes",
                              scalar=lambda v: np.ndim(v) == 1 and len(v) == 2 and M != 2)
    angles = _per_member(crystal_angles, M, "crystal_angles")
    masks = _per_member(masks, M, "masks", scalar=lambda v: v is None)
    variances = _per_member(variances, M, "variances", scalar=lambda v: v is None)
    res = _per_member(composition_resolution, M, "composition_resolution",
                      scalar=lambda v: v is None)
    src = _per_member(source_pixel_size, M, "source_pixel_size", scalar=lambda v: v is None)
    lattices = (list(dislocation_lattice) if isinstance(dislocation_lattice, list)
                and len(dislocation_lattice) == M and M > 2 else [dislocation_lattice] * M)
    if isinstance(dislocation_lattice, list) and len(lattices) != M:
        raise ValueError(f"dislocation_lattice has {len(dislocation_lattice)} entries for {M} members")
    base = LearnOptions(
        method="strain_gap", use_rotation=use_rotation,
        basis=BasisOptions(basis, degree, max_degree, shear=shear),
        resolution=ResolutionOptions(None, None, sigma_grid),
        selection=SelectionOptions(selection, n_folds, seed),
        body=BodyOptions(boundary, extend_body, min_range),
        nuisance=NuisanceOptions(dislocations, None),
        uncertainty=UncertaintyOptions(uncertainty, block_size))
    for i, (s, x) in enumerate(zip(strains, compositions)):
        if np.ndim(s) != 3 or np.shape(s)[0] != 4:
            raise ValueError(f"member {i}: strain must be (4, ny, nx), got shape {np.shape(s)}")
        if np.shape(x) != tuple(np.shape(s)[1:]):
            raise ValueError(f"member {i}: composition grid {np.shape(x)} differs from its strain "
                             f"grid {tuple(np.shape(s)[1:])}; resample it onto the strain grid")
    shifts = None
    if drift is not None:
        if not same_body:
            raise ValueError("drift= is for an operando series (same_body=True)")
        if not (isinstance(drift, str) and drift == "register"):
            shifts = np.asarray(drift, float)
            if shifts.shape != (M, 2) or not np.all(np.isfinite(shifts)):
                raise ValueError(f"drift must be 'register' or finite (dy, dx) px per frame, shape "
                                 f"({M}, 2); got shape {shifts.shape}")
    _backend(backend, 1, 0)     # checked before any work
    if same_body:
        grids = {tuple(np.shape(s)) for s in strains}
        if len(grids) != 1:
            raise ValueError(f"same_body=True needs one grid for every frame, got {sorted(grids)}")

    def options(i):
        return replace(base, resolution=replace(base.resolution, composition_resolution=res[i],
                                                source_pixel_size=src[i]),
                       nuisance=replace(base.nuisance, lattice=lattices[i]) if lattices[i]
                       is not None else base.nuisance)

    opts = [options(i) for i in range(M)]   # checked before any work
    body, outline = None, None
    if same_body:
        # the body of every frame: the first frame's (registered frames are moved onto it)
        s0, x0 = _array(strains[0]), _array(compositions[0])
        _, x_b, body, _, _ = prepare_body(s0, x0, masks[0], pixel_sizes[0], None, base.body)
        outline = np.isfinite(x0) | np.isfinite(s0).any(axis=0)

    def item(i):
        def load(read=_array):
            d = dict(index=i, strain=read(strains[i]), X=read(compositions[i]),
                     pixel_size=pixel_sizes[i], stiffness=stiffnesses[i], crystal_angle=angles[i],
                     mask=body if same_body else masks[i], variance=read(variances[i]),
                     options=opts[i], fixed_body=bool(same_body), joint=joint,
                     commutator=bool(commutator))
            if same_body and i > 0 and drift is not None:
                d["register_to"] = outline if shifts is None else None
                d["shift"] = None if shifts is None else shifts[i]
            return d
        return load

    # members whose composition blur is the same in strain px share one resolution,
    # estimated from all of them (joint_resolution): the X-ray pixel is the same number
    # of strain px, or, with no X-ray pixel known, the strain pixels are the same
    px = [mean_pixel_size(p) for p in pixel_sizes]
    if all(v is None for v in src):
        same_blur = len({round(p, 9) for p in px}) == 1
    else:
        same_blur = all(v is not None for v in src) and \
            len({round(float(v) / p, 9) for v, p in zip(src, px)}) == 1
    joint = bool(shared_resolution and M >= 2 and all(r is None for r in res) and same_blur)
    results = [None] * M
    factorisations = 0
    client = _resolve_client(client)
    if client is None:
        chunks = [list(range(M))] if same_body else [[i] for i in range(M)]
        task_times = []
        if same_body:   # one chunk of frames: a bar over the frames themselves
            out, t = _frames_with_bar(chunks[0], item, show_progressbar, share_factor)
            task_times.append(t)
            for i, m in out:
                results[i] = m
        else:
            n_threads = _threads(n_jobs, M)
            how = _backend(backend, n_threads, len(chunks))
            for out, t in _in_process(chunks, item, base, n_threads, show_progressbar, how):
                task_times.append(t)
                for i, m in out:
                    results[i] = m
        n_tasks = len(chunks)
        where = "in-process" + (f" ({n_threads} {how})" if not same_body and n_threads > 1
                                else "")
    else:
        results, task_times, n_tasks = _run_on_client(client, M, item, base, same_body,
                                                      show_progressbar, share_factor)
        where = f"dask.distributed ({len(client.scheduler_info().get('workers', {}))} workers)"
    factorisations = int(sum(m.factorised for m in results))
    t_members = time.perf_counter() - t_start

    fit = _assemble(results, base, level, model_error=model_error)
    fit.info.update(n_members=M, n_factorisations=factorisations, n_tasks=int(n_tasks),
                    executed=where, same_body=bool(same_body),
                    timings_s=dict(members=t_members, shared_fit=time.perf_counter() - t_start
                                   - t_members, total=time.perf_counter() - t_start,
                                   tasks=np.asarray(task_times, float),
                                   mechanics_floor=float(sum(
                                       m.timings_s.get("factorisation", 0.0)
                                       + m.timings_s.get("mechanics", 0.0) for m in results))))
    return fit


#: Members per worker from which an in-process collection runs in worker processes
#: (``backend="auto"``): below it, the pool's start (~2 s of imports per worker, once
#: per session) would outweigh what processes gain over threads (~0.1 s per member
#: of ~100 x 170 px on 2 cores).
PROCESS_MIN_MEMBERS_PER_WORKER = 8
_BACKENDS = ("auto", "threads", "processes")


def _backend(backend, n_workers, n_chunks):
    """How ``n_workers`` in-process workers run: ``"serial"``, ``"threads"`` or ``"processes"``."""
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if n_workers <= 1:
        return "serial"
    if backend == "auto":
        import multiprocessing

        # a daemonic process (a worker of some pool) may not start children
        if multiprocessing.current_process().daemon or \
                n_chunks < PROCESS_MIN_MEMBERS_PER_WORKER * n_workers:
            return "threads"
        return "processes"
    return backend


def _threads(n_jobs, M):
    """Workers for an in-process collection: ``n_jobs``, or the usable CPUs (at most 8)."""
    import os

    if n_jobs is None:
        try:
            n_jobs = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            n_jobs = os.cpu_count() or 1
        n_jobs = min(n_jobs, 8)
    if isinstance(n_jobs, bool) or int(n_jobs) != n_jobs or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    return int(min(n_jobs, M))


def _in_process(chunks, item, options, n_threads, show_progressbar, backend="threads"):
    """Members without a cluster: one after the other, or by ``n_threads`` workers.

    Yields ``(results, seconds)`` per chunk, with at most two chunks per worker
    loaded at once (lazy members stream). Threads: BLAS is held at one thread for
    the whole pool (the per-member limits nest inside it). Processes
    (``backend="processes"``): joblib's loky pool, reused across calls; each chunk's
    members are read here and travel as plain arrays, their warnings come back.
    """
    bar = progressbar(total=len(chunks), show_progressbar=show_progressbar,
                      desc="Collection members", leave=False)
    try:
        if n_threads <= 1:
            for chunk in chunks:
                yield _member_task([item(i) for i in chunk], options, False)
                bar.update(1)
            return
        if backend == "processes":
            from joblib import Parallel, delayed

            # a generator: joblib reads the next chunks as workers free up (2 per worker)
            tasks = (delayed(_member_task)([item(i)() for i in c], options, False,
                                           record_warnings=True) for c in chunks)
            # max_nbytes=None: members are pickled, not memory-mapped through a temp folder
            run = Parallel(n_jobs=n_threads, backend="loky", return_as="generator_unordered",
                           pre_dispatch="2*n_jobs", max_nbytes=None)
            for out, t, records in run(tasks):
                _warn_again(records)
                yield out, t
                bar.update(1)
            return
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        todo = iter(chunks)
        with one_blas_thread(), ThreadPoolExecutor(n_threads) as pool:
            pending = {pool.submit(_member_task, [item(i) for i in c], options, False)
                       for c in islice(todo, 2 * n_threads)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                    bar.update(1)
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.add(pool.submit(_member_task, [item(i) for i in nxt], options,
                                                False))
    finally:
        bar.close()


def _frames_with_bar(chunk, item, show_progressbar, share_factor=True):
    """An operando series in-process: frames one at a time, the factor shared, a bar over frames."""
    out, total, like = [], 0.0, None
    for i in progressbar(chunk, show_progressbar=show_progressbar, desc="Operando frames",
                         leave=False):
        done, t, like = _member_task([item(i)], None, share_factor, like=like, with_solver=True)
        out += done
        total += t
    return out, total


def _resolve_client(client):
    """The client to use: the given one, the active one for ``"auto"``, or None."""
    if client is None:
        return None
    if isinstance(client, str):
        if client != "auto":
            raise ValueError(f"client must be a distributed.Client, 'auto' or None, got {client!r}")
        try:
            from distributed import get_client
        except ImportError:
            return None
        try:
            return get_client()
        except ValueError:      # no active client
            return None
    if not hasattr(client, "submit"):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    return client


def _run_on_client(client, M, item, options, same_body, show_progressbar, share_factor=True):
    """Members as tasks on a cluster; at most two per worker in flight (bounded memory)."""
    from distributed import as_completed

    n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
    if same_body:   # one chunk of frames per worker: one factorisation each
        chunks = [list(c) for c in np.array_split(np.arange(M), min(n_workers, M)) if len(c)]
    else:
        chunks = [[i] for i in range(M)]
    results, times = [None] * M, []
    window = 2 * n_workers
    todo = iter(chunks)

    inputs = {}

    def submit(chunk):
        # the member's arrays are scattered (their own future, released with the task's)
        # rather than embedded in the task: an embedded argument stayed referenced by the
        # client (and the in-process scheduler of a LocalCluster) after the task was done
        loads = [item(i)(read=_deferred) for i in chunk]
        if all(any(getattr(v, "reads_itself", False) for v in d.values()) for d in loads) \
                and _recipes_travel(loads):
            # file-backed members: only their recipes travel, each worker reads its own
            fut = client.submit(_member_task, [partial(_read_item, d) for d in loads], options,
                                same_body and share_factor, record_warnings=True, pure=False)
            inputs[fut.key] = []
            return fut
        data = client.scatter([_read_item(d) for d in loads], hash=False)
        fut = client.submit(_member_task, data, options, same_body and share_factor,
                            record_warnings=True, pure=False)
        inputs[fut.key] = data
        return fut

    pending = as_completed([submit(c) for c in islice(todo, window)])
    bar = progressbar(total=M, show_progressbar=show_progressbar, desc="Collection members",
                      leave=False)
    for fut in pending:
        out, t, records = fut.result()
        _warn_again(records)
        times.append(t)
        for i, m in out:
            results[i] = m
        bar.update(len(out))
        for d in inputs.pop(fut.key):
            d.release()
        fut.release()
        nxt = next(todo, None)
        if nxt is not None:
            pending.add(submit(nxt))
    bar.close()
    return results, times, len(chunks)


def _member_fit(m, T_law, sd_ok=True):
    """Member ``m``'s own fit of the model ``T_law`` (law columns -> parameters), nuisance free."""
    p = m.grams.H.shape[1]
    k = T_law.shape[1]
    T = np.zeros((p, k + p - m.n_law))
    T[:m.n_law, :k] = T_law
    T[m.n_law:, k:] = np.eye(p - m.n_law)
    f = m.grams.fit(T)
    if m.score is not None and m.sigma_sd_px > 0 and sd_ok:
        add_resolution_covariance(f, T, m.grams.H.sum(axis=0), m.score, m.sigma_sd_px)
    return T, f


def _assemble(members, options, level, model_error=True):
    """The shared law, the members' own laws and the homogeneity test from the blocks."""
    n_comp, d_max = options.basis.n_components, options.basis.d_max
    kind, comps = options.basis.kind, options.components
    full = options.basis.full_basis()
    L = n_comp * d_max
    joint = joint_resolution(members)
    if joint is None:
        shared = SharedFit(members, model_error=bool(model_error))
    else:
        shared = SharedFit([replace(m, grams=g, score=dv, sigma_sd_px=joint["sd_px"])
                            for m, (g, dv) in zip(members, joint.pop("grams"))],
                           common_sd=joint["sd_px"], model_error=bool(model_error))
    d_sel, sel = shared.select_degree(n_comp, d_max, options.basis.degrees,
                                      options.selection.n_folds, options.selection.seed)
    eye = np.eye(L)

    def T_degree(d):
        return eye[:, law_columns(n_comp, d_max, d)]

    T_lin = vegard_map(full, n_comp, L)
    T_sel = T_degree(d_sel)

    def shared_degree(d):
        return law_columns(n_comp, d_max, d), shared.fit(T_degree(d))

    fit = shared.fit(T_sel)
    vegard = vegard_stats(lambda: shared.fit(T_lin), n_comp)
    linearity = linearity_test(shared_degree, n_comp, d_sel, kind)
    n_law = n_comp * d_sel

    member_laws, member_fits, member_info = [], [], []
    for i, m in enumerate(members):
        T, f = _member_fit(m, T_sel)
        member_fits.append(f)
        ref, burgers = split_nuisance(f.coef, comps, n_law, n_cores=m.n_cores)
        lin = lambda m=m: _member_fit(m, T_lin)[1]   # noqa: E731
        member_laws.append(LawFit(
            basis=LawBasis(kind, d_sel), coefficients=f.coef[:n_law].reshape(n_comp, d_sel),
            covariance=f.cov[:n_law, :n_law], covariance_white=f.cov_white[:n_law, :n_law],
            dof=int(f.n_clusters - 1), reference=ref, n_components=n_comp,
            sigma_px=m.sigma_px, sigma_sd_px=m.sigma_sd_px, sigma_source=m.sigma_source,
            selection={"block_size_px": m.block_size, "n_blocks": m.n_blocks,
                       "criterion": "the collection's degree", "timings_s": m.timings_s},
            x_range=m.x_range, noise=m.noise, vegard=vegard_stats(lin, n_comp),
            linearity=linearity_test(lambda d, m=m: (None, _member_fit(m, T_degree(d))[1]),
                                     n_comp, d_sel, kind),
            method="strain_gap", condition=f.condition, x_histogram=m.x_histogram,
            dislocations={"positions_px": m.cores, "burgers_nm": burgers},
            body={"mask": m.mask, "n_extended": m.n_extended},
            settings=_settings(options, m, d_sel)))
        # the member's nuisance under the shared law (for its decomposition)
        nuis = shared.nuisance(i, T_sel, fit.coef)
        ref_s, burgers_s = split_nuisance(np.r_[fit.coef, nuis], comps, n_law, n_cores=m.n_cores)
        member_info.append(dict(reference=ref_s, burgers_nm=burgers_s, cores_px=m.cores,
                                sigma_px=m.sigma_px, sigma_sd_px=m.sigma_sd_px,
                                n_blocks=m.n_blocks, shift_px=np.asarray(m.shift_px),
                                x_range=np.asarray(m.x_range), factorised=m.factorised,
                                cg_iterations=float(m.settings.get("cg_iterations", 0.0)),
                                settings=_settings(options, m, d_sel)))
    # each member's own law (its own resolution) against the others' law at their own
    # resolutions: a member is compared with a fit made like its own (against the
    # shared resolution's narrower law, the homogeneous benchmark's false alarms rose).
    # Measured before the model error (10 homogeneous collections of 10 members of
    # 100 x 170 px, seeds 0-9): 5 / 10 false alarms as here, 7 / 10 at the shared width
    # (with its sd on both sides), 8 / 10 at the shared width without a resolution
    # term; a robust overdispersion factor (median F over the F median) 4 / 10. The
    # false alarms were single members far off at any width, mostly core-shell patterns
    # in diamond outlines, deviating ~(+4, -4)e-4 in the (+[100], -[001]) direction the
    # odd members' 10 % steeper law also takes (but ~(+25, -9)e-4): a misfit between
    # members, additive (not growing with the member's own error), that the model
    # error Tau now carries. Tau loaded on each member's resolution sensitivity
    # instead (one scalar, the shape error of the blur) was measured and does not
    # help (false alarms 0.50 of 20 x 20): the misfit is not along that direction.
    # It is the blur's commutator with each member's finite body, now corrected to
    # first order in the members' models (commutator_offset): false alarms 0.20 ->
    # 0.05 (20 x 20, seeds 0-19), 0.00 on seeds 20-39; detection 1.00.
    homogeneity = homogeneity_test(shared if joint is None else SharedFit(members), T_sel,
                                   member_fits, level, model_error=model_error is True)
    lo = min(m.x_range[0] for m in members)
    hi = max(m.x_range[1] for m in members)
    noise = np.nanmedian(np.array([m.noise for m in members]), axis=0)
    settings = {k: v for k, v in _settings(options, members[0], d_sel).items()
                if k not in ("pixel_size_nm", "crystal_angle")}
    law = LawFit(
        basis=LawBasis(kind, d_sel), coefficients=fit.coef.reshape(n_comp, d_sel),
        covariance=fit.cov, covariance_white=fit.cov_white, dof=int(fit.n_clusters - 1),
        reference=np.full(4, np.nan), n_components=n_comp, sigma_px=np.nan,
        sigma_sd_px=float(np.sqrt(np.mean([m.sigma_sd_px ** 2 for m in members]))
                          if joint is None else joint["sd_px"]),
        sigma_source="per member" if joint is None else
        "estimated jointly (one resolution for all members)", selection=dict(sel, n_blocks=int(fit.n_clusters)),
        x_range=(float(lo), float(hi)), noise=noise, vegard=vegard, linearity=linearity,
        method="strain_gap (collection)", condition=fit.condition,
        x_histogram=np.sum([m.x_histogram for m in members], axis=0), settings=settings)
    if joint is not None:
        law.sigma_px = joint["sigma_px"]
        law.selection["resolution"] = joint
    return CollectionFit(law=law, member_laws=member_laws, homogeneity=homogeneity,
                         members=member_info, info={
                             "degree": int(d_sel), "shared_resolution": joint is not None,
                             **{f"shared_resolution_{k}": float(np.nan if joint is None else
                                                                joint[k])
                                for k in ("sigma_px", "sd_px", "sigma_loss_px", "floor_px")}})


def joint_resolution(members, n_boot=200, seed=0):
    """One resolution for every member (shared X-ray optics), from their summed held-out loss.

    Each member's own estimate (:func:`~._resolution.estimate_resolution`) is
    noisy and trades against its own law; members that share the X-ray optics
    share the blur, so their held-out losses over the same candidate sigmas are
    summed (weighted by their rows): the degree is the simplest within one
    standard error (members as replicates) of the best, each at its best sigma,
    and sigma is the parabola's minimum of the summed loss at that degree. Its
    standard deviation is a bootstrap over members. The members' Grams at that
    sigma are interpolated from those at the candidates (:func:`joint_grams`).

    Returns None unless every member estimated its resolution on the same
    candidate sigmas (same strain and X-ray pixels, nothing given).
    """
    from ._resolution import parabolic_min

    if len(members) < 2 or any(m.joint_grams is None for m in members):
        return None
    sig = members[0].joint_sigmas_px
    if any(m.joint_sigmas_px.shape != sig.shape or not np.allclose(m.joint_sigmas_px, sig)
           or m.xray_pixel_px != members[0].xray_pixel_px for m in members):
        return None
    n = np.array([m.grams.n_rows for m in members], float)
    cv = np.array([m.resolution_table["cv_loss"] for m in members])    # (M, sigma, degree)
    total = np.tensordot(n, cv, 1) / n.sum()
    best = total.argmin(axis=0)
    k = one_standard_error_choice(cv[:, best, np.arange(cv.shape[2])].T)
    xp = members[0].xray_pixel_px
    floor = 0.0 if xp is None else VARIANCE_MATCHED * xp
    sigma_loss = float(parabolic_min(sig, total[:, k])[0])
    sigma = max(sigma_loss, floor)
    rng = np.random.default_rng(seed)
    M = len(members)
    draws = rng.integers(0, M, (n_boot, M))
    c = np.apply_along_axis(np.bincount, 1, draws, minlength=M) * n     # (n_boot, M)
    boot = np.maximum(parabolic_min(sig, (c @ cv[:, :, k]) / c.sum(axis=1)[:, None])[0], floor)
    # sampling spread, plus the Gaussian stand-in's shape error at this width
    sd = float(np.hypot(np.std(boot, ddof=1), JOINT_SHAPE_UNCERTAINTY * sigma))
    grams = [_interpolate_grams(m.joint_grams, sig, sigma) for m in members]
    return {"sigma_px": sigma, "sd_px": sd, "sigma_loss_px": sigma_loss, "floor_px": floor,
            "sigma_candidates_px": sig, "cv_loss": total,
            "degree_index": int(k), "member_sigma_px": np.array([m.sigma_px for m in members]),
            "grams": grams}


def _settings(options, m, d_sel):
    return dict(crystal_angle=m.settings["crystal_angle"],
                pixel_size_nm=m.settings["pixel_size_nm"], boundary=options.body.boundary,
                use_rotation=bool(options.use_rotation), shear=options.basis.n_components == 3,
                basis=options.basis.kind, degree=int(d_sel), selection=options.selection.criterion,
                block_size_px=int(m.block_size), n_folds=int(options.selection.n_folds),
                uncertainty="jackknife", max_degree=int(options.basis.max_degree),
                dislocations=options.nuisance.dislocations, seed=int(options.selection.seed),
                extend_body=options.body.extend_body, method="strain_gap", monotonic=False,
                min_range=float(options.body.min_range))
