"""EigenstrainLaw: the learned chemical expansion eps0(X) - eps0(0)."""

import numpy as np
from hyperspy._signals.signal1d import Signal1D
from hyperspy._signals.lazy import LazySignal

#: Crystal-frame components, in order, as stored along the navigation axis.
LAW_COMPONENTS = ("e_100", "e_001", "e_shear")


class EigenstrainLaw(Signal1D):
    """Composition dependence of the eigenstrain, relative to X = 0.

    Data layout ``(component | X)``: for each crystal-frame component
    ([100], [001], then the shear if learned) the values of
    eps0(X) - eps0(0) (dimensionless) on a composition axis spanning 0..1.
    """

    _signal_type = "eigenstrain_law"
    _signal_dimension = 1

    def validate(self):
        """Check the ``(component | X)`` layout with X inside [0, 1]; raise ``ValueError``."""
        nav = self.axes_manager.navigation_shape
        if len(nav) > 1 or (nav and not 2 <= nav[0] <= 3):
            raise ValueError(
                "EigenstrainLaw needs 2 or 3 components ([100], [001] [, shear]) "
                f"along its navigation axis; got navigation shape {nav}"
            )
        x = self.axes_manager.signal_axes[0].axis
        if x.min() < -1e-12 or x.max() > 1 + 1e-12:
            raise ValueError(
                f"composition axis must lie in [0, 1], spans [{x.min()}, {x.max()}]"
            )
        return self

    def evaluate(self, X):
        """Interpolate the tabulated law at compositions ``X``.

        Parameters
        ----------
        X : array_like
            Compositions in [0, 1].

        Returns
        -------
        numpy.ndarray, shape (n_components, X.size)
            eps0(X) - eps0(0) per component (dimensionless).
        """
        self.validate()
        X = np.atleast_1d(np.asarray(X, dtype=float)).ravel()
        if np.any((X < 0) | (X > 1)):
            raise ValueError("X must lie in [0, 1]")
        grid = self.axes_manager.signal_axes[0].axis
        data = np.atleast_2d(np.asarray(self.data))
        return np.stack([np.interp(X, grid, row) for row in data])


class LazyEigenstrainLaw(LazySignal, EigenstrainLaw):
    """Lazy (dask) version of :class:`EigenstrainLaw`."""

    _lazy = True
