"""Noise of the optical density and its propagation into the unmixed amounts.

``Cov(t) = P diag(var(OD)) P^T`` with ``P = (A^T A)^-1 A^T`` the least-squares
operator, for any per-value variance; for Poisson counts the variance at the fitted
model, a smooth function of the amounts tabulated once per stack.
"""

import numpy as np

from .._utils import with_one_blas_thread
from ._compiled import kernels, use_compiled_pass


def propagate_variance(variance, A):
    """Covariance of the least-squares coefficients from per-point noise variances.

    ``Cov(t) = P diag(var) P^T`` with ``P = (A^T A)^-1 A^T`` the least-squares
    operator (exact for the unconstrained fit; for NNLS pixels on the boundary it is
    that of the unconstrained solution).

    Parameters
    ----------
    variance : numpy.ndarray, shape (..., n_energies)
        Noise variance of each OD value (e.g. Poisson: ``exp(OD) / I0``).
    A : numpy.ndarray, shape (n_energies, K)
        References.

    Returns
    -------
    numpy.ndarray, shape (..., K (K + 1) / 2)
        Upper triangle of the covariance, row by row (the layout of :func:`unpack`).
    """
    K, ne = A.shape[1], A.shape[0]
    P = np.linalg.solve(A.T @ A, A.T)
    iu = np.triu_indices(K)
    V = np.asarray(variance, dtype=float)
    out = V.reshape(-1, ne) @ (P[iu[0]] * P[iu[1]]).T
    return out.reshape(V.shape[:-1] + (iu[0].size,))


class PoissonODVariance:
    """Noise variance of the optical density of Poisson counts: ``exp(OD) / I0``.

    ``Var(ln I) = 1 / lambda`` for Poisson counts of mean ``lambda = I0 exp(-OD)``.
    Called on a block of OD it gives ``exp(OD) / I0`` of those values; the covariance of
    the unmixing (:meth:`coefficient_covariance`) evaluates it at the fitted model
    ``OD = A t``, the expected counts: the measured ones give a noisier weight, biased
    upwards (``E[1 / I] > 1 / lambda``), and the model makes the covariance a smooth
    function of the K amounts, tabulated once per stack.

    Parameters
    ----------
    i0 : numpy.ndarray, shape (n_energies,)
        Incident counts per energy.
    """

    #: table step (OD units) of the model covariance in each amount: bilinear
    #: interpolation of a sum of exponentials is then exact to (0.02)^2 / 8 = 5e-5
    TABLE_STEP_OD = 0.02
    #: largest table (entries): beyond it the model is evaluated pixel by pixel
    TABLE_MAX_SIZE = 1 << 18

    def __init__(self, i0):
        self.i0 = np.asarray(i0, dtype=float)

    def __call__(self, od_block):
        v = np.exp(od_block)
        v /= self.i0
        return v

    def coefficient_covariance(self, t, A, mask=None, out=None):
        """Cov(t) of the least-squares amounts at the model ``OD = A t``, per pixel.

        ``Cov(t) = P diag(exp(A t) / I0) P^T``, ``P = (A^T A)^-1 A^T``.

        Parameters
        ----------
        t : numpy.ndarray, shape (K, m)
            Amounts of the references (their units) of ``m`` pixels, one row each.
        A : numpy.ndarray, shape (n_energies, K)
            References (OD per unit amount).
        mask : numpy.ndarray of bool, shape (m,), optional
            Pixels to evaluate (the particle); NaN at the others.
        out : numpy.ndarray, shape (K (K + 1) / 2, m), optional
            Array to write into (with ``mask``; any strides).

        Returns
        -------
        numpy.ndarray, shape (K (K + 1) / 2, m)
            Upper triangle of the covariance, row by row (the layout of :func:`unpack`).
        """
        K = A.shape[1]
        P = np.linalg.solve(A.T @ A, A.T)
        iu = np.triu_indices(K)
        W = (P[iu[0]] * P[iu[1]]) / self.i0          # (n_tri, n_energies)
        t = np.asarray(t, dtype=float)
        if t.ndim != 2 or t.shape[0] != K:
            raise ValueError(f"t must hold one row per reference ({K}, m), got {t.shape}")
        if mask is not None:
            mask = np.ascontiguousarray(mask, dtype=bool).ravel()
            if mask.shape != (t.shape[1],):
                raise ValueError(f"mask must have one value per pixel ({t.shape[1]}), "
                                 f"got {mask.shape}")
            if out is None:
                out = np.empty((W.shape[0], t.shape[1]))
            elif out.shape != (W.shape[0], t.shape[1]):
                raise ValueError(f"out must be {(W.shape[0], t.shape[1])}, got {out.shape}")
            if K == 2 and use_compiled_pass(t.size):
                # one loop for the amounts' range, one for the table at the particle's
                # pixels: no gather, no scatter (t may be views of an (m, 2) array)
                lo0, hi0, lo1, hi1, count = kernels()["masked_range_2"](t, mask)
                table = None
                if count > 4096:
                    table = self._table(np.array([lo0, lo1]), np.array([hi0, hi1]), A, W)
                if table is not None:
                    g0, g1, values = table
                    kernels()["bilinear_masked"](t, mask, *_grid_scale(g0), *_grid_scale(g1),
                                                 np.moveaxis(values, 0, -1).copy(), out)
                    return out
        if mask is not None:  # as the compiled lookup: NaN where an amount is not finite
            mask = mask & np.isfinite(t).all(axis=0)
        inside = t if mask is None else compress_rows(mask, t)
        table = None
        if K == 2 and inside.shape[1] > 4096:
            table = self._table(inside.min(axis=1), inside.max(axis=1), A, W)
        vals = W @ np.exp(A @ inside) if table is None else _bilinear(inside, *table)
        if mask is None:
            return vals
        out[...] = np.nan
        for row, v in zip(out, vals):  # row by row: 2D fancy assignment is slower
            row[mask] = v
        return out

    def _table(self, lo, hi, A, W):
        """The covariance on a grid of the two amounts over [lo, hi]: (grids, values) or None."""
        span = (hi - lo) * np.abs(A).max(axis=0)          # OD range of each amount
        n = np.maximum(np.ceil(span / self.TABLE_STEP_OD).astype(int) + 1, 2)
        if n[0] * n[1] > self.TABLE_MAX_SIZE or not np.all(np.isfinite(span)):
            return None
        g0, g1 = np.linspace(lo[0], hi[0], n[0]), np.linspace(lo[1], hi[1], n[1])
        # exp(a0 t0 + a1 t1) = exp(a0 t0) exp(a1 t1): two small exponentials per energy
        # and one product per covariance entry; on the uniform grids each is a power
        # series (cumulative products: exact to ~n eps, and cheaper than exp here)
        U0, U1 = _exp_on_grid(A[:, 0], g0), _exp_on_grid(A[:, 1], g1)
        # every covariance entry in one product: (n_tri n0, n_energies) @ (n_energies, n1)
        left = (W[:, None, :] * U0.T[None]).reshape(-1, A.shape[0])
        return g0, g1, (left @ U1).reshape(W.shape[0], n[0], n[1])


def compress_rows(mask, t):
    """``np.compress(mask, t, axis=1)`` row by row, contiguous: on (K, m) rows that are
    views of an (m, K) array NumPy's axis-1 operations run K-long inner loops."""
    return np.stack([np.compress(mask, row) for row in t])


def _exp_on_grid(a, g):
    """``exp(a[:, None] * g)`` (len(a), len(g)) on a uniform grid ``g``, by cumulative products."""
    steps = np.empty((a.size, g.size))
    steps[:, 0] = np.exp(a * g[0])
    if g.size > 1:
        steps[:, 1:] = np.exp(a * (g[1] - g[0]))[:, None]
    return np.cumprod(steps, axis=1)


def _grid_scale(g):
    """(first node, nodes per unit, number of nodes) of a uniform grid."""
    return float(g[0]), (g.size - 1) / max(float(g[-1] - g[0]), 1e-300), g.size


def _bilinear(t, g0, g1, values):
    """Bilinear interpolation of ``values`` (c, n0, n1) on the grids at points ``t`` (2, m)."""
    g00, su, n0 = _grid_scale(g0)
    g10, sv, n1 = _grid_scale(g1)
    u = (t[0] - g00) * su
    v = (t[1] - g10) * sv
    i = np.minimum(u.astype(np.intp), n0 - 2)   # u, v >= 0: the grids span t
    j = np.minimum(v.astype(np.intp), n1 - 2)
    fu, fv = u - i, v - j
    k = i * n1 + j
    w11 = fu * fv
    w10 = fu - w11
    w01 = fv - w11
    w00 = 1.0 - fu - w01
    out = np.empty((values.shape[0], t.shape[1]))
    for c, vals in enumerate(values.reshape(values.shape[0], -1)):
        # one flat gather per corner (faster than fancy indexing of the 2D table)
        o = out[c]
        np.multiply(vals.take(k), w00, out=o)
        o += vals.take(k + 1) * w01
        o += vals.take(k + n1) * w10
        o += vals.take(k + n1 + 1) * w11
    return out


def _particle_covariance(data, A, variance, mask, t, chunk_pixels, out=None):
    """Upper triangle (K (K+1)/2, ny * nx) of Cov(t), NaN off ``mask`` (into ``out``).

    Poisson noise (:class:`PoissonODVariance`) is evaluated at the model from the
    amounts ``t`` (K, ny * nx): no second pass over the data. Any other ``variance``
    callable is evaluated on the data of the particle's pixels.
    """
    K = A.shape[1]
    n_tri = K * (K + 1) // 2
    ny, nx, ne = data.shape
    m = np.asarray(mask, dtype=bool).ravel()
    if isinstance(variance, PoissonODVariance):
        return variance.coefficient_covariance(t, A, mask=m, out=out)
    if out is None:
        out = np.empty((n_tri, ny * nx))
    out[...] = np.nan

    @with_one_blas_thread
    def block(y, mb):
        o = np.full(y.shape[:2] + (n_tri,), np.nan)
        mb = mb[..., 0]
        if mb.any():
            o[mb] = propagate_variance(variance(y[mb]), A)
        return o

    if hasattr(data, "dask"):
        import dask.array as da

        Y = data.rechunk({2: -1})
        M = da.from_array(np.asarray(mask, bool)[..., None], chunks=Y.chunks[:2] + ((1,),))
        res = da.map_blocks(block, Y, M, dtype=float, chunks=Y.chunks[:2] + ((n_tri,),))
        out[...] = np.asarray(res.compute()).reshape(-1, n_tri).T
        return out
    flat = np.asarray(data).reshape(-1, ne)
    rows = np.flatnonzero(m)
    for s in range(0, rows.size, chunk_pixels):
        r = rows[s: s + chunk_pixels]
        out[:, r] = propagate_variance(variance(flat[r]), A).T
    return out
