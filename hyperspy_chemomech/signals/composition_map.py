"""CompositionMap: lithiated fraction X per pixel (| y, x)."""

import numpy as np
from hyperspy._signals.signal2d import Signal2D
from hyperspy._signals.lazy import LazySignal


class CompositionMap(Signal2D):
    """Map of the lithiated fraction X in [0, 1]; NaN outside the particle."""

    _signal_type = "composition_map"
    _signal_dimension = 2

    @property
    def particle_mask(self):
        """Boolean (y, x) array, True where X is finite."""
        return np.isfinite(np.asarray(self.data))


class LazyCompositionMap(LazySignal, CompositionMap):
    """Lazy (dask) version of :class:`CompositionMap`."""

    _lazy = True
