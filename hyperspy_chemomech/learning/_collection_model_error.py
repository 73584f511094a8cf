"""The members' common model error: a random effect on each member's law (a collection).

Each member's law deviates from the collection's by its noise, which its own
spatial-block jackknife knows (``S_m``), and by a misfit of the model that the
member's own blocks cannot see: the forward model (a Gaussian stand-in for the
X-ray pixels' blur, C(X) and the free edge not commuting with the blur on small
particles) errs differently for each outline and composition pattern. Measured
on homogeneous synthetic collections (20 x 20 members of ~100 x 170 px), the
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

#: Start of the EM (a fraction of the members' median variance): the EM's update is
#: multiplicative in Tau, and Tau = 0 would be a fixed point.
_START = 0.25
#: The homogeneity test's robust estimate leaves out members beyond the chi-square
#: quantile 1 - EXCLUDE_P / M: the trade between false alarms (members whose own misfit
#: is large) and masking (odd members that widen Tau). Measured on 32 + 32 synthetic
#: collections of 20 members (seeds 0-31, odd 10000-10031): 1e-2 false alarms 0.25,
#: detections of 3 odd members 1.00; 1e-3 0.125, 0.84; 1e-4 0.06, 0.72. (Without
#: Tau: 0.50, 1.00.)
EXCLUDE_P = 1e-3


def member_model_error(d, S, exclude_p=None, n_iter=200, tol=1e-6):
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
    n_iter : int
    tol : float
        Change of Tau (relative to the members' median variance) that stops the EM.

    Returns
    -------
    Tau : numpy.ndarray, shape (q, q)
        Positive semi-definite; zero when the members scatter no more than ``S``.
    used : numpy.ndarray of bool, shape (M,)
        The members the estimate rests on.
    """
    d = np.asarray(d, float)
    S = np.asarray(S, float)
    if d.ndim != 2 or S.shape != d.shape + (d.shape[1],):
        raise ValueError(f"d must be (M, q) and S (M, q, q), got {d.shape} and {S.shape}")
    if exclude_p is not None and not 0 < exclude_p < 1:
        raise ValueError(f"exclude_p must lie in (0, 1) or be None, got {exclude_p!r}")
    M, q = d.shape
    used = np.ones(M, bool)
    if M < 3 or q == 0:
        return np.zeros((q, q)), used
    scale = np.median(np.diagonal(S, axis1=1, axis2=2), axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1e-300)
    Tau = np.diag(_START * scale)
    cut = np.inf if exclude_p is None else stats.chi2.isf(exclude_p / M, q)
    keep_min = (M + 1) // 2
    for _ in range(n_iter):
        Si = np.linalg.pinv(S + Tau)
        if exclude_p is not None:
            r2 = np.einsum("mi,mij,mj->m", d, Si, d)
            used = r2 <= cut
            if used.sum() < keep_min:      # never rest on fewer than half the members
                used = r2 <= np.sort(r2)[keep_min - 1]
        # EM for a normal random effect u_m (d_m = u_m + e_m): E[u u^T | d_m], averaged
        K = Tau @ Si[used]
        Eu = np.einsum("mij,mj->mi", K, d[used])
        new = (Eu.T @ Eu + (Tau - K @ Tau).sum(axis=0)) / used.sum()
        new = 0.5 * (new + new.T)
        step = np.max(np.abs(new - Tau) / np.sqrt(np.outer(scale, scale)))
        Tau = new
        if step <= tol:
            break
    # what the EM leaves near zero is zero within its resolution
    ev, U = np.linalg.eigh(Tau)
    ev = np.where(ev > 1e-6 * np.max(scale), ev, 0.0)
    return (U * ev) @ U.T, used


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
    P = np.linalg.pinv(S + Tau)
    a = np.trace(P @ S, axis1=-2, axis2=-1)
    b = np.trace(P @ Tau, axis1=-2, axis2=-1)
    dof_member = np.maximum(np.asarray(dof_member, float), 1.0)
    dof_tau = max(float(dof_tau), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nu = (a + b) ** 2 / (a ** 2 / dof_member + b ** 2 / dof_tau)
    return np.where(np.isfinite(nu), nu, dof_member)
