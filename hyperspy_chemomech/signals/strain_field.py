"""StrainField: in-plane strain and lattice rotation maps (4 | y, x)."""

import warnings

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
from ..fields import COMPONENTS, components_from_gradient, require_real
from ._operations import CarriedArraysMixin
from ._strain_field_decomposition import (
    StrainDecompositionMixin,
    _material_pair,
    crystal_angle_argument,
)


class StrainField(CarriedArraysMixin, StrainDecompositionMixin, Signal2D):
    """In-plane strain and rotation maps of one particle, in the image frame.

    Data layout ``(4 | y, x)``: the navigation axis holds, in order,

    - ``e11`` = du_x/dx (dimensionless),
    - ``e22`` = du_y/dy,
    - ``e12`` = (du_x/dy + du_y/dx)/2 (tensor shear, not engineering),
    - ``theta`` = (du_y/dx - du_x/dy)/2, the rigid lattice rotation (rad).

    x is the column axis and y the row axis, both calibrated (nm). Pixels outside
    the particle, or where a fit failed, are NaN.

    Strain is intensive: ``rebin`` gives the mean of each bin's finite pixels
    (HyperSpy's sums them), and a variance in
    ``metadata.Signal.Noise_properties.variance`` becomes that of the mean;
    ``isig`` and ``crop`` carry the variance along.

    What is known of the crystal frame (the angle of [100], whether the crystal
    axes are mirrored, where that comes from) travels in
    ``metadata.Chemomech.frame`` (:mod:`hyperspy_chemomech._metadata`) and is
    used by :meth:`learn_eigenstrain` and :meth:`decompose` when no
    ``crystal_angle`` is given.
    """

    _signal_type = "strain_field"
    _signal_dimension = 2

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not kwargs.get("full_initialisation", True):
            # reached through set_signal_type("strain_field") on an existing signal
            self._convert_pyxem_in_place()

    def _convert_pyxem_in_place(self):
        """Convert a pyxem strain result turned into a StrainField by ``set_signal_type``.

        pyxem's StrainMap has our (4 | x, y) layout but its own axis order and
        signs (see :func:`hyperspy_chemomech.diffraction.from_pyxem`); its instances
        carry ``current_basis_x``, which ours never do. A DisplacementGradientMap
        ``(x, y | 3, 3)`` has no other reading. Both are converted here, exactly as
        ``from_pyxem`` does, and ``metadata.Chemomech.from_pyxem.via`` says so; a
        StrainMap in a rotated basis (``rotate_strain_basis``) is given back its
        class and refused.
        """
        am = self.axes_manager
        pyxem_map = "current_basis_x" in self.__dict__
        tensor = len(am.navigation_shape) == 2 and am.signal_shape in ((3, 3), (2, 2))
        if not (pyxem_map or tensor):
            return
        basis = self.__dict__.get("current_basis_x")
        basis_y = self.__dict__.get("current_basis_y")
        if basis is not None and not np.allclose(np.asarray(basis, float), [1.0, 0.0]):
            self._give_back_class(pyxem_map, basis, basis_y)
            raise ValueError(
                f"this pyxem StrainMap is in a rotated basis (current_basis_x={list(basis)}); "
                "set_signal_type('strain_field') converts only maps in pyxem's own basis "
                "[1, 0]. Convert the unrotated map with StrainField.from_pyxem(strain_map) "
                "and rotate ours with StrainField.rotate_basis")
        for attr in ("current_basis_x", "current_basis_y"):
            self.__dict__.pop(attr, None)
        try:
            converted = StrainField.from_pyxem(self)
        except ValueError as err:
            self._give_back_class(pyxem_map, basis, basis_y)
            raise ValueError(
                f"set_signal_type('strain_field') on a pyxem strain result: {err}. Use "
                "StrainField.from_pyxem(signal, ...) once it is fixed") from err
        meta = {"Chemomech": converted.metadata.Chemomech.as_dictionary()}
        meta["Chemomech"]["from_pyxem"]["via"] = "set_signal_type('strain_field')"
        if not self.metadata.General.title:
            meta["General"] = {"title": converted.metadata.General.title}
        self._load_dictionary({"data": converted.data,
                               "axes": converted.axes_manager._get_axes_dicts(),
                               "metadata": meta})

    def _give_back_class(self, pyxem_map, basis, basis_y):
        """Undo set_signal_type: never leave an unconverted StrainField behind."""
        import sys

        self.metadata.Signal.signal_type = ""
        # pyxem 0.21 does not register StrainMap with HyperSpy: give its class back
        # directly (its module is loaded: it made this signal)
        module = sys.modules.get("pyxem.signals.strain_map")
        if pyxem_map and module is not None and not self._lazy:
            self.__class__ = module.StrainMap
            self.current_basis_x, self.current_basis_y = basis, basis_y
        else:
            self._assign_subclass()  # a plain Signal2D
            if pyxem_map:
                self.current_basis_x, self.current_basis_y = basis, basis_y

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
        arrays = [np.asarray(require_real(a, n), dtype=float)
                  for a, n in zip((e11, e22, e12, theta), COMPONENTS)]
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
            variance = np.asarray(require_real(variance, "variance"), dtype=float)
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
        :mod:`hyperspy_chemomech.fields` (``pyxem_tensor_to_gradient``) and pinned
        by tests. Parameters and returns as :func:`hyperspy_chemomech.diffraction.from_pyxem`.

        Raises
        ------
        TypeError
            ``signal`` is not a HyperSpy signal (e.g. a plain array).
        ValueError
            Neither pyxem layout, uncalibrated scan axes, a bad ``vector_order``.
        """
        from ..fields import pyxem_strain_to_tensor, pyxem_tensor_to_gradient

        if getattr(signal, "axes_manager", None) is None:
            shape = getattr(signal, "shape", None)
            raise TypeError(
                "from_pyxem expects a pyxem StrainMap (4 | x, y) or DisplacementGradientMap "
                f"(x, y | 3, 3), a HyperSpy signal with calibrated scan axes; got "
                f"{type(signal).__name__}" + (f" of shape {shape}" if shape is not None else "")
                + ". For plain arrays of our components use StrainField.from_components(e11, "
                "e22, e12, theta, scale=...); for pyxem's four maps wrap them in a Signal2D "
                "(4, ny, nx) with nm scan axes"
            )
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
        try:
            angle = float(angle)
        except (TypeError, ValueError):
            angle = np.nan
        if not np.isfinite(angle):
            raise ValueError("angle must be a finite number of radians")
        out = self.deepcopy()
        data = np.asarray(require_real(self.data, "strain field"), dtype=float)
        new = data.copy()
        new[:3] = rotate_strain(data[:3], angle, axis=0, inverse=True)
        out.data = new
        before = 0.0
        if self.metadata.has_item("Chemomech.basis.angle"):
            before = float(self.metadata.Chemomech.basis.angle)
        out.metadata.set_item("Chemomech.basis.angle", before + angle)
        return out

    # -- learning -------------------------------------------------------------
    def learn_eigenstrain(self, composition, material="LixFePO4", crystal_angle=None, mask=None,
                          composition_resolution=None, basis="legendre", degree="auto",
                          method="strain_gap", boundary="free", plane="stress",
                          use_rotation=True, shear=False, monotonic=False, selection="cv",
                          max_degree=6, show_progressbar=None, composition_uncertainty="auto",
                          **kwargs):
        """Learn the eigenstrain law eps0(X) - eps0(0) under mechanical equilibrium.

        Parameters
        ----------
        composition : CompositionMap
            Composition on this strain grid (same shape and calibration), e.g. from
            ``CorrelativeTransform.apply(comp, onto=strain)``. The body is where it
            is finite (or ``mask``).
        material : str, Material, 6x6 array, or a pair of those
            Stiffness. ``"LixFePO4"`` (default) is C(X) linear between the end
            members FePO4 (X = 0) and LiFePO4 (X = 1), the same as ``("FePO4",
            "LiFePO4")``: their stiffnesses differ; ``"LiFePO4"`` is homogeneous. A
            pair in the reverse order is refused (X is the fraction of the
            lithiated member).
        crystal_angle : float or orix Orientation / CrystalMap, optional
            Angle from +x to the crystal [100] axis, toward +y (rad); an orix
            orientation (a CrystalMap: its mean) gives it, its beam checked to lie
            along [010] (see :func:`~hyperspy_chemomech.mechanics.crystal_angle_from_orientation`).
            Default: the
            frame stored with this field (``metadata.Chemomech.frame``, e.g. by
            :func:`~hyperspy_chemomech.io.load_correlative_mat`), else 0. A given
            angle that contradicts the stored one warns, naming both.
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
        composition_uncertainty : "auto", None, array_like or CompositionErrors
            Errors of the composition carried into the law (bootstrap covariance,
            attenuation corrected by SIMEX). ``"auto"``: as they were made, when
            the map was resampled by ``CorrelativeTransform.apply`` from a map with
            an uncertainty (the unmixing's sigma on the X-ray grid, redrawn there
            and resampled by the same transform; the transform's covariance when
            it has one), else the map's own sigma(X) on this grid, else none.
            ``None``: X taken as exact. An array: sigma(X) on this grid.
        **kwargs
            Passed to :func:`hyperspy_chemomech.learning.learn_law`.

        Returns
        -------
        EigenstrainLaw

        Warns
        -----
        UserWarning
            When :meth:`check_conventions` flags the map (a sign, shear or frame
            slip would make the law wrong), or the stored frame is ambiguous.
        """
        from ..learning import learn_law
        from ..mechanics import in_plane_lattice, resolve_stiffness
        from .._metadata import get_frame, resolve_crystal_angle
        from ._composition_errors import error_model
        from .eigenstrain_law import EigenstrainLaw

        strain, X, pixel = self._paired_arrays(composition)
        crystal_angle, angle_source = resolve_crystal_angle(self,
                                                            crystal_angle_argument(crystal_angle))
        self._warn_on_conventions(strain, pixel, "learn_eigenstrain")
        frame = get_frame(self)
        if (angle_source.startswith("metadata") and frame is not None
                and str(frame.get("ambiguous")) == "True"):
            warnings.warn("learn_eigenstrain: the crystal frame stored with this field was "
                          "ambiguous when it was found from the data (see "
                          "metadata.Chemomech.frame: candidates and scores); the law depends on it",
                          UserWarning, stacklevel=2)
        material = _material_pair(material)
        variance = None
        if self.metadata.has_item("Signal.Noise_properties.variance"):
            v = self.metadata.Signal.Noise_properties.variance
            variance = np.asarray(require_real(v.data if hasattr(v, "data") else v, "variance"),
                                  dtype=float)
            if variance.shape != strain.shape:
                raise ValueError(
                    f"metadata.Signal.Noise_properties.variance has shape {variance.shape}, the "
                    f"strain field {strain.shape}: give one variance per component and pixel "
                    "(or remove it)")
        source = None
        if composition.metadata.has_item("Chemomech.registration.source_pixel_size_nm"):
            source = float(composition.metadata.Chemomech.registration.source_pixel_size_nm)
        # the material's lattice: a found core must have a lattice Burgers vector
        kwargs.setdefault("dislocation_lattice", in_plane_lattice(material))
        fit = learn_law(
            strain, X, pixel, resolve_stiffness(material, plane), crystal_angle=crystal_angle,
            mask=mask, variance=variance, composition_resolution=composition_resolution,
            source_pixel_size=source, basis=basis, degree=degree, max_degree=max_degree,
            method=method, boundary=boundary, use_rotation=use_rotation, shear=shear,
            selection=selection, monotonic=monotonic, show_progressbar=show_progressbar,
            composition_uncertainty=error_model(composition, composition_uncertainty, self),
            **kwargs,
        )
        law = EigenstrainLaw.from_fit(fit)
        law.metadata.set_item("Chemomech.law.settings.material",
                              material if isinstance(material, str) else
                              (list(material) if isinstance(material, (tuple, list))
                               and all(isinstance(m, str) for m in material) else "user stiffness"))
        law.metadata.set_item("Chemomech.law.settings.plane", plane)
        law.metadata.set_item("Chemomech.law.settings.crystal_angle_source", angle_source)
        # which composition map was used: its title and a hash of its values
        import hashlib

        law.metadata.set_item("Chemomech.law.composition.title",
                              str(composition.metadata.General.title))
        law.metadata.set_item("Chemomech.law.composition.sha256",
                              hashlib.sha256(np.ascontiguousarray(X, dtype=float).tobytes())
                              .hexdigest())
        law.metadata.General.title = f"Eigenstrain law ({self.metadata.General.title})"
        return law

    def _warn_on_conventions(self, strain, pixel, what):
        """Warn when the convention check flags this map (before any law is learned)."""
        from ..decomposition import convention_check

        try:
            check = convention_check(strain, pixel)
        except ValueError:      # too little data to judge: nothing to say
            return None
        if not check["ok"]:
            warnings.warn(f"{what}: check_conventions() flags this strain map, the law would be "
                          f"wrong: {check['message']}", UserWarning, stacklevel=3)
        return check

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
        strain = np.asarray(require_real(self.data, "strain field"), dtype=float)
        X = np.asarray(require_real(composition.data, "composition"), dtype=float)
        return strain, X, ps

    @property
    def particle_mask(self):
        """Boolean (y, x) array: True where any component is finite."""
        self.validate(require_calibration=False)
        return np.isfinite(np.asarray(self.data)).any(axis=0)

    # -- display --------------------------------------------------------------
    def plot(self, style="panels", navigator="auto", percentile=99.0, cmap="RdBu_r",
             per_row=2, scalebar=True, figsize=None, fig=None, **kwargs):
        """Four labelled panels: e11, e22, e12 and theta, on a diverging colour map.

        The strains share one symmetric colour scale, the rotation (rad) has its
        own; axes in nm, a scale bar, colour bars with units, NaN (outside the
        particle) transparent (see
        :func:`~hyperspy_chemomech.signals.plot_component_maps`). A collection
        (more navigation axes than the component axis) gets HyperSpy's interactive
        plot instead, with a navigator of the mean of each map's finite pixels.

        Parameters
        ----------
        style : {"panels", "hyperspy"}
            ``"hyperspy"``: HyperSpy's interactive view (one component at a time,
            a navigator; markers go there), as for collections.
        navigator : "auto" or as HyperSpy's ``plot``
            For the HyperSpy view.
        percentile : float
            Percentile of ``|value|`` inside the particle giving the colour limits.
        cmap : str
            Diverging colour map.
        per_row : int
            Panels per row.
        scalebar : bool
        figsize : (float, float), optional
            Figure size (inch).
        fig : matplotlib.figure.Figure, optional
        **kwargs
            Keywords of :func:`hyperspy.api.plot.plot_images` (one map) or of
            HyperSpy's ``Signal2D.plot`` (collections); others raise ``TypeError``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ._plotting import hyperspy_plot, plot_component_maps

        if style not in ("panels", "hyperspy"):
            raise ValueError(f"style must be 'panels' or 'hyperspy', got {style!r}")
        if style == "panels" and self.axes_manager.navigation_shape == (4,):
            return plot_component_maps(self, names=list(COMPONENTS), percentile=percentile,
                                       cmap=cmap, per_row=per_row, scalebar=scalebar,
                                       figsize=figsize, fig=fig, **kwargs)
        return hyperspy_plot(self, Signal2D.plot, navigator=navigator, cmap=cmap,
                             scalebar=scalebar, quantity="strain / rotation (rad)", **kwargs)

    def add_marker(self, marker, plot_on_signal=True, plot_marker=True, permanent=False,
                   plot_signal=True, render_figure=True):
        """HyperSpy's ``add_marker``, drawn on the interactive view (``plot(style="hyperspy")``)."""
        if plot_marker and plot_signal and (self._plot is None or not self._plot.is_active):
            self.plot(style="hyperspy")
        return super().add_marker(marker, plot_on_signal=plot_on_signal,
                                  plot_marker=plot_marker, permanent=permanent,
                                  plot_signal=plot_signal, render_figure=render_figure)


class LazyStrainField(LazySignal, StrainField):
    """Lazy (dask) version of :class:`StrainField`."""

    _lazy = True
    rebin = CarriedArraysMixin.rebin   # the mean, not LazySignal's sum
