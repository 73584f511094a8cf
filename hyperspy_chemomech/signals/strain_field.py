"""StrainField: in-plane strain and lattice rotation maps (4 | y, x)."""

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

from .._metadata import (
    axes_nm,
    pixel_size_nm,
    record,
    require_calibrated,
    set_image_axes,
    spatial_axes,
)
from ..fields import COMPONENTS, components_from_gradient
from ._strain_field_decomposition import StrainDecompositionMixin


class StrainField(StrainDecompositionMixin, Signal2D):
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

    @property
    def _eager_class(self):
        """The in-memory class for results computed from this field (lazy or not)."""
        return StrainField

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
    def from_pyxem(cls, signal, vector_order="yx", scan_rotation=0.0, flip=False):
        """Convert a pyxem ``StrainMap`` or ``DisplacementGradientMap`` into a StrainField.

        pyxem orders its vectors (ky, kx), fits in reciprocal space and uses its own
        rotation sign; the exact conversion is documented in
        :mod:`hyperspy_chemomech.diffraction` (``pyxem_tensor_to_gradient``) and pinned
        by tests. Parameters and returns as :func:`hyperspy_chemomech.diffraction.from_pyxem`.
        """
        from ..diffraction import pyxem_strain_to_tensor, pyxem_tensor_to_gradient

        am = signal.axes_manager
        nav, sig = am.navigation_shape, am.signal_shape
        if nav == (4,) and len(sig) == 2:
            data = np.asarray(signal.data.compute() if signal._lazy else signal.data, float)
            D = pyxem_strain_to_tensor(*data)
            _, scale, offset = axes_nm(am.signal_axes, "pyxem StrainMap")
            kind = "StrainMap"
        elif len(nav) == 2 and sig in ((3, 3), (2, 2)):
            D = np.asarray(signal.data.compute() if signal._lazy else signal.data, float)
            _, scale, offset = axes_nm(am.navigation_axes, "pyxem DisplacementGradientMap")
            kind = "DisplacementGradientMap"
        else:
            raise ValueError(
                "from_pyxem expects a pyxem StrainMap (navigation shape (4,), 2 signal axes) "
                "or a DisplacementGradientMap (2 navigation axes, signal shape (3, 3)); got "
                f"navigation shape {nav} and signal shape {sig}"
            )
        H = pyxem_tensor_to_gradient(D, vector_order, scan_rotation, flip)
        sf = StrainField.from_components(*components_from_gradient(H), scale=scale,
                                         units="nm", offset=offset)
        record(sf, "from_pyxem", source=kind, vector_order=vector_order,
               scan_rotation=float(scan_rotation), flip=bool(flip),
               frame="image: x = scan column axis, y = scan row axis")
        sf.metadata.General.title = "Strain from pyxem"
        return sf

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

    def rotate_basis(self, angle):
        """Components in a basis rotated by ``angle`` (the pixel grid stays).

        Parameters
        ----------
        angle : float
            Angle (rad) from the image +x axis to the new first axis, toward +y;
            e.g. the ``crystal_angle`` gives the components along [100] and [001].

        Returns
        -------
        StrainField
            A new field: e11, e22, e12 along the rotated axes; theta (a rotation
            about the beam) is unchanged. The angle is added up in
            ``metadata.Chemomech.basis.angle``.
        """
        from ..fields import rotate_strain

        self.validate(require_calibration=False)
        angle = float(angle)
        if not np.isfinite(angle):
            raise ValueError("angle must be a finite number of radians")
        out = self.deepcopy()
        data = np.asarray(self.data, dtype=float)
        new = data.copy()
        new[:3] = rotate_strain(data[:3], angle, axis=0, inverse=True)
        out.data = new
        before = 0.0
        if self.metadata.has_item("Chemomech.basis.angle"):
            before = float(self.metadata.Chemomech.basis.angle)
        out.metadata.set_item("Chemomech.basis.angle", before + angle)
        return out

    # -- learning -------------------------------------------------------------
    def learn_eigenstrain(self, composition, material="LiFePO4", crystal_angle=0.0, mask=None,
                          composition_resolution=None, basis="legendre", degree="auto",
                          method="strain_gap", boundary="free", plane="stress",
                          use_rotation=True, shear=False, monotonic=False, selection="cv",
                          max_degree=6, show_progressbar=None, **kwargs):
        """Learn the eigenstrain law eps0(X) - eps0(0) under mechanical equilibrium.

        Parameters
        ----------
        composition : CompositionMap
            Composition on this strain grid (same shape and calibration), e.g. from
            ``CorrelativeTransform.apply(comp, onto=strain)``. The body is where it
            is finite (or ``mask``).
        material : str, Material, 6x6 array, or a pair of those
            Stiffness. ``"LiFePO4"`` is homogeneous; ``("FePO4", "LiFePO4")`` makes
            C(X) linear between the end members.
        crystal_angle : float
            Angle from +x to the crystal [100] axis, toward +y (rad).
        mask : array_like of bool, optional
            The body, overriding ``isfinite(composition)``.
        composition_resolution : float, optional
            FWHM (nm) of the composition map's point-spread function. Default: the
            X-ray pixel size recorded by the registration, else estimated by
            cross-validation (reported in the law's metadata).
        basis : {"legendre", "bspline", "linear"}
        degree : "auto" or int
            ``"auto"`` picks it by spatially blocked cross-validation (or BIC).
        method : {"strain_gap", "equilibrium_gap"}
            Strain-gap fit (default, maximum likelihood) or the published
            equilibrium-gap fit.
        boundary : {"free", "dirichlet"}
            ``"free"``: traction-free edges, the whole particle is in the map.
            ``"dirichlet"``: the map cuts the particle (or it is clamped): the edge is
            held at the measured displacement (integrated from this strain field).
        plane : {"stress", "strain"}
            Plane stress (thin platelets, default) or plane strain.
        use_rotation : bool
            Use the rotation map as data.
        shear : bool
            Learn a crystal-frame shear eigenstrain too.
        monotonic : bool
            Constrain each component to be monotonic in X (B-spline basis).
        selection : {"cv", "bic"}
        max_degree : int
        show_progressbar : bool, optional
        **kwargs
            Passed to :func:`hyperspy_chemomech.learning.learn_law`.

        Returns
        -------
        EigenstrainLaw
        """
        from ..learning import learn_law
        from ..mechanics import resolve_stiffness
        from .eigenstrain_law import EigenstrainLaw

        strain, X, pixel = self._paired_arrays(composition)
        variance = None
        if self.metadata.has_item("Signal.Noise_properties.variance"):
            v = self.metadata.Signal.Noise_properties.variance
            variance = np.asarray(v.data if hasattr(v, "data") else v, dtype=float)
            if variance.shape != strain.shape:
                raise ValueError(
                    f"metadata.Signal.Noise_properties.variance has shape {variance.shape}, the "
                    f"strain field {strain.shape}: give one variance per component and pixel "
                    "(or remove it)")
        source = None
        if composition.metadata.has_item("Chemomech.registration.source_pixel_size_nm"):
            source = float(composition.metadata.Chemomech.registration.source_pixel_size_nm)
        fit = learn_law(
            strain, X, pixel, resolve_stiffness(material, plane), crystal_angle=crystal_angle,
            mask=mask, variance=variance, composition_resolution=composition_resolution,
            source_pixel_size=source, basis=basis, degree=degree, max_degree=max_degree,
            method=method, boundary=boundary, use_rotation=use_rotation, shear=shear,
            selection=selection, monotonic=monotonic, show_progressbar=show_progressbar, **kwargs,
        )
        law = EigenstrainLaw.from_fit(fit)
        law.metadata.set_item("Chemomech.law.settings.material",
                              material if isinstance(material, str) else
                              (list(material) if isinstance(material, (tuple, list))
                               and all(isinstance(m, str) for m in material) else "user stiffness"))
        law.metadata.set_item("Chemomech.law.settings.plane", plane)
        law.metadata.General.title = f"Eigenstrain law ({self.metadata.General.title})"
        return law

    def _paired_arrays(self, composition):
        """Validate this field against a composition map on the same grid."""

        self.validate()
        if composition is None or getattr(composition, "axes_manager", None) is None:
            raise TypeError("composition must be a CompositionMap (a HyperSpy Signal2D)")
        if composition.axes_manager.signal_dimension != 2 or composition.axes_manager.navigation_dimension:
            raise ValueError("composition must be a single 2D map (| y, x)")
        shape = self.axes_manager.signal_shape[::-1]
        cshape = composition.axes_manager.signal_shape[::-1]
        if tuple(shape) != tuple(cshape):
            raise ValueError(
                f"composition grid {tuple(cshape)} differs from the strain grid {tuple(shape)}; "
                "resample it first (CorrelativeTransform.apply(comp, onto=strain))"
            )
        ps = pixel_size_nm(self, "strain field")
        pc = pixel_size_nm(composition, "composition")
        for (a, b), name in zip(zip(spatial_axes(self), spatial_axes(composition)), ("y", "x")):
            if not np.isclose(a.offset, b.offset, atol=0.01 * ps[0]):
                raise ValueError(f"composition {name}-offset {b.offset} differs from the strain's {a.offset}")
        if not np.allclose(ps, pc, rtol=1e-6):
            raise ValueError(f"composition pixel size {pc} nm differs from the strain's {ps} nm")
        strain = np.asarray(self.data, dtype=float)
        X = np.asarray(composition.data, dtype=float)
        return strain, X, ps

    @property
    def particle_mask(self):
        """Boolean (y, x) array: True where any component is finite."""
        self.validate(require_calibration=False)
        return np.isfinite(np.asarray(self.data)).any(axis=0)


class LazyStrainField(LazySignal, StrainField):
    """Lazy (dask) version of :class:`StrainField`."""

    _lazy = True
