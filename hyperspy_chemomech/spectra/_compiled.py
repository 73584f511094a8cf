"""Compiled loops (numba) of the spectral engines, and when to take them.

Each loop here is a second coding of a NumPy computation in :mod:`._unmixing`,
:mod:`._noise` or :mod:`._particle` (tested equal): NumPy makes one pass over an
array per step, so a chain of small steps over a whole stack or image costs several
passes from memory; the compiled loop does every step per value read. They are
taken when numba is already imported (a session that uses pyxem or the 4D-STEM
strain) or the stack is large enough to pay for importing it (~0.4 s), and release
the GIL, so that the chunks of one stack run on several threads.
"""

import functools
import sys

import numpy as np

from .._utils import kernel_threads, run_chunks

#: stacks of at least this many values take the compiled pass even when numba is not
#: yet imported (its import, ~0.4 s, is then a small part of the unmixing)
COMPILED_MIN_VALUES = 1 << 28
#: which pass the eager unmixing takes: ``None`` decides (:func:`use_compiled_pass`),
#: ``True`` / ``False`` always / never the compiled one (benchmarks compare both)
COMPILED_PASS = None
#: most pixels per call of the compiled unmixing (the progress bar's step)
COMPILED_CHUNK_PIXELS = 1 << 15


def use_compiled_pass(n_values):
    """Whether the eager spectral engines take the compiled loops (:func:`kernels`).

    When numba is already imported, or the stack holds at least
    ``COMPILED_MIN_VALUES`` values; otherwise NumPy's passes, which cost about 1.6x
    more time per value but no import. ``COMPILED_PASS`` overrides the choice.
    """
    if COMPILED_PASS is not None:
        return bool(COMPILED_PASS) and kernels() is not None
    if "numba" not in sys.modules and n_values < COMPILED_MIN_VALUES:
        return False
    return kernels() is not None


@functools.lru_cache(maxsize=1)
def kernels():
    """The compiled loops, by name; None without numba.

    ``products_k`` forms ``(A^T y, |y|^2)`` of every pixel in one read, ``unmix_2``
    the whole fit of two references (:func:`._unmixing._unmix_rows` for K = 2),
    ``range_finite`` / ``bin_256`` the thickness histogram of
    :func:`._particle._histogram_256`, ``masked_range_2`` and ``bilinear_masked`` the
    tabulated Poisson covariance (:func:`._noise._bilinear`) and ``fraction_2`` X and its error
    (:func:`._unmixing._fraction`). Reassociation is allowed only in the sums over
    energies (vectorised); NaN semantics are kept (a NaN in a spectrum reaches its
    ``|y|^2``).
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with pyxem
        return None

    fast = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"})
    exact = dict(cache=True, nogil=True)

    @numba.njit(**fast)
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

    @numba.njit(**fast)
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

    @numba.njit(**exact)
    def range_finite(x):
        # (min, max, count) of the finite values
        lo, hi, n = np.inf, -np.inf, 0
        for v in x:
            if np.isfinite(v):
                n += 1
                lo = min(lo, v)
                hi = max(hi, v)
        return lo, hi, n

    @numba.njit(**exact)
    def bin_256(x, lo, edges, counts):
        # np.histogram's 256 uniform bins of the finite values, its edge rounding kept
        scale = 256.0 / (edges[256] - lo)
        for v in x:
            if not np.isfinite(v):
                continue
            i = min(int((v - lo) * scale), 255)
            if v < edges[i]:
                i -= 1
            elif v >= edges[i + 1] and i != 255:
                i += 1
            counts[i] += 1

    @numba.njit(**exact)
    def masked_range_2(t, mask):
        # (min t0, max t0, min t1, max t1, count) over the finite pixels of mask
        lo0, hi0, lo1, hi1, n = np.inf, -np.inf, np.inf, -np.inf, 0
        for p in range(t.shape[1]):
            if mask[p] and np.isfinite(t[0, p]) and np.isfinite(t[1, p]):
                n += 1
                lo0, hi0 = min(lo0, t[0, p]), max(hi0, t[0, p])
                lo1, hi1 = min(lo1, t[1, p]), max(hi1, t[1, p])
        return lo0, hi0, lo1, hi1, n

    @numba.njit(**exact)
    def bilinear_masked(t, mask, g00, su, n0, g10, sv, n1, values, out):
        # _bilinear at the finite pixels of mask, NaN elsewhere; values laid out (n0, n1, c)
        for p in range(t.shape[1]):
            if not (mask[p] and np.isfinite(t[0, p]) and np.isfinite(t[1, p])):
                for c in range(out.shape[0]):
                    out[c, p] = np.nan
                continue
            u = (t[0, p] - g00) * su
            v = (t[1, p] - g10) * sv
            i = min(int(u), n0 - 2)
            j = min(int(v), n1 - 2)
            fu, fv = u - i, v - j
            w11 = fu * fv
            w10 = fu - w11
            w01 = fv - w11
            w00 = 1.0 - fu - w01
            for c in range(out.shape[0]):  # values (n0, n1, c): a node's entries together
                o = values[i, j, c] * w00
                o += values[i, j + 1, c] * w01
                o += values[i + 1, j, c] * w10
                o += values[i + 1, j + 1, c] * w11
                out[c, p] = o

    @numba.njit(**exact)
    def fraction_2(t, tri, mask, X, sigma):
        # _fraction for two references at the pixels of mask, NaN elsewhere
        for p in range(t.shape[1]):
            total = t[0, p] + t[1, p]
            if not mask[p] or not total > 0.0:
                X[p] = sigma[p] = np.nan
                continue
            x = t[1, p] / total
            c_col = tri[1, p] + tri[2, p]
            c_sum = tri[0, p] + 2.0 * tri[1, p] + tri[2, p]
            var = (tri[2, p] - 2 * x * c_col + x * x * c_sum) / (total * total)
            X[p] = x
            sigma[p] = np.nan if np.isnan(var) else np.sqrt(max(var, 0.0))

    return dict(products_k=products_k, unmix_2=unmix_2, range_finite=range_finite,
                bin_256=bin_256, masked_range_2=masked_range_2,
                bilinear_masked=bilinear_masked, fraction_2=fraction_2)


def pixel_chunks(kernel, n, show_progressbar=None, meanwhile=None):
    """``kernel(start, stop)`` over ``n`` pixels in contiguous chunks, on several threads.

    Chunks of at most ``COMPILED_CHUNK_PIXELS`` pixels, a few per thread of
    :func:`~hyperspy_chemomech._utils.kernel_threads` (the kernels release the GIL);
    ``meanwhile`` as in :func:`~hyperspy_chemomech._utils.run_chunks`.
    """
    threads = kernel_threads()
    # a few chunks per thread: handed out one at a time, they balance the threads
    tasks = max(4 * threads if threads > 1 else 1, -(-n // COMPILED_CHUNK_PIXELS))
    step = -(-n // tasks)
    starts = list(range(0, n, step))
    run_chunks(lambda s: kernel(s, min(s + step, n)), starts, threads,
               show_progressbar=show_progressbar, desc="unmixing", meanwhile=meanwhile)
