"""Basis functions phi_k(X) for the eigenstrain law, all vanishing at X = 0.

Only eps0(X) - eps0(0) is identifiable (a constant eigenstrain is absorbed by the
unknown reference strain), so every basis here is anchored: phi_k(0) = 0.
"""

import numpy as np
from numpy.polynomial import legendre as _leg
from scipy.interpolate import BSpline

BASES = ("legendre", "bspline", "linear")


def _unit(k):
    """Coefficients of the Legendre polynomial P_k."""
    c = np.zeros(k + 1)
    c[k] = 1.0
    return c


class LawBasis:
    """A family of anchored basis functions on X in [0, 1].

    Parameters
    ----------
    kind : {"legendre", "bspline", "linear"}
        ``legendre``: phi_k(X) = P_k(2X - 1) - P_k(-1), k = 1..degree (nested, so
        the higher coefficients measure departure from linearity);
        ``bspline``: clamped B-splines of order min(3, degree) on uniform knots,
        without the one that is 1 at X = 0 (so phi_k(0) = 0);
        ``linear``: phi_1(X) = X (Vegard), degree must be 1.
    degree : int
        Number of basis functions (>= 1).
    """

    def __init__(self, kind="legendre", degree=1):
        if kind not in BASES:
            raise ValueError(f"unknown basis {kind!r}; use one of {', '.join(BASES)}")
        degree = int(degree)
        if degree < 1:
            raise ValueError(f"degree must be >= 1, got {degree}")
        if kind == "linear" and degree != 1:
            raise ValueError("the 'linear' basis has degree 1; use 'legendre' or 'bspline' for more")
        self.kind, self.degree = kind, degree
        if kind == "bspline":
            k = min(3, degree)
            n_intervals = degree + 1 - k
            inner = np.linspace(0.0, 1.0, n_intervals + 1)
            self._knots = np.r_[[0.0] * k, inner, [1.0] * k]
            self._order = k

    @property
    def n(self):
        """Number of basis functions."""
        return self.degree

    def __call__(self, X):
        """Evaluate the basis.

        Parameters
        ----------
        X : array_like
            Compositions in [0, 1] (NaN passes through).

        Returns
        -------
        numpy.ndarray, shape (degree,) + X.shape
        """
        X = np.asarray(X, dtype=float)
        finite = np.isfinite(X)
        xf = np.where(finite, X, 0.0)
        if self.kind == "linear":
            out = xf[None].copy()
        elif self.kind == "legendre":
            t = 2.0 * xf - 1.0
            out = np.empty((self.degree,) + X.shape)
            for k in range(1, self.degree + 1):
                out[k - 1] = _leg.legval(t, _unit(k)) - _leg.legval(-1.0, _unit(k))
        else:
            dm = BSpline.design_matrix(np.clip(xf.ravel(), 0.0, 1.0), self._knots,
                                       self._order).toarray()
            out = dm[:, 1:].T.reshape((self.degree,) + X.shape)
        out[:, ~finite] = np.nan
        return out

    def derivative(self, X):
        """d phi_k / dX at ``X``, shape (degree,) + X.shape."""
        X = np.asarray(X, dtype=float)
        if self.kind == "linear":
            return np.ones((1,) + X.shape)
        if self.kind == "legendre":
            t = 2.0 * X - 1.0
            out = np.empty((self.degree,) + X.shape)
            for k in range(1, self.degree + 1):
                out[k - 1] = 2.0 * _leg.legval(t, _leg.legder(_unit(k)))
            return out
        out = np.empty((self.degree,) + X.shape)
        for j in range(1, self.degree + 1):
            c = np.zeros(len(self._knots) - self._order - 1)
            c[j] = 1.0
            out[j - 1] = BSpline(self._knots, c, self._order).derivative()(np.clip(X, 0, 1))
        return out

    def to_dict(self):
        return {"kind": self.kind, "degree": self.degree}

    def __repr__(self):
        return f"LawBasis(kind={self.kind!r}, degree={self.degree})"
