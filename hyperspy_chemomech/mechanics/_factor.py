"""Sparse factorisation of the (symmetric positive-definite) reduced stiffness matrix.

SuperLU (scipy.sparse.linalg.splu) in symmetric mode: a minimum-degree ordering of
A^T + A and diagonal pivoting keep the factor sparse and the permutation symmetric.
"""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


class _SuperLU:
    name = "superlu"

    def __init__(self, k):
        self._lu = spla.splu(sp.csc_matrix(k), permc_spec="MMD_AT_PLUS_A",
                             diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    def solve(self, f):
        return self._lu.solve(np.ascontiguousarray(f))


def factorize(k):
    """Factorise ``k`` once; the result's ``solve(F)`` takes F of shape (n,) or (n, m)."""
    return _SuperLU(k)
