"""StrainField: in-plane strain and lattice rotation maps (4 | y, x)."""

import numpy as np
from hyperspy._signals.signal2d import Signal2D
from hyperspy._signals.lazy import LazySignal

from ._common import require_calibrated, set_image_axes

#: Component order along the navigation axis (see docs, "Frames and signs").
COMPONENTS = ("e11", "e22", "e12", "theta")


class StrainField(Signal2D):
    """In-plane strain and rotation maps of one particle, in the image frame.

    Data layout ``(4 | y, x)``: the navigation axis holds, in order,

    - ``e11`` = du_x/dx (dimensionless),
    - ``e22`` = du_y/dy,
    - ``e12`` = (du_x/dy + du_y/dx)/2 (tensor shear, not engineering),
    - ``theta`` = (du_y/dx - du_x/dy)/2, the rigid lattice rotation (rad).

    x is the column axis and y the row axis, both calibrated (nm). Pixels outside
    the particle, or where a fit failed, are NaN.
    """

    _signal_type = "strain_field"
    _signal_dimension = 2

    # -- construction -----------------------------------------------------
    @classmethod
    def from_components(cls, e11, e22, e12, theta, scale=1.0, units="nm", offset=(0.0, 0.0),
                        variance=None):
        """Build a StrainField from four 2D arrays.

        Parameters
        ----------
        e11, e22, e12 : array_like, shape (ny, nx)
            Strain components (dimensionless, tensor shear).
        theta : array_like, shape (ny, nx)
            Lattice rotation (rad), positive from +x toward +y.
        scale : float or (float, float)
            Pixel size (dy, dx) in ``units``.
        units : str
            Length unit of the pixel size (default nm).
        offset : (float, float)
            Position of the first pixel centre (y, x).
        variance : array_like, shape (4, ny, nx), optional
            Per-pixel variance of each component, stored as HyperSpy's
            ``metadata.Signal.Noise_properties.variance``.
        """
        arrays = [np.asarray(a, dtype=float) for a in (e11, e22, e12, theta)]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise ValueError(
                "e11, e22, e12 and theta must be 2D arrays of one shape, got "
                + ", ".join(str(a.shape) for a in arrays)
            )
        s = cls(np.stack(arrays))
        s.axes_manager.navigation_axes[0].name = "component"
        set_image_axes(s, scale=scale, units=units, offset=offset)
        if variance is not None:
            variance = np.asarray(variance, dtype=float)
            if variance.shape != s.data.shape:
                raise ValueError(
                    f"variance must have shape {s.data.shape}, got {variance.shape}"
                )
            s.metadata.set_item("Signal.Noise_properties.variance",
                                Signal2D(variance.copy()))
        s.metadata.General.title = "Strain field"
        return s

    @classmethod
    def from_pyxem(cls, signal, **kwargs):
        """Convert a pyxem strain or displacement-gradient map into a StrainField.

        pyxem orders its vectors (ky, kx), fits in reciprocal space and uses its own
        rotation sign; the conversion is documented and pinned by tests in
        :func:`hyperspy_chemomech.diffraction.from_pyxem`, which this delegates to.
        """
        from ..diffraction import from_pyxem

        return from_pyxem(signal, **kwargs)

    # -- validation ---------------------------------------------------------
    def validate(self, require_calibration=True):
        """Check the ``(4 | y, x)`` layout and the calibration; raise ``ValueError``.

        Returns
        -------
        self
        """
        nav = self.axes_manager.navigation_shape
        if nav != (4,):
            raise ValueError(
                "StrainField needs navigation shape (4,) holding "
                f"{', '.join(COMPONENTS)}; got navigation shape {nav}"
            )
        if require_calibration:
            require_calibrated(self, "StrainField")
        return self

    # -- component access ---------------------------------------------------
    def _component(self, name):
        self.validate(require_calibration=False)
        out = self.inav[COMPONENTS.index(name)]
        out.set_signal_type("")
        out.metadata.General.title = name
        return out

    @property
    def e11(self):
        """Normal strain du_x/dx as a Signal2D."""
        return self._component("e11")

    @property
    def e22(self):
        """Normal strain du_y/dy as a Signal2D."""
        return self._component("e22")

    @property
    def e12(self):
        """Tensor shear strain as a Signal2D."""
        return self._component("e12")

    @property
    def theta(self):
        """Lattice rotation (rad) as a Signal2D."""
        return self._component("theta")

    @property
    def particle_mask(self):
        """Boolean (y, x) array: True where any component is finite."""
        self.validate(require_calibration=False)
        return np.isfinite(np.asarray(self.data)).any(axis=0)


class LazyStrainField(LazySignal, StrainField):
    """Lazy (dask) version of :class:`StrainField`."""

    _lazy = True
