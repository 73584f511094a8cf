"""Sparse factorisation of the (symmetric positive-definite) reduced stiffness matrix.

scipy's SuperLU in symmetric mode (diagonal pivots, so the fill-reducing permutation
stays symmetric), with a geometric nested-dissection ordering of the pixel grid: the
region is cut recursively along its longer axis by one line of nodes (a separator of the
9-point bilinear stencil), separators numbered last. On an n-node grid this gives
O(n log n) fill and O(n^1.5) work (George 1973), about 3x less time and 25 % less fill
than SuperLU's own minimum-degree ordering at 256^2.

Where a double-precision factor would not fit in memory, it is computed in single
precision and every solve is refined to double precision by preconditioned conjugate
gradients with that factor as preconditioner ("mixed"): half the factor's memory, but
6-13 iterations (each one triangular solve) to a relative residual of 1e-12, so solves
cost several times more.

References
----------
A. George, Nested dissection of a regular finite element mesh, SIAM J. Numer. Anal. 10,
345 (1973).
"""

import os

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._utils import one_blas_thread

_LEAF = 32
_BYTES_PER_ENTRY = {"double": 12, "mixed": 8}  # value + row index of the L and U factors


def nested_dissection(i, j, leaf=_LEAF):
    """Nested-dissection permutation of points on a grid.

    Parameters
    ----------
    i, j : numpy.ndarray of int
        Grid row and column of each unknown (unknowns at the same node share them).
    leaf : int
        Sub-regions with at most this many unknowns keep their order.

    Returns
    -------
    numpy.ndarray of int
        Permutation: new position -> old index.
    """
    out = []
    todo = [np.arange(i.size)]
    # explicit stack; every region pushes (separator, right, left) so that the emitted
    # order is left subtree, right subtree, separator
    while todo:
        idx = todo.pop()
        if isinstance(idx, tuple):          # a separator, emitted after its subtrees
            out.append(idx[0])
            continue
        if idx.size <= leaf:
            out.append(idx)
            continue
        ii, jj = i[idx], j[idx]
        c = ii if np.ptp(ii) >= np.ptp(jj) else jj
        mid = (int(c.min()) + int(c.max())) // 2
        left, sep, right = idx[c < mid], idx[c == mid], idx[c > mid]
        if left.size == 0 or right.size == 0:
            out.append(idx)
            continue
        todo += [(sep,), right, left]
    return np.concatenate(out)


def estimate_factor_bytes(n, precision="double"):
    """Rough size (bytes) of the SuperLU factors of an n-unknown pixel-grid stiffness."""
    return 12.0 * n * max(np.log2(max(n, 4) / 2), 1.0) * _BYTES_PER_ENTRY[precision]


def _half_the_memory():
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 8e9


class GridFactor:
    """Factor of an SPD sparse matrix whose unknowns live on a pixel grid.

    Parameters
    ----------
    k : scipy.sparse matrix, shape (n, n)
        Symmetric positive definite.
    i, j : numpy.ndarray of int, optional
        Grid position of each unknown, for the nested-dissection ordering; without them
        (and without ``perm``) SuperLU's minimum-degree ordering of A^T + A is used.
    precision : {"auto", "double", "mixed"}
        ``"auto"``: double unless the estimated factor exceeds ``memory_limit``.
    memory_limit : float, optional
        Bytes allowed for a double-precision factor under ``"auto"``; default half the
        machine's physical memory.
    rtol : float
        Relative residual of the mixed-precision solves.
    perm : numpy.ndarray of int, optional
        Fill-reducing order already applied to ``k`` (``k = A[perm][:, perm]``);
        :meth:`solve` still takes and returns vectors in A's order.
    """

    def __init__(self, k, i=None, j=None, precision="auto", memory_limit=None, rtol=1e-12,
                 perm=None):
        if precision not in ("auto", "double", "mixed"):
            raise ValueError(f"precision must be 'auto', 'double' or 'mixed', got {precision!r}")
        n = k.shape[0]
        if precision == "auto":
            limit = _half_the_memory() if memory_limit is None else memory_limit
            precision = "double" if estimate_factor_bytes(n) <= limit else "mixed"
        self.precision = precision
        self.rtol = rtol
        k = sp.csr_array(k)
        if perm is not None:          # k is already permuted: k = K[perm][:, perm]
            self._perm, kp, spec = np.asarray(perm), k, "NATURAL"
        elif i is not None:
            self._perm = nested_dissection(np.asarray(i), np.asarray(j))
            kp = k[self._perm][:, self._perm]
            spec = "NATURAL"
        else:
            self._perm = None
            kp, spec = k, "MMD_AT_PLUS_A"
        self._k = sp.csr_array(kp)  # permuted, kept for the mixed-precision residuals
        dtype = np.float64 if precision == "double" else np.float32
        kp = sp.csr_array(kp)
        kp.sort_indices()
        # k is symmetric: its CSR arrays are its CSC arrays (no transposed copy)
        csc = sp.csc_matrix((kp.data.astype(dtype, copy=False), kp.indices, kp.indptr),
                            shape=kp.shape)
        with one_blas_thread():
            self._lu = spla.splu(csc, permc_spec=spec, diag_pivot_thresh=0.0,
                                 options={"SymmetricMode": True})
        del csc
        if precision == "double":
            self._k = None
        self.iterations = []

    @property
    def nnz(self):
        """Entries stored in SuperLU's L and U factors."""
        return int(self._lu.nnz)

    def _precondition(self, r):
        return self._lu.solve(np.asfortranarray(r, dtype=np.float32)).astype(np.float64)

    def _pcg(self, f):
        """Block of independent PCG solves, preconditioned by the single-precision factor."""
        x = np.zeros_like(f)
        r = f.copy()
        nf = np.linalg.norm(f, axis=0)
        nf[nf == 0] = 1.0
        z = self._precondition(r)
        p = z.copy()
        rz = np.einsum("ij,ij->j", r, z)
        for it in range(1, 101):
            kp = self._k @ p
            pkp = np.einsum("ij,ij->j", p, kp)
            alpha = np.divide(rz, pkp, out=np.zeros_like(rz), where=pkp != 0)
            x += alpha * p
            r -= alpha * kp
            if np.max(np.linalg.norm(r, axis=0) / nf) < self.rtol:
                break
            z = self._precondition(r)
            rz_new = np.einsum("ij,ij->j", r, z)
            beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz != 0)
            p = z + beta * p
            rz = rz_new
        else:  # pragma: no cover - the factor is a near-exact preconditioner
            raise RuntimeError("mixed-precision refinement did not converge; use "
                               "precision='double'")
        self.iterations.append(it)
        return x

    def solve(self, f):
        """Solve ``k x = f`` for f of shape (n,) or (n, m)."""
        f = np.asarray(f, dtype=np.float64)
        vec = f.ndim == 1
        f2 = f[:, None] if vec else f
        fp = f2[self._perm] if self._perm is not None else f2
        with one_blas_thread():
            if self.precision == "double":
                xp = self._lu.solve(np.asfortranarray(fp))
            else:
                xp = self._pcg(np.array(fp))
        if self._perm is not None:
            x = np.empty_like(xp)
            x[self._perm] = xp
        else:
            x = xp
        return x[:, 0] if vec else x


class PreconditionedFactor(GridFactor):
    """Solves of a matrix by conjugate gradients, preconditioned by another one's factor.

    For a body whose stiffness values change but whose mesh does not (the
    frames of an operando series with C(X)): no factorisation of its own; each
    solve is refined to a relative residual of ``rtol`` by preconditioned
    conjugate gradients with the factor of the first matrix. The contrast of
    FePO4 and LiFePO4 stiffness (~25 %) costs ~18 iterations to 1e-12, each one
    triangular solve: a solve then costs ~13 direct ones, more than a new
    factorisation of a small grid (~2.5 direct solves at 100 x 170 px, measured),
    so this pays where the factorisation dominates (large grids) or memory is short.

    Parameters
    ----------
    k : scipy.sparse matrix, shape (n, n)
        This matrix, already in ``source``'s fill-reducing order.
    source : GridFactor
        The factor of a matrix of the same sparsity (same order).
    rtol : float
    """

    def __init__(self, k, source, rtol=1e-12):
        if k.shape != source._lu.shape:
            raise ValueError(f"matrix of shape {k.shape} for a factor of shape {source._lu.shape}")
        self.precision, self.rtol = "preconditioned", rtol
        self._perm, self._lu = source._perm, source._lu
        self._dtype = np.float64 if source.precision == "double" else np.float32
        self._k = sp.csr_array(k)
        self.iterations = []

    def _precondition(self, r):
        return self._lu.solve(np.asfortranarray(r, dtype=self._dtype)).astype(np.float64)


def factorize(k, i=None, j=None, **kwargs):
    """Factorise ``k`` once; see :class:`GridFactor`."""
    return GridFactor(k, i, j, **kwargs)
