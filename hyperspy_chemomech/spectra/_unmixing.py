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

import functools
import itertools
import sys

import numpy as np

from .._utils import progressbar, with_one_blas_thread

#: pixels per chunk of the eager computation (bounds the temporary memory)
CHUNK_PIXELS = 16384


def interpolate_references(references, energies, shift=0.0):
    """Reference spectra resampled onto the data's energies.

    Parameters
    ----------
    references : sequence of (energies_k, values_k)
        Each reference on its own strictly increasing energy axis (eV).
    energies : numpy.ndarray, shape (n_energies,)
        Energies of the data (eV).
    shift : float
        Energy shift (eV) applied to every reference: the result is
        ``values_k(E - shift)``, i.e. a reference feature at ``E0`` moves to ``E0 + shift``.

    Returns
    -------
    numpy.ndarray, shape (n_energies, K)

    Raises
    ------
    ValueError
        If a reference does not cover the (shifted) data range, or is not increasing.
    """
    e = np.asarray(energies, dtype=float)
    shift = float(shift)
    if not np.isfinite(shift):
        raise ValueError(f"the reference energy shift must be finite (eV), got {shift}")
    cols = []
    for k, (ek, vk) in enumerate(references):
        ek = np.asarray(ek, dtype=float)
        vk = np.asarray(vk, dtype=float)
        if ek.ndim != 1 or ek.shape != vk.shape or ek.size < 2:
            raise ValueError(f"reference {k}: energies and values must be 1D of equal length")
        if np.any(np.diff(ek) <= 0):
            raise ValueError(f"reference {k}: its energy axis must be strictly increasing")
        if not np.all(np.isfinite(vk)):
            raise ValueError(f"reference {k} holds non-finite values")
        lo, hi = e[0] - shift, e[-1] - shift
        tol = 1e-9 * max(1.0, abs(hi))
        if lo < ek[0] - tol or hi > ek[-1] + tol:
            raise ValueError(
                f"reference {k} covers {ek[0]:.2f}-{ek[-1]:.2f} eV but the data need "
                f"{lo:.2f}-{hi:.2f} eV (data range {e[0]:.2f}-{e[-1]:.2f} eV, reference "
                f"shift {shift:+.2f} eV); crop the data or supply wider references"
            )
        cols.append(np.interp(e - shift, ek, vk))
    return np.stack(cols, axis=1)


#: Window (eV) holding the Fe L3 white line of LixFePO4.
FE_L3_WINDOW = (705.0, 713.0)
#: Least shift (eV) of the L3 maximum that tells two iron valences apart.
FE_L3_MIN_SPLIT = 0.5


def check_reference_spectra(references, names=None):
    """Refuse references that cannot be what they claim: negated, or in the wrong order.

    - Every absorption spectrum rises across its edge: a reference whose mean over
      the last tenth of its energies lies below that over the first tenth (a
      negative edge jump) is negated or not an absorption spectrum.
    - References are ordered delithiated -> lithiated (X is the fraction of the
      last). Across the Fe L3 edge (705-713 eV) the lithiated (Fe2+) white line
      lies ~1.5-2 eV below the delithiated (Fe3+) one (708.0 against 709.8 eV for
      LiFePO4 / FePO4, Augustsson et al. 2005): when both cover that window and the
      last one's maximum lies more than 0.5 eV above the first one's, they are
      reversed.

    Parameters
    ----------
    references : sequence of (energies_k, values_k)
        Energies (eV) and absorption of each reference.
    names : sequence of str, optional
        Names used in the messages.

    Raises
    ------
    ValueError
        Naming the reference and what is wrong with it.
    """
    names = list(names) if names is not None else [f"reference {k}" for k in range(len(references))]
    peaks = []
    for name, (ek, vk) in zip(names, references):
        ek, vk = np.asarray(ek, dtype=float), np.asarray(vk, dtype=float)
        n = max(1, ek.size // 10)
        jump = float(np.mean(vk[-n:]) - np.mean(vk[:n]))
        if not jump > 0:
            raise ValueError(
                f"{name}: its absorption falls across the edge (post-edge minus pre-edge = "
                f"{jump:.3g}); is it negated? An absorption reference rises across its edge")
        inside = (ek >= FE_L3_WINDOW[0]) & (ek <= FE_L3_WINDOW[1])
        covers = ek[0] <= FE_L3_WINDOW[0] and ek[-1] >= FE_L3_WINDOW[1] and inside.sum() >= 5
        peaks.append(float(ek[inside][np.argmax(vk[inside])]) if covers else None)
    if len(peaks) >= 2 and peaks[0] is not None and peaks[-1] is not None:
        if peaks[-1] - peaks[0] > FE_L3_MIN_SPLIT:
            raise ValueError(
                f"references in the wrong order: the Fe L3 maximum of {names[0]} lies at "
                f"{peaks[0]:.2f} eV and that of {names[-1]} at {peaks[-1]:.2f} eV, but the "
                "lithiated (Fe2+) one lies ~1.5-2 eV below the delithiated (Fe3+) one; give "
                "them delithiated first, lithiated last (X is the fraction of the last)")


def shift_range(references, energies):
    """The energy shifts (eV) for which every reference covers the data: (low, high)."""
    e = np.asarray(energies, dtype=float)
    lo = max(float(e[-1] - np.asarray(ek, float)[-1]) for ek, _ in references)
    hi = min(float(e[0] - np.asarray(ek, float)[0]) for ek, _ in references)
    return lo, hi


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


def data_gram(od, chunk_pixels=CHUNK_PIXELS):
    """``Y^T Y`` (n_energies, n_energies) summed over all pixels, NaN counted as 0.

    Parameters
    ----------
    od : numpy.ndarray or dask.array.Array, shape (..., n_energies)
    chunk_pixels : int
        Pixels per chunk (numpy input).
    """
    if hasattr(od, "dask"):
        import dask.array as da

        Y = da.nan_to_num(od)
        axes = tuple(range(od.ndim - 1))
        return np.asarray(da.tensordot(Y, Y, axes=(axes, axes)).compute())
    ne = od.shape[-1]
    flat = np.asarray(od).reshape(-1, ne)
    G = np.zeros((ne, ne))
    for s in range(0, flat.shape[0], int(chunk_pixels)):
        blk = np.nan_to_num(flat[s: s + chunk_pixels])
        G += blk.T @ blk
    return G


def region_reference(od, mask, n_edge=3):
    """A reference spectrum from a region of the data, normalised to a unit edge jump.

    Parameters
    ----------
    od : numpy.ndarray or dask.array.Array, shape (ny, nx, n_energies)
        Optical density.
    mask : numpy.ndarray of bool, shape (ny, nx)
        The end-member region.
    n_edge : int
        Energies averaged at each end for the pre- and post-edge levels.

    Returns
    -------
    numpy.ndarray, shape (n_energies,)
        Mean OD of the region divided by its edge jump (mean of the last ``n_edge``
        minus mean of the first ``n_edge`` energies), so that references from regions
        of different thickness count Fe atoms alike.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the region selects no pixels")
    if hasattr(od, "dask"):
        import dask.array as da

        spec = np.asarray(da.nanmean(da.where(mask[..., None], od, np.nan), axis=(0, 1)).compute())
    else:
        spec = np.nanmean(np.asarray(od)[mask], axis=0)
    if not np.all(np.isfinite(spec)):
        raise ValueError("the region's mean spectrum holds NaN")
    jump = spec[-n_edge:].mean() - spec[:n_edge].mean()
    if not jump > 0:
        raise ValueError(
            f"no positive edge jump (post-edge minus pre-edge OD = {jump:.3g}); "
            "is the region on the particle?"
        )
    return spec / jump


def fit_energy_shift(gram, references, energies, max_shift=1.0, step=0.02):
    """One common energy shift of the references that best fits a whole stack.

    The total least-squares misfit over all pixels is
    ``tr(Y^T Y) - tr((A^T A)^-1 A^T (Y^T Y) A)``, so only the (n_energies, n_energies)
    Gram matrix ``Y^T Y`` of the data is needed: the search over shifts is cheap.

    Parameters
    ----------
    gram : numpy.ndarray, shape (n_energies, n_energies)
        ``Y^T Y`` summed over the pixels (finite pixels only).
    references : sequence of (energies_k, values_k)
    energies : numpy.ndarray
        Data energies (eV).
    max_shift : float
        Search range +-max_shift (eV).
    step : float
        Grid step (eV); the optimum is refined by a parabola through the best grid
        point and its neighbours.

    Returns
    -------
    float
        The shift (eV), with the convention of :func:`interpolate_references`.
    """
    if not (np.isfinite(max_shift) and max_shift > 0) or not (np.isfinite(step) and step > 0):
        raise ValueError(f"max_shift and step must be positive (eV), got max_shift={max_shift!r}, "
                         f"step={step!r}")
    # only shifts at which every reference still covers the data can be tried
    lo, hi = shift_range(references, energies)
    lo, hi = max(lo, -max_shift), min(hi, max_shift)
    e = np.asarray(energies, dtype=float)
    if hi - lo < 2 * step:
        raise ValueError(
            f"energy_shift='fit' needs references that extend beyond the data's "
            f"{e[0]:.2f}-{e[-1]:.2f} eV by the shifts to try (+-{max_shift} eV); these allow "
            f"only {lo:+.2f} to {hi:+.2f} eV: supply wider references, crop the data (isig), or "
            "give energy_shift as a number")
    grid = np.arange(lo, hi + step / 2, step)
    grid = grid[grid <= hi + 1e-12]

    def explained(s):
        A = interpolate_references(references, energies, s)
        G = A.T @ A
        return float(np.trace(np.linalg.solve(G, A.T @ gram @ A)))

    vals = np.array([explained(s) for s in grid])
    i = int(np.argmax(vals))
    if i in (0, grid.size - 1):
        why = (f"widen max_shift (now {max_shift} eV)" if abs(grid[i]) >= max_shift - step / 2
               else "supply references wider than the data (they limit the search)")
        raise ValueError(
            f"the best reference energy shift lies at the edge of the search range "
            f"({grid[0]:+.2f} to {grid[-1]:+.2f} eV): {why}, or check the energy calibration"
        )
    y0, y1, y2 = vals[i - 1: i + 2]
    denom = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    return float(grid[i] + frac * step)


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


def composition_from_rows(t, tri):
    """:func:`composition_from_coefficients` on rows: ``t`` (K, m), ``tri`` (K (K+1)/2, m).

    ``tri`` is the upper triangle of each pixel's covariance, row by row (the layout
    of :func:`unpack`).
    """
    K = t.shape[0]
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


def particle_mask(thickness, threshold=None, fraction=0.25, n_sigma=5.0):
    """The particle: pixels whose fitted thickness stands out of the background.

    Parameters
    ----------
    thickness : numpy.ndarray, shape (ny, nx)
        Sum of the unmixing coefficients (NaN where no fit).
    threshold : float, optional
        Explicit threshold (thickness units). By default Otsu's threshold [1]_ splits
        background from particle, and the threshold is lowered to ``fraction`` of the
        particle class's median thickness (but kept above the background median plus
        ``n_sigma`` robust standard deviations), so that the thin rim of a platelet,
        which Otsu's split between the two class means would cut off, stays in.
    fraction : float
        Fraction of the typical particle thickness taken as its edge.
    n_sigma : float
        Background-noise multiple below which nothing counts as particle.

    Returns
    -------
    mask : numpy.ndarray of bool
    threshold : float
        The threshold used.

    References
    ----------
    .. [1] N. Otsu, IEEE Trans. Syst. Man Cybern. 9, 62 (1979).
    """
    thickness = np.asarray(thickness, dtype=float)
    finite = np.isfinite(thickness)
    if threshold is None:
        from skimage.filters import threshold_otsu

        v = thickness[finite]
        if v.size < 2 or np.ptp(v) == 0:
            raise ValueError("cannot find the particle: no thickness contrast (give a mask)")
        otsu = float(threshold_otsu(hist=_histogram_256(v)))
        bg, fg = v[v <= otsu], v[v > otsu]
        med = _median(bg)
        floor = med + n_sigma * 1.4826 * _median(np.abs(bg - med))
        threshold = min(otsu, max(floor, fraction * _median(fg)))
    mask = finite & (np.where(finite, thickness, -np.inf) > threshold)
    return mask, float(threshold)


def _histogram_256(v):
    """(counts, bin centres) of scikit-image's 256-bin histogram over the range of ``v``.

    ``np.histogram``'s bins, counted by one ``bincount`` (its uniform-bin path checks
    each value against the edges again: 3x the time here).
    """
    lo, hi = float(v.min()), float(v.max())
    edges = np.linspace(lo, hi, 257)
    idx = ((v - lo) * (256.0 / (hi - lo))).astype(np.intp)
    np.minimum(idx, 255, out=idx)        # the last edge belongs to the last bin
    # values on an edge go where np.histogram puts them (its rounding correction)
    idx -= v < edges[idx]
    idx += (v >= edges[idx + 1]) & (idx != 255)
    return np.bincount(idx, minlength=256), 0.5 * (edges[:-1] + edges[1:])


def _median(v):
    """Median of finite values (``np.median`` less its NaN handling)."""
    n = v.size
    k = n // 2
    if n % 2:
        return float(np.partition(v, k)[k])
    p = np.partition(v, (k - 1, k))
    return 0.5 * float(p[k - 1] + p[k])


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


#: stacks of at least this many values take the compiled pass even when numba is not
#: yet imported (its import, ~0.4 s, is then a small part of the unmixing)
COMPILED_MIN_VALUES = 1 << 28
#: which pass the eager unmixing takes: ``None`` decides (:func:`use_compiled_pass`),
#: ``True`` / ``False`` always / never the compiled one (benchmarks compare both)
COMPILED_PASS = None
#: pixels per call of the compiled pass (the progress bar's step)
COMPILED_CHUNK_PIXELS = 1 << 15


@functools.lru_cache(maxsize=1)
def _compiled_products():
    """Compiled passes (numba): ``products_k`` forms ``(A^T y, |y|^2)`` of every pixel in
    one read, ``unmix_2`` the whole fit of two references; None without numba.

    NumPy needs one pass per reference and one for the norm (from the cache, but each
    is compute-bound at about the speed of a pass from memory) and one array
    operation per step of the fit; the compiled loops do all of it per value read. Reassociation is allowed (vectorised sums), NaN
    semantics are kept (a NaN in a spectrum still reaches its ``|y|^2``).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with pyxem
        return None

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def products_k(flat, AT, bt, yy, start):
        K = AT.shape[0]
        for i in range(flat.shape[0]):
            s = 0.0
            for e in range(flat.shape[1]):
                v = flat[i, e]
                s += v * v
            yy[start + i] = s
            for k in range(K):
                c = 0.0
                for e in range(flat.shape[1]):
                    c += flat[i, e] * AT[k, e]
                bt[k, start + i] = c

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def unmix_2(flat, AT, Ginv, G, nnls, tt, rss, start):
        # the whole per-pixel fit of two references in the same loop: the products,
        # the least-squares amounts, the NNLS pair rule (_nnls_pairs) and the misfit
        a0, a1 = AT[0], AT[1]
        for i in range(flat.shape[0]):
            s, b0, b1 = 0.0, 0.0, 0.0
            for e in range(flat.shape[1]):
                v = flat[i, e]
                s += v * v
                b0 += v * a0[e]
                b1 += v * a1[e]
            j = start + i
            if not np.isfinite(s):
                tt[0, j] = tt[1, j] = rss[j] = np.nan
                continue
            t0 = Ginv[0, 0] * b0 + Ginv[0, 1] * b1
            t1 = Ginv[1, 0] * b0 + Ginv[1, 1] * b1
            if nnls and (t0 < 0.0 or t1 < 0.0):
                c0, c1 = max(b0, 0.0) / G[0, 0], max(b1, 0.0) / G[1, 1]
                if c0 * b0 >= c1 * b1:
                    t0, t1 = c0, 0.0
                else:
                    t0, t1 = 0.0, c1
            tt[0, j], tt[1, j] = t0, t1
            rss[j] = max(s - (t0 * b0 + t1 * b1), 0.0)

    return products_k, unmix_2


def use_compiled_pass(n_values):
    """Whether the eager unmixing takes the compiled pass (:func:`_compiled_products`).

    When numba is already imported (a session that uses pyxem or the 4D-STEM
    strain), or the stack is large enough to pay for importing it
    (``COMPILED_MIN_VALUES``); otherwise NumPy's, which costs about 1.6x more time
    per value but no import.
    """
    if COMPILED_PASS is not None:
        return bool(COMPILED_PASS) and _compiled_products() is not None
    if "numba" not in sys.modules and n_values < COMPILED_MIN_VALUES:
        return False
    return _compiled_products() is not None


def _products(flat, A, show_progressbar, chunk_pixels):
    """``A^T y`` (K, n) and ``|y|^2`` (n,) of every pixel of ``flat`` (n, n_energies)."""
    n = flat.shape[0]
    K = A.shape[1]
    bt = np.empty((K, n))
    yy = np.empty(n)
    if use_compiled_pass(flat.size):
        kernel = _compiled_products()[0]
        AT = np.ascontiguousarray(A.T)
        starts = range(0, n, COMPILED_CHUNK_PIXELS)
        for s in progressbar(starts, show_progressbar=show_progressbar, desc="unmixing",
                             leave=False):
            kernel(flat[s: s + COMPILED_CHUNK_PIXELS], AT, bt, yy, s)
        return bt, yy
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


def _unmix_eager(data, A, method, residual_cov, show_progressbar, chunk_pixels=CACHE_PIXELS):
    """Amounts, misfit and (optionally) the residual-based covariance of a numpy stack.

    The same arithmetic as :func:`unmix_block`, per pixel: one read of the stack in
    cache-sized chunks, then every per-pixel step on (K, n) rows (one contiguous row
    per reference: with K = 2-3 the (n, K) layout spends its time in short inner loops).

    Returns
    -------
    t : (K, n_pixels), rms : (n_pixels,), tri : (K (K+1)/2, n_pixels) or None
        NaN for pixels whose spectrum holds a NaN.
    """
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
        tt, rss = _compiled_unmix_2(flat, A, G, Ginv, method == "nnls", show_progressbar)
    else:
        tt, rss = _unmix_rows(flat, A, G, Ginv, method, show_progressbar, chunk_pixels)
    tri = None
    if residual_cov:
        iu = np.triu_indices(K)
        tri = Ginv[iu][:, None] * (rss / (ne - K))[None, :]
    return tt, np.sqrt(rss / ne), tri


def _compiled_unmix_2(flat, A, G, Ginv, nnls, show_progressbar):
    """The fit of two references per pixel in one compiled pass: (t (2, n), rss (n,))."""
    n = flat.shape[0]
    tt, rss = np.empty((2, n)), np.empty(n)
    kernel = _compiled_products()[1]
    AT = np.ascontiguousarray(A.T)
    for s in progressbar(range(0, n, COMPILED_CHUNK_PIXELS), show_progressbar=show_progressbar,
                         desc="unmixing", leave=False):
        kernel(flat[s: s + COMPILED_CHUNK_PIXELS], AT, Ginv, G, bool(nnls), tt, rss, s)
    return tt, rss


def _unmix_rows(flat, A, G, Ginv, method, show_progressbar, chunk_pixels):
    """The fit per pixel from the products, one array operation per step: (t (K, n), rss)."""
    K = A.shape[1]
    # the only pass over the data: its products with the references and its norm
    bt, yy = _products(flat, A, show_progressbar, chunk_pixels)
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

    def coefficient_covariance(self, t, A):
        """Cov(t) of the least-squares amounts at the model ``OD = A t``, per pixel.

        ``Cov(t) = P diag(exp(A t) / I0) P^T``, ``P = (A^T A)^-1 A^T``.

        Parameters
        ----------
        t : numpy.ndarray, shape (K, m)
            Amounts of the references (their units) of ``m`` pixels, one row each.
        A : numpy.ndarray, shape (n_energies, K)
            References (OD per unit amount).

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
        if K == 2 and t.shape[1] > 4096:
            table = self._table(t, A, W)
            if table is not None:
                return _bilinear(t, *table)
        return W @ np.exp(A @ t)

    def _table(self, t, A, W):
        """The covariance on a grid of the two amounts: (grids, values) or None."""
        lo, hi = t.min(axis=1), t.max(axis=1)
        span = (hi - lo) * np.abs(A).max(axis=0)          # OD range of each amount
        n = np.maximum(np.ceil(span / self.TABLE_STEP_OD).astype(int) + 1, 2)
        if n[0] * n[1] > self.TABLE_MAX_SIZE or not np.all(np.isfinite(span)):
            return None
        g0, g1 = np.linspace(lo[0], hi[0], n[0]), np.linspace(lo[1], hi[1], n[1])
        # exp(a0 t0 + a1 t1) = exp(a0 t0) exp(a1 t1): two small exponentials per energy
        # and one product per covariance entry
        U0, U1 = np.exp(A[:, :1] * g0), np.exp(A[:, 1:] * g1)
        values = np.stack([(U0.T * w) @ U1 for w in W])  # (n_tri, n0, n1)
        return g0, g1, values


def _bilinear(t, g0, g1, values):
    """Bilinear interpolation of ``values`` (c, n0, n1) on the grids at points ``t`` (2, m)."""
    n0, n1 = g0.size, g1.size
    u = (t[0] - g0[0]) * ((n0 - 1) / max(g0[-1] - g0[0], 1e-300))
    v = (t[1] - g1[0]) * ((n1 - 1) / max(g1[-1] - g1[0], 1e-300))
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


def _particle_covariance(data, A, variance, mask, t=None):
    """Upper triangle (K (K+1)/2, ny * nx) of Cov(t), NaN off ``mask``.

    Poisson noise (:class:`PoissonODVariance`) is evaluated at the model from the
    amounts ``t`` (K, ny * nx): no second pass over the data. Any other ``variance``
    callable is evaluated on the data of the particle's pixels.
    """
    K = A.shape[1]
    n_tri = K * (K + 1) // 2
    ny, nx, ne = data.shape
    m = np.asarray(mask, dtype=bool).ravel()
    out = np.full((n_tri, ny * nx), np.nan)
    if isinstance(variance, PoissonODVariance):
        inside = variance.coefficient_covariance(np.compress(m, t, axis=1), A)
        for row, vals in zip(out, inside):  # row by row: 2D fancy assignment is slower
            row[m] = vals
        return out

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
        return np.asarray(res.compute()).reshape(-1, n_tri).T.copy()
    flat = np.asarray(data).reshape(-1, ne)
    rows = np.flatnonzero(m)
    for s in range(0, rows.size, CHUNK_PIXELS):
        r = rows[s: s + CHUNK_PIXELS]
        out[:, r] = propagate_variance(variance(flat[r]), A).T
    return out


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
                   show_progressbar=None):
    """:func:`unmix_stack` with its per-pixel results as rows: (K, ny * nx) and the like.

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
        packed = _unmix_any(data, A, method, show_progressbar).reshape(-1, K + 1 + K * (K + 1) // 2)
        t, rms, tri = packed[:, :K].T.copy(), packed[:, K].copy(), packed[:, K + 1:].T.copy()
    else:
        t, rms, tri = _unmix_eager(data, A, method, variance is None, show_progressbar)
    thick = t.sum(axis=0).reshape(shape)
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
    if variance is not None:
        tri = _particle_covariance(data, A, variance, pmask, t)
    return t, rms, tri, pmask, threshold
