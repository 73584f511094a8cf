"""Index Bragg disks on a 2D reciprocal lattice and fit the lattice per pattern.

Plain numpy. Conventions (see the diffraction guide page):

- vectors are ``(gx, gy)`` in the image frame (x = scan column axis, y = scan row axis);
- a lattice is a 2x2 matrix ``M`` whose *columns* are the two basis g-vectors;
- a pattern is modelled as ``p = M @ (h, k) + c``: the offset ``c`` absorbs the
  direct-beam position (descan), so every pattern is centred by the fit itself;
- the reciprocal distortion relative to a reference lattice ``M_ref`` is
  ``A = M @ inv(M_ref)``; the real-space deformation gradient is its inverse
  transpose, ``F = inv(A).T`` (a reciprocal expansion is a real-space contraction),
  and the displacement gradient is ``H = F - I`` with ``H[i, j] = du_i/dx_j``.
"""

import numpy as np

from ..fields import gradient_from_reciprocal

#: Number of numbers :func:`fit_lattice` returns per pattern (see its docstring).
N_OUT = 12


def reduce_basis(g1, g2):
    """Lagrange-Gauss reduction of a 2D lattice basis (shortest, most orthogonal pair).

    Parameters
    ----------
    g1, g2 : array_like, shape (2,)

    Returns
    -------
    numpy.ndarray, shape (2, 2)
        Rows: the reduced basis vectors, the shorter first, with a right-handed
        pair (``g1 x g2 > 0``) and ``g1`` pointing toward +x (or +y).
    """
    u, v = np.asarray(g1, float), np.asarray(g2, float)
    if abs(u[0] * v[1] - u[1] * v[0]) < 1e-12 * (u @ u + v @ v):
        raise ValueError("basis vectors are collinear")
    while True:
        if u @ u > v @ v:
            u, v = v, u
        m = np.round((u @ v) / (u @ u))
        if m == 0:
            break
        v = v - m * u
    if u[0] * v[1] - u[1] * v[0] < 0:
        v = -v
    # a canonical sign: g1 points into the half-plane x > 0 (or along +y); negating
    # both vectors keeps the pair right-handed
    if u[0] < 0 or (u[0] == 0 and u[1] < 0):
        u, v = -u, -v
    return np.array([u, v])


def basis_from_vectors(vectors, weights=None, min_fraction=0.6):
    """Pick two basis g-vectors from the disk positions of one (mean) pattern.

    Parameters
    ----------
    vectors : array_like, shape (n, 2)
        Disk positions relative to the direct beam (any length unit), the direct
        beam itself excluded.
    weights : array_like, shape (n,), optional
        Disk intensities; unused except to break ties.
    min_fraction : float
        Fraction of the disks that the chosen basis must index to within 0.2 of
        an integer; below it a ``ValueError`` says the pattern is no 2D lattice.

    Returns
    -------
    numpy.ndarray, shape (2, 2)
        Rows g1, g2 (reduced, right-handed).
    """
    v = np.asarray(vectors, dtype=float).reshape(-1, 2)
    if len(v) < 2:
        raise ValueError(
            f"found {len(v)} Bragg disk(s) besides the direct beam; need at least 2 "
            "to pick a basis (check disk_radius and threshold, or pass basis=)"
        )
    order = np.argsort(np.hypot(v[:, 0], v[:, 1]))
    v = v[order]
    g1 = v[0]
    g2 = None
    for w in v[1:]:
        cross = abs(g1[0] * w[1] - g1[1] * w[0])
        if cross > 0.3 * np.hypot(*g1) * np.hypot(*w):
            g2 = w
            break
    if g2 is None:
        raise ValueError("all Bragg disks found lie on one line; pass basis= explicitly")
    basis = reduce_basis(g1, g2)
    frac = v @ np.linalg.inv(basis)
    ok = np.all(np.abs(frac - np.round(frac)) < 0.2, axis=1)
    if ok.mean() < min_fraction:
        raise ValueError(
            f"the automatic basis indexes only {ok.mean():.0%} of the disks; "
            "pass basis= explicitly"
        )
    return basis


def fit_lattice(positions, weights, lattice, center, tol=0.25, n_iter=2, min_disks=4):
    """Index disks on a lattice and fit ``p = M (h, k) + c`` by weighted least squares.

    Parameters
    ----------
    positions : array_like, shape (n, 2)
        Disk centres (gx, gy) in calibrated detector units, image frame.
    weights : array_like, shape (n,)
        Disk intensities (counts); the centroid of a disk of ``N`` counts has a
        variance ~ 1/N, so these are the inverse-variance weights.
    lattice : array_like, shape (2, 2)
        Starting lattice, columns g1, g2.
    center : array_like, shape (2,)
        Starting direct-beam position.
    tol : float
        A disk is indexed when both fractional indices lie within ``tol`` of an integer.
    n_iter : int
        Index-fit rounds (re-indexing with the fitted lattice picks up weak,
        far disks that the starting lattice misplaces).
    min_disks : int
        Fewer indexed disks than this (or a degenerate set) gives NaN.

    Returns
    -------
    numpy.ndarray, shape (12,)
        ``M00, M01, M10, M11, cx, cy, s2x, s2y, C00, C01, C11, n``: the fitted
        lattice, the offset, the residual variances of the x and y rows (weighted,
        so they scale the covariance), the (h, k) block of ``inv(X^T W X)`` and the
        number of indexed disks. NaN (n = number found) where the fit failed.
    """
    out = np.full(N_OUT, np.nan)
    p = np.asarray(positions, dtype=float).reshape(-1, 2)
    w = np.clip(np.asarray(weights, dtype=float).ravel(), 1e-12, None)
    out[11] = 0
    if len(p) < min_disks:
        out[11] = len(p)
        return out
    M = np.asarray(lattice, dtype=float)
    c = np.asarray(center, dtype=float)
    for _ in range(max(1, n_iter)):
        frac = (p - c) @ np.linalg.inv(M).T
        hk = np.round(frac)
        keep = np.all(np.abs(frac - hk) < tol, axis=1)
        hk, pk, wk = hk[keep], p[keep], w[keep]
        # one disk per (h, k): the strongest
        if len(hk):
            key = (hk[:, 0] * 100003 + hk[:, 1]).astype(np.int64)
            order = np.lexsort((-wk, key))
            first = np.ones(len(order), bool)
            first[1:] = key[order][1:] != key[order][:-1]
            sel = order[first]
            hk, pk, wk = hk[sel], pk[sel], wk[sel]
        n = len(hk)
        out[11] = n
        if n < min_disks:
            return out
        X = np.column_stack([hk, np.ones(n)])
        sw = np.sqrt(wk / wk.mean())
        Xw = X * sw[:, None]
        if np.linalg.matrix_rank(Xw, tol=1e-8 * np.abs(Xw).max()) < 3:
            return out  # collinear disks: the lattice is not determined
        beta, *_ = np.linalg.lstsq(Xw, pk * sw[:, None], rcond=None)
        M, c = beta[:2].T, beta[2]
    resid = (pk - X @ beta) * sw[:, None]
    dof = n - 3
    s2 = (resid**2).sum(axis=0) / dof if dof > 0 else np.full(2, np.nan)
    cov = np.linalg.inv(Xw.T @ Xw)
    out[:4] = M.ravel()
    out[4:6] = c
    out[6:8] = s2
    out[8:11] = cov[0, 0], cov[0, 1], cov[1, 1]
    return out


def displacement_gradient(lattices, reference):
    """Real-space displacement gradient from per-pixel and reference reciprocal lattices.

    Parameters
    ----------
    lattices : numpy.ndarray, shape (..., 2, 2)
        Fitted lattices (columns g1, g2), NaN where the fit failed.
    reference : numpy.ndarray, shape (2, 2)
        Reference (unstrained) lattice.

    Returns
    -------
    H : numpy.ndarray, shape (..., 2, 2)
        ``H[..., i, j] = du_i/dx_j`` (i, j = x, y), exactly ``inv(A).T - I`` with
        ``A = M @ inv(M_ref)``, no small-strain approximation.
    """
    return gradient_from_reciprocal(np.asarray(lattices, dtype=float) @ np.linalg.inv(reference))


def component_variance(fits, reference):
    """Per-pixel variance of (e11, e22, e12, theta) from :func:`fit_lattice` output.

    First order in the strain: ``H ~ -A^T`` with ``A = M inv(M_ref)``; row r of ``M``
    has covariance ``s2_r * C`` (C the (h, k) block of ``inv(X^T W X)``), and the x
    and y rows are independent.

    Parameters
    ----------
    fits : numpy.ndarray, shape (..., 12)
    reference : numpy.ndarray, shape (2, 2)

    Returns
    -------
    numpy.ndarray, shape (4, ...)
    """
    fits = np.asarray(fits, dtype=float)
    Rinv = np.linalg.inv(reference)
    C = np.empty(fits.shape[:-1] + (2, 2))
    C[..., 0, 0], C[..., 1, 1] = fits[..., 8], fits[..., 10]
    C[..., 0, 1] = C[..., 1, 0] = fits[..., 9]
    # var(A[r, i]) = s2_r * v_i^T C v_i with v_i the i-th column of inv(M_ref)
    q = np.einsum("ki,...kl,li->...i", Rinv, C, Rinv)  # (..., 2): i = 0, 1
    varA = fits[..., 6:8, None] * q[..., None, :]  # (..., r, i)
    v11 = varA[..., 0, 0]
    v22 = varA[..., 1, 1]
    vshear = 0.25 * (varA[..., 0, 1] + varA[..., 1, 0])
    return np.stack([v11, v22, vshear, vshear])
