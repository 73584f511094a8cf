"""Per-pixel linear unmixing of optical-density spectra with reference spectra.

Model: ``OD(E) = sum_k t_k mu_k(E)`` per pixel, ``t_k`` the amount (thickness in the
references' units) of end member ``k``. All pixels are solved at once from the
normal equations: with ``A`` (n_energies, K) the references, ``G = A^T A`` and
``b = Y A`` (one matrix product over the stack), the least-squares coefficients are
``b G^-1`` and the residual sum of squares is ``|y|^2 - 2 t.b + t G t`` for any ``t``,
so no residual stack is ever formed. Non-negative least squares (NNLS) is exact and
vectorised: a pixel whose unconstrained solution has a negative component is solved
on every subset of the references (2^K - 1 small systems, all pixels at once) and
keeps the feasible subset solution with the smallest residual, which is the NNLS
optimum (the optimum is the least-squares solution on its own support).
"""

import itertools

import numpy as np

from .._utils import progressbar, with_one_blas_thread
from ._compiled import kernels, pixel_chunks, use_compiled_pass
from ._noise import _particle_covariance, compress_rows, propagate_variance
from ._particle import particle_mask

#: pixels per chunk of the eager computation (bounds the temporary memory)
CHUNK_PIXELS = 16384


def _check_design(A):
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[1] < 1:
        raise ValueError(f"references must form an (n_energies, K) matrix, got {A.shape}")
    if A.shape[0] <= A.shape[1]:
        raise ValueError(
            f"need more energies ({A.shape[0]}) than references ({A.shape[1]})"
        )
    s = np.linalg.svd(A, compute_uv=False)
    if s[-1] <= 1e-10 * s[0]:
        raise ValueError(
            "the reference spectra are linearly dependent on these energies "
            f"(condition number {s[0] / max(s[-1], 1e-300):.3g}); they cannot be unmixed"
        )
    return A


def _solve_subsets(b, yy, G, bad):
    """Exact NNLS for the pixels ``bad`` by enumerating the references' subsets.

    ``bad`` pixels are those whose unconstrained solution has a negative component,
    so the full set of references is infeasible for them and only proper subsets
    are tried.
    """
    K = G.shape[0]
    bb, yb = b[bad], yy[bad]
    best_t = np.zeros((bb.shape[0], K))
    best_rss = yb.copy()  # the empty subset: t = 0
    # one reference alone: t_j = b_j / G_jj, misfit |y|^2 - b_j^2 / G_jj, all at once
    g = np.diag(G)
    rss1 = yb[:, None] - bb * bb / g
    rss1[bb < 0] = np.inf  # t_j < 0: infeasible
    j = np.argmin(rss1, axis=1)
    rows = np.arange(bb.shape[0])
    better = rss1[rows, j] < best_rss
    best_rss[better] = rss1[rows, j][better]
    best_t[rows[better], j[better]] = bb[rows[better], j[better]] / g[j[better]]
    for r in range(2, K):
        for subset in itertools.combinations(range(K), r):
            idx = list(subset)
            bs = bb[:, idx]
            t_s = bs @ np.linalg.inv(G[np.ix_(idx, idx)])  # G_ss symmetric
            feasible = np.all(t_s >= 0, axis=1)
            rss = yb - np.einsum("ij,ij->i", t_s, bs)
            better = feasible & (rss < best_rss)
            if better.any():
                best_rss[better] = rss[better]
                rows = np.flatnonzero(better)
                best_t[rows] = 0.0
                best_t[np.ix_(rows, idx)] = t_s[rows]
    return best_t


def unmix_block(Y, A, method="nnls", variance=None):
    """Unmix a block of spectra.

    Parameters
    ----------
    Y : numpy.ndarray, shape (..., n_energies)
        Optical densities. Pixels with any NaN give NaN results.
    A : numpy.ndarray, shape (n_energies, K)
        References on the same energies.
    method : {"nnls", "lstsq"}
        Non-negative or unconstrained least squares.
    variance : numpy.ndarray or None
        Per-point noise variance of ``Y`` (same shape, e.g. Poisson ``exp(OD)/I0``)
        for the error propagation; ``None`` estimates a per-pixel variance from the
        fit residual (``rss / (n_energies - K)``).

    Returns
    -------
    numpy.ndarray, shape (..., K + 1 + K (K + 1) / 2)
        Packed per pixel: coefficients ``t`` (K), residual RMS (1), then the
        covariance of ``t``: its upper triangle, row by row (K (K + 1) / 2); see
        :func:`unpack`.
    """
    K = A.shape[1]
    ne = A.shape[0]
    shape = Y.shape[:-1]
    Y2 = Y.reshape(-1, ne)
    G = A.T @ A
    Ginv = np.linalg.inv(G)
    b = Y2 @ A
    yy = np.einsum("ij,ij->i", Y2, Y2)
    # NaN anywhere in a spectrum propagates into its |y|^2: no extra pass needed
    finite = np.isfinite(yy)
    if not finite.all():
        b[~finite], yy[~finite] = 0.0, 0.0
    t = b @ Ginv
    if method == "nnls":
        bad = np.any(t < 0, axis=1)
        if bad.any():
            t[bad] = _solve_subsets(b, yy, G, bad)
    elif method != "lstsq":
        raise ValueError(f"unknown method {method!r}; use 'nnls' or 'lstsq'")
    rss = yy - 2 * np.einsum("ij,ij->i", t, b) + np.einsum("ij,jk,ik->i", t, G, t)
    rss = np.maximum(rss, 0.0)
    if variance is None:
        iu = np.triu_indices(K)
        cov = (rss / (ne - K))[:, None] * Ginv[iu][None, :]
    else:
        cov = propagate_variance(variance, A).reshape(-1, K * (K + 1) // 2)
    out = np.concatenate([t, np.sqrt(rss / ne)[:, None], cov], axis=1)
    out[~finite] = np.nan
    return out.reshape(shape + (out.shape[-1],))


def unpack(packed, K):
    """Split :func:`unmix_block`'s output into (t, residual_rms, covariance (..., K, K))."""
    t = packed[..., :K]
    rms = packed[..., K]
    iu = np.triu_indices(K)
    cov = np.empty(packed.shape[:-1] + (K, K))
    cov[..., iu[0], iu[1]] = packed[..., K + 1:]
    cov[..., iu[1], iu[0]] = packed[..., K + 1:]
    return t, rms, cov


def composition_from_coefficients(t, cov):
    """Fraction of the last reference and its standard error.

    Parameters
    ----------
    t : numpy.ndarray, shape (..., K)
        Coefficients.
    cov : numpy.ndarray, shape (..., K, K)
        Their covariance.

    Returns
    -------
    X, sigma_X, total : numpy.ndarray, shape (...)
        ``X = t_K / sum(t)``, its first-order (delta-method) standard error, and
        ``sum(t)``. Pixels with ``sum(t) <= 0`` give NaN.
    """
    return _fraction(t.sum(axis=-1), t[..., -1], cov[..., -1, -1],
                     cov[..., :, -1].sum(axis=-1), cov.sum(axis=(-2, -1)))


def composition_from_rows(t, tri, mask=None, out=None, total=None):
    """:func:`composition_from_coefficients` on rows: ``t`` (K, m), ``tri`` (K (K+1)/2, m).

    ``tri`` is the upper triangle of each pixel's covariance, row by row (the layout
    of :func:`unpack`).

    Parameters
    ----------
    t : numpy.ndarray, shape (K, m)
    tri : numpy.ndarray, shape (K (K + 1) / 2, m)
    mask : numpy.ndarray of bool, shape (m,), optional
        Pixels where X and its error are wanted (the particle): NaN at the others.
        ``total`` is given at every pixel.
    out : tuple of two numpy.ndarray, shape (m,), optional
        Arrays to write X and sigma_X into (with ``mask``).
    total : numpy.ndarray, shape (m,), optional
        ``t.sum(axis=0)`` if already known (with ``mask``).

    Returns
    -------
    X, sigma_X, total : numpy.ndarray, shape (m,)
    """
    t, tri = np.asarray(t, dtype=float), np.asarray(tri, dtype=float)
    if t.ndim != 2 or tri.shape != (t.shape[0] * (t.shape[0] + 1) // 2, t.shape[1]):
        raise ValueError(f"t must be (K, m) and tri (K (K+1)/2, m): got {t.shape} and {tri.shape}")
    K, m = t.shape
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=bool).ravel()
        if mask.shape != (m,):
            raise ValueError(f"mask must have one value per pixel ({m}), got {mask.shape}")
        X, sigma = (np.empty(m), np.empty(m)) if out is None else out
        if X.shape != (m,) or sigma.shape != (m,):
            raise ValueError(f"out must be two arrays of {m} values, got {X.shape}, {sigma.shape}")
        total = _sum_rows(t) if total is None else total
        if K == 2 and use_compiled_pass(t.size):
            kernels()["fraction_2"](t, tri, mask, X, sigma)
            return X, sigma, total
        X[...], sigma[...] = np.nan, np.nan
        X[mask], sigma[mask], _ = composition_from_rows(compress_rows(mask, t),
                                                        compress_rows(mask, tri))
        return X, sigma, total
    iu = np.triu_indices(K)
    last = iu[1] == K - 1                    # entries (j, K) of the last column
    off = (iu[0] != iu[1]).astype(float)     # off-diagonal entries count twice
    return _fraction(t.sum(axis=0), t[-1], tri[-1], last.astype(float) @ tri,
                     (1.0 + off) @ tri)


def _fraction(total, t_last, c_last, c_col, c_sum):
    """``X = t_K / S`` and its delta-method error from ``C_KK``, ``sum_j C_jK``, ``sum C``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(total > 0, total, np.nan)
        X = t_last / safe
        # dX/dt_j = (delta_jK - X) / S, so g^T C g = (C_KK - 2 X sum_j C_jK
        # + X^2 sum_ij C_ij) / S^2
        var = (c_last - 2 * X * c_col + X * X * c_sum) / (safe * safe)
    return X, np.sqrt(np.maximum(var, 0.0)), total


def unmix(od, A, method="nnls", variance=None, show_progressbar=None,
          chunk_pixels=CHUNK_PIXELS):
    """Unmix a whole stack in pixel chunks (bounded temporary memory).

    Parameters
    ----------
    od : numpy.ndarray, shape (..., n_energies)
        Optical density.
    A : numpy.ndarray, shape (n_energies, K)
    method : {"nnls", "lstsq"}
    variance : callable or None
        ``variance(od_chunk) -> variance_chunk`` for Poisson error propagation, or
        ``None`` for the residual-based estimate.
    show_progressbar : bool, optional
    chunk_pixels : int
        Pixels per chunk.

    Returns
    -------
    numpy.ndarray, shape (..., K + 1 + K (K + 1) / 2)
        Packed results, see :func:`unmix_block` and :func:`unpack`.
    """
    A = _check_design(A)
    od = np.asarray(od)
    if od.shape[-1] != A.shape[0]:
        raise ValueError(
            f"the data have {od.shape[-1]} energies but the references {A.shape[0]}"
        )
    K = A.shape[1]
    flat = od.reshape(-1, od.shape[-1])
    out = np.empty((flat.shape[0], K + 1 + K * (K + 1) // 2))
    starts = range(0, flat.shape[0], int(chunk_pixels))
    for s in progressbar(starts, show_progressbar=show_progressbar, desc="unmixing",
                         leave=False):
        blk = flat[s: s + chunk_pixels]
        out[s: s + chunk_pixels] = unmix_block(
            blk, A, method, None if variance is None else variance(blk)
        )
    return out.reshape(od.shape[:-1] + (out.shape[-1],))


def _unmix_any(data, A, method, show_progressbar):
    """Packed unmixing results (ny, nx, P) of a dask stack, one BLAS thread per chunk."""
    A = _check_design(A)
    if data.shape[-1] != A.shape[0]:
        raise ValueError(f"the data have {data.shape[-1]} energies but the references {A.shape[0]}")
    K = A.shape[1]
    P = K + 1 + K * (K + 1) // 2
    Y = data.rechunk({2: -1})
    out = Y.map_blocks(with_one_blas_thread(unmix_block), A, method, dtype=float,
                       chunks=Y.chunks[:2] + ((P,),))
    return np.asarray(out.compute())


#: pixels per chunk of the eager pass: a chunk of 120 energies (~240 KiB) stays in the
#: (512 KiB) L2 cache while every product over it is formed, so the stack is read from
#: memory once
CACHE_PIXELS = 256


def _nnls_pairs(bt, G):
    """NNLS of two references for pixels whose unconstrained solution is infeasible.

    With two references the optimum of such a pixel lies on one reference alone
    (or at zero): ``t_j = max(b_j, 0) / G_jj`` for the ``j`` with the larger
    explained square ``max(b_j, 0)^2 / G_jj`` (the misfit is ``|y|^2`` less it).

    Parameters
    ----------
    bt : numpy.ndarray, shape (2, m)
        ``A^T y`` of the pixels.
    G : numpy.ndarray, shape (2, 2)

    Returns
    -------
    numpy.ndarray, shape (2, m)
    """
    g = np.diag(G)
    c = np.maximum(bt, 0.0) / g[:, None]
    first = c[0] * bt[0] >= c[1] * bt[1]
    out = np.zeros_like(c)
    out[0] = np.where(first, c[0], 0.0)
    out[1] = np.where(first, 0.0, c[1])
    return out


def _products(flat, A, show_progressbar, chunk_pixels, meanwhile=None):
    """``A^T y`` (K, n) and ``|y|^2`` (n,) of every pixel of ``flat`` (n, n_energies)."""
    n = flat.shape[0]
    K = A.shape[1]
    bt = np.empty((K, n))
    yy = np.empty(n)
    if use_compiled_pass(flat.size):
        kernel = kernels()["products_k"]
        AT = np.ascontiguousarray(A.T)
        pixel_chunks(lambda s, e: kernel(flat[s:e], AT, bt, yy, s), n, show_progressbar,
                     meanwhile)
        return bt, yy
    if meanwhile is not None:
        meanwhile()
    cols = [np.ascontiguousarray(A[:, k]) for k in range(K)]
    # a chunk held in the cache, one matrix-vector product per reference: OpenBLAS's
    # matrix-matrix product with 2-3 columns is 2-3x slower than K of them
    starts = range(0, n, int(chunk_pixels))
    for s in progressbar(starts, show_progressbar=show_progressbar, desc="unmixing",
                         leave=False):
        blk = flat[s: s + chunk_pixels]
        for k in range(K):
            np.matmul(blk, cols[k], out=bt[k, s: s + chunk_pixels])
        np.vecdot(blk, blk, out=yy[s: s + chunk_pixels])
    return bt, yy


def _unmix_eager(data, A, method, residual_cov, show_progressbar, chunk_pixels=CACHE_PIXELS,
                 meanwhile=None, out=None):
    """Amounts, misfit and (optionally) the residual-based covariance of a numpy stack.

    The same arithmetic as :func:`unmix_block`, per pixel: one read of the stack in
    cache-sized chunks, then every per-pixel step on (K, n) rows (one contiguous row
    per reference: with K = 2-3 the (n, K) layout spends its time in short inner loops).

    ``out``: optional ``{"t": (K, n), "rms": (n,)}`` arrays (views allowed) to write
    into; the compiled pass writes there directly.

    Returns
    -------
    t : (K, n_pixels), rms : (n_pixels,), tri : (K (K+1)/2, n_pixels) or None
        NaN for pixels whose spectrum holds a NaN.
    """
    out = out or {}
    A = _check_design(A)
    ne, K = A.shape
    if data.shape[-1] != ne:
        raise ValueError(f"the data have {data.shape[-1]} energies but the references {ne}")
    if method not in ("nnls", "lstsq"):
        raise ValueError(f"unknown method {method!r}; use 'nnls' or 'lstsq'")
    flat = np.asarray(data).reshape(-1, ne)
    G = A.T @ A
    Ginv = np.linalg.inv(G)
    if K == 2 and use_compiled_pass(flat.size):
        tt, rss = _compiled_unmix_2(flat, A, G, Ginv, method == "nnls", show_progressbar,
                                    meanwhile, out.get("t"), out.get("rms"))
    else:
        tt, rss = _unmix_rows(flat, A, G, Ginv, method, show_progressbar, chunk_pixels,
                              meanwhile)
        tt, rss = _into(out, "t", tt), _into(out, "rms", rss)
    tri = None
    if residual_cov:
        iu = np.triu_indices(K)
        tri = Ginv[iu][:, None] * (rss / (ne - K))[None, :]
    rss /= ne  # the RMS misfit, in the misfit's own array
    return tt, np.sqrt(rss, out=rss), tri


def _sum_rows(t, out=None):
    """``t.sum(axis=0)`` of (K, n) rows, row by row: on rows that are views of an (n, K)
    array NumPy's reduction runs K-long inner loops (~10x slower)."""
    if len(t) == 2:
        return np.add(t[0], t[1], out=out)
    if out is None:
        out = t[0].copy()
    else:
        out[...] = t[0]
    for row in t[1:]:
        out += row
    return out


def _into(out, name, value):
    """``value`` written into ``out[name]`` when the caller gave that array, else itself."""
    dest = out.get(name)
    if dest is None or dest is value:
        return value
    dest[...] = value
    return dest


def _compiled_unmix_2(flat, A, G, Ginv, nnls, show_progressbar, meanwhile=None, tt=None,
                      rss=None):
    """The fit of two references per pixel in one compiled pass: (t (2, n), rss (n,)).

    ``tt``, ``rss``: arrays to write into (any strides), else new ones.
    """
    n = flat.shape[0]
    tt = np.empty((2, n)) if tt is None else tt
    rss = np.empty(n) if rss is None else rss
    kernel = kernels()["unmix_2"]
    AT = np.ascontiguousarray(A.T)
    nnls = bool(nnls)
    pixel_chunks(lambda s, e: kernel(flat[s:e], AT, Ginv, G, nnls, tt, rss, s), n,
                 show_progressbar, meanwhile)
    return tt, rss


def _unmix_rows(flat, A, G, Ginv, method, show_progressbar, chunk_pixels, meanwhile=None):
    """The fit per pixel from the products, one array operation per step: (t (K, n), rss)."""
    K = A.shape[1]
    # the only pass over the data: its products with the references and its norm
    bt, yy = _products(flat, A, show_progressbar, chunk_pixels, meanwhile)
    # NaN anywhere in a spectrum propagates into its |y|^2
    finite = np.isfinite(yy)
    all_finite = bool(finite.all())
    if not all_finite:
        bt[:, ~finite], yy[~finite] = 0.0, 0.0
    tt = Ginv @ bt
    if method == "nnls":
        if K == 2:  # every pixel's pair solution, kept where the full set is infeasible
            bad = (tt[0] < 0) | (tt[1] < 0)
            np.copyto(tt, _nnls_pairs(bt, G), where=bad)
        else:
            bad = np.flatnonzero((tt < 0).any(axis=0))
            if bad.size:
                # (np.take along the last axis keeps the rows contiguous; t[:, idx] does not)
                tt[:, bad] = _solve_subsets(np.take(bt, bad, axis=1).T, yy[bad], G,
                                            slice(None)).T
    # |y - A t|^2 = |y|^2 - t.b: at the least-squares optimum on its support (the
    # unconstrained one, or NNLS's) (G t)_j = b_j on the support and t_j = 0 off it,
    # so t.G t = t.b
    rss = yy - np.einsum("ki,ki->i", tt, bt)
    np.maximum(rss, 0.0, out=rss)
    if not all_finite:
        tt[:, ~finite], rss[~finite] = np.nan, np.nan
    return tt, rss


# small BLAS work: one thread (spin-waiting BLAS threads: ~11x slower under load, #16)
@with_one_blas_thread
def unmix_stack(data, A, method="nnls", variance=None, mask=None, threshold=None,
                show_progressbar=None):
    """Unmix a whole optical-density stack: amounts, misfit, covariance and the particle.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array, shape (ny, nx, n_energies)
        Optical density (dimensionless); a dask stack is unmixed chunk by chunk.
    A : numpy.ndarray, shape (n_energies, K)
        Reference spectra (OD per unit amount), delithiated first.
    method : {"nnls", "lstsq"}
    variance : callable, optional
        ``od_block -> variance`` of the OD (e.g. Poisson counting); the covariance of
        the amounts is then propagated from it inside the particle (a second pass).
        ``None``: the covariance from the fit residual.
    mask : numpy.ndarray of bool, shape (ny, nx), optional
        The particle; default from the fitted thickness (:func:`particle_mask`).
    threshold : float, optional
        Thickness threshold for the automatic mask.
    show_progressbar : bool, optional

    Returns
    -------
    t : numpy.ndarray, shape (ny, nx, K)
        Amounts of each reference.
    rms : numpy.ndarray, shape (ny, nx)
        RMS OD misfit per pixel.
    cov : numpy.ndarray, shape (ny, nx, K, K)
        Covariance of ``t``.
    mask : numpy.ndarray of bool, shape (ny, nx)
        The particle (finite thickness within the given mask, or the automatic one).
    threshold : float or None
        The thickness threshold used (automatic mask), else the one given.
    """
    ny, nx = data.shape[:2]
    K = A.shape[1]
    t, rms, tri, pmask, threshold = unmix_particle(data, A, method, variance, mask, threshold,
                                                   show_progressbar)
    iu = np.triu_indices(K)
    cov = np.empty((ny, nx, K, K))
    cov[..., iu[0], iu[1]] = tri.T.reshape(ny, nx, -1)
    cov[..., iu[1], iu[0]] = cov[..., iu[0], iu[1]]
    return t.T.reshape(ny, nx, K), rms.reshape(ny, nx), cov, pmask, threshold


@with_one_blas_thread
def unmix_particle(data, A, method="nnls", variance=None, mask=None, threshold=None,
                   show_progressbar=None, meanwhile=None, out=None):
    """:func:`unmix_stack` with its per-pixel results as rows: (K, ny * nx) and the like.

    ``meanwhile`` (callable, no arguments) runs in the calling thread while the
    compiled pass reads the stack on worker threads, or before the pass otherwise:
    Python work that does not need the result, such as building the signal that
    will hold it. ``out``: optional arrays to write the results into, by name
    (``t``, ``rms``, ``tri``, ``thickness`` (ny * nx,), ``mask`` (ny, nx); views of
    the arrays a signal stores are allowed): no copy is then made of them.

    Returns
    -------
    t : numpy.ndarray, shape (K, ny * nx)
    rms : numpy.ndarray, shape (ny * nx,)
    tri : numpy.ndarray, shape (K (K + 1) / 2, ny * nx)
        Upper triangle of Cov(t), row by row (NaN off the particle for ``variance``).
    mask : numpy.ndarray of bool, shape (ny, nx)
    threshold : float or None
    """
    K = A.shape[1]
    out = out or {}
    if threshold is not None:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise ValueError(f"threshold must be a number (thickness units), got {threshold!r}") \
                from None
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite thickness, got {threshold!r}")
    if mask is not None and not np.asarray(mask, dtype=bool).any():
        raise ValueError("mask selects no pixel: the particle would be empty")
    shape = data.shape[:2]
    if hasattr(data, "dask"):
        if meanwhile is not None:
            meanwhile()
        packed = _unmix_any(data, A, method, show_progressbar).reshape(-1, K + 1 + K * (K + 1) // 2)
        t, rms, tri = packed[:, :K].T.copy(), packed[:, K].copy(), packed[:, K + 1:].T.copy()
        t, rms = _into(out, "t", t), _into(out, "rms", rms)
    else:
        t, rms, tri = _unmix_eager(data, A, method, variance is None, show_progressbar,
                                   meanwhile=meanwhile, out=out)
    thick = out.get("thickness")
    thick = _sum_rows(t, thick).reshape(shape)
    if mask is None:
        if not np.isfinite(thick).any():
            raise ValueError("no pixel could be fitted (all spectra hold NaN)")
        pmask, threshold = particle_mask(thick, threshold)
        if not pmask.any():
            raise ValueError(
                f"threshold={threshold:.4g} leaves no pixel in the particle (the fitted "
                f"thickness reaches {np.nanmax(thick):.4g}); lower it or give a mask")
    else:
        pmask = np.asarray(mask, dtype=bool) & np.isfinite(thick)
        if not pmask.any():
            raise ValueError("no pixel inside mask could be fitted (their spectra hold NaN)")
    pmask = _into(out, "mask", pmask)
    if variance is not None:
        tri = _particle_covariance(data, A, variance, pmask, t, CHUNK_PIXELS, out.get("tri"))
    return t, rms, _into(out, "tri", tri), pmask, threshold
