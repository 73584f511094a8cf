"""The members' common model error: a random effect on each member's law (a collection).

Each member's law deviates from the collection's by its noise, which its own
spatial-block jackknife knows (``S_m``), and by a misfit of the model that the
member's own blocks cannot see: the forward model (the blur not commuting with
a finite body's mechanics, which the collection corrects to first order only:
:func:`~._collection.commutator_offset`) errs differently for each outline and
composition pattern. Measured before that correction on homogeneous synthetic
collections (20 x 20 members of ~100 x 170 px), the
members' deviations scatter about 2x more than ``S_m`` says, and that excess
does not shrink with the member's own error (it is additive). So each member's
deviation is modelled as

    d_m ~ N(0, S_m + Tau),

``Tau`` (q x q, in the law's coefficients) the between-member covariance, the
same for every member. :func:`member_model_error` estimates it by maximum
likelihood (EM), robustly: members whose deviation is improbable even with
``Tau`` (beyond the ``level / M`` quantile) are left out of the estimate, so
that a few members that follow another law (3 of 20, 10 % steeper: ~15 x one
member's error) do not widen ``Tau`` and hide themselves.
"""

import numpy as np
from scipy import stats

from ._fit import _solve_stack

#: Start of the EM (a fraction of the members' median variance): the EM's update is
#: multiplicative in Tau, and Tau = 0 would be a fixed point.
_START = 1e-3
#: The homogeneity test's robust estimate rests on the members within the chi-square
#: quantile 1 - EXCLUDE_P / M: the trade between false alarms (members whose own misfit
#: is large) and masking (odd members taken in, widening Tau). Measured on 32 + 32
#: synthetic collections of 20 members of ~100 x 170 px (seeds 0-31, odd 10000-10031):
#: false alarms 0.31 / 0.19 / 0.125 / 0.09 / 0.03 at 1e-2 / 1e-3 / 1e-4 / 1e-5 / 1e-6,
#: detection of 3 odd members 1.00 at all (without Tau: 0.50, 1.00); but from 1e-5 on,
#: 3 odd of 20 members of 48 x 80 px (their law ~5x, not ~15x, a member's error away)
#: are taken in and none is named.
EXCLUDE_P = 1e-4


def member_model_error(d, S, exclude_p=None, center=False, n_iter=2000, tol=1e-6):
    """Between-member covariance ``Tau`` of the members' deviations (maximum likelihood, EM).

    Parameters
    ----------
    d : numpy.ndarray, shape (M, q)
        Each member's deviation from the collection's law (law coefficients).
    S : numpy.ndarray, shape (M, q, q)
        Its covariance from the member's own noise (and the reference's).
    exclude_p : float, optional
        Robust estimate: at each EM step, members whose
        ``r^2 = d^T (S + Tau)^-1 d`` exceeds the chi-square quantile
        ``1 - exclude_p / M`` (q degrees of freedom) at the current Tau are left
        out (never more than half of them). The EM starts from a quarter of the
        members' median variance, so members far off are left out before they
        can widen Tau. None: every member (the plain maximum-likelihood estimate).
    center : bool
        Also estimate a common offset of the deviations, ``d_m ~ N(delta, S_m +
        Tau)`` (from the members used): where each member's reference law still
        holds odd members, the good members all deviate from it the same way, which
        is not scatter between them. Starts at the coordinate-wise median.
    n_iter : int
    tol : float
        Change of Tau (relative to the members' median variance) that stops the EM.

    Returns
    -------
    Tau : numpy.ndarray, shape (q, q)
        Positive semi-definite; zero when the members scatter no more than ``S``.
    used : numpy.ndarray of bool, shape (M,)
        The members the estimate rests on.
    offset : numpy.ndarray, shape (q,)
        ``delta`` (zeros unless ``center``).
    """
    d = np.asarray(d, float)
    S = np.asarray(S, float)
    if d.ndim != 2 or S.shape != d.shape + (d.shape[1],):
        raise ValueError(f"d must be (M, q) and S (M, q, q), got {d.shape} and {S.shape}")
    if exclude_p is not None and not 0 < exclude_p < 1:
        raise ValueError(f"exclude_p must lie in (0, 1) or be None, got {exclude_p!r}")
    M, q = d.shape
    used = np.ones(M, bool)
    offset = np.median(d, axis=0) if center else np.zeros(q)
    if M < 3 or q == 0:
        return np.zeros((q, q)), used, np.zeros(q)
    scale = np.median(np.diagonal(S, axis1=1, axis2=2), axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1e-300)
    cut = np.inf if exclude_p is None else stats.chi2.isf(exclude_p / M, q)
    keep_min = (M + 1) // 2
    Tau = np.zeros((q, q))
    for _ in range(M + 1):
        # the members within the cut at the current estimate (from below: the members'
        # own noise only, about the median deviation, at the start) ...
        if exclude_p is not None:
            Si = _inverse_stack(S + Tau)
            r2 = np.einsum("mi,mij,mj->m", d - offset, Si, d - offset)
            new_used = r2 <= cut
            if new_used.sum() < keep_min:      # never rest on fewer than half the members
                new_used = r2 <= np.sort(r2)[keep_min - 1]
        else:
            new_used = used
        if _ > 0 and np.array_equal(new_used, used):
            break
        used = new_used
        # ... and the maximum-likelihood estimate on them
        Tau, off = _normal_random_effect(d[used], S[used], scale, center, n_iter, tol)
        if center:
            offset = off
    # what the EM leaves near zero is zero within its resolution
    ev, U = np.linalg.eigh(Tau)
    ev = np.where(ev > 1e-6 * np.max(scale), ev, 0.0)
    return (U * ev) @ U.T, used, offset


def _normal_random_effect(d, S, scale, center, n_iter, tol):
    """ML (Tau, offset) of ``d_m ~ N(offset, S_m + Tau)`` by EM, from the moment estimate."""
    q = d.shape[1]
    offset = np.median(d, axis=0) if center else np.zeros(q)
    e = d - offset
    T0 = (e.T @ e - S.sum(axis=0)) / len(d)
    ev, U = np.linalg.eigh(0.5 * (T0 + T0.T))
    # kept off zero: the EM's update is multiplicative in Tau
    Tau = (U * np.maximum(ev, 0.0)) @ U.T + np.diag(_START * scale)
    for _ in range(n_iter):
        Si = _inverse_stack(S + Tau)
        if center:      # generalised least squares
            offset = np.linalg.solve(Si.sum(axis=0), np.einsum("mij,mj->i", Si, d))
        K = Tau @ Si
        Eu = np.einsum("mij,mj->mi", K, d - offset)
        new = (Eu.T @ Eu + (Tau - K @ Tau).sum(axis=0)) / len(d)
        new = 0.5 * (new + new.T)
        step = np.max(np.abs(new - Tau)) / max(np.max(np.abs(new)), 1e-3 * np.max(scale))
        Tau = new
        if step <= tol:
            break
    return Tau, offset


def _inverse_stack(V):
    """Inverses of a stack of small covariances (pinv where one is singular)."""
    return _solve_stack(V, np.broadcast_to(np.eye(V.shape[-1]), V.shape))


def effective_dof(S, Tau, dof_member, dof_tau):
    """Satterthwaite degrees of freedom of ``S + Tau`` per member.

    ``S`` (each member's, from its ``dof_member`` + 1 spatial blocks) and ``Tau``
    (from ``n_members`` members) are estimated with their own degrees of freedom;
    their shares in ``(S + Tau)`` are weighed by the traces of ``(S + Tau)^-1 S``
    and ``(S + Tau)^-1 Tau``.

    Parameters
    ----------
    S : numpy.ndarray, shape (M, q, q)
    Tau : numpy.ndarray, shape (q, q)
    dof_member : numpy.ndarray, shape (M,)
    n_members : int

    Returns
    -------
    numpy.ndarray, shape (M,)
    """
    S = np.asarray(S, float)
    P = _inverse_stack(S + Tau)
    a = np.trace(P @ S, axis1=-2, axis2=-1)
    b = np.trace(P @ Tau, axis1=-2, axis2=-1)
    dof_member = np.maximum(np.asarray(dof_member, float), 1.0)
    dof_tau = max(float(dof_tau), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nu = (a + b) ** 2 / (a ** 2 / dof_member + b ** 2 / dof_tau)
    return np.where(np.isfinite(nu), nu, dof_member)
