"""StrainField methods for decomposition, stress and dislocation maps (issue 5).

Thin: validate the signals and the law's settings, delegate to
:mod:`hyperspy_chemomech.decomposition`, wrap the arrays as signals and record
what was done in ``metadata.Chemomech``.
"""

import numpy as np

from .._metadata import offset_nm, pixel_size_nm, record, spatial_axes, unit_nm
from ..fields import COMPONENTS, STRESS_COMPONENTS


def _material_pair(material):
    """A solid solution's name (``"LixFePO4"``) -> its pair of end members (others unchanged).

    The systems are defined once, in :func:`hyperspy_chemomech.mechanics.end_members`,
    which also refuses a pair in the reverse order (before any work is done).
    """
    from ..mechanics import end_members

    pair = end_members(material)
    return material if pair is None or not isinstance(material, str) else pair


def crystal_angle_argument(crystal_angle):
    """A ``crystal_angle`` argument as radians (or None): a number, or an orix Orientation,
    Rotation or CrystalMap, converted (beam checked) by
    :func:`hyperspy_chemomech.mechanics.crystal_angle_from_orientation`."""
    if crystal_angle is None or np.ndim(crystal_angle) == 0 and not hasattr(
            crystal_angle, "to_matrix"):
        return crystal_angle
    if hasattr(crystal_angle, "to_matrix") or hasattr(crystal_angle, "orientations"):
        from ..mechanics import crystal_angle_from_orientation

        return crystal_angle_from_orientation(crystal_angle)
    raise TypeError(f"crystal_angle must be a number (rad) or an orix Orientation/CrystalMap, "
                    f"got {type(crystal_angle).__name__} of shape {np.shape(crystal_angle)}")


def _canonical_material(material):
    """A comparable description of a material argument, or None if it cannot be compared."""
    from ..mechanics import end_members

    if isinstance(material, str):
        # a solid solution's name and its pair of end members are the same stiffness
        pair = end_members(material)
        return material if pair is None else pair
    if isinstance(material, (tuple, list, np.ndarray)) and len(material) == 2 and all(
            isinstance(m, (str, np.str_)) for m in material):
        return tuple(str(m) for m in material)
    name = getattr(material, "name", None)
    if isinstance(name, str) and hasattr(material, "stiffness"):
        return name
    return None


def _law_settings(law):
    from .eigenstrain_law import EigenstrainLaw

    if not isinstance(law, EigenstrainLaw):
        raise TypeError(f"law must be an EigenstrainLaw (from learn_eigenstrain), got "
                        f"{type(law).__name__}")
    law.validate()
    info = law._info()
    return info or {}, (info or {}).get("settings", {})


def _resolve_setting(name, given, learned, override, fmt=repr, same=None):
    """The value to use for one setting: the law's, unless given (then it must agree)."""
    if given is None:
        return learned
    if learned is None:
        return given
    agree = same(given, learned) if same is not None else given == learned
    if not agree and not override:
        raise ValueError(
            f"the law was learned with {name}={fmt(learned)}, but {name}={fmt(given)} was asked "
            f"for now: the decomposition must use the settings the law was learned with, or "
            f"pass override=True to use {name}={fmt(given)} anyway")
    return given


class DislocationTable(np.ndarray):
    """The structured array of :meth:`StrainField.find_dislocations`, with its settings.

    A plain NumPy structured array (fields ``x``, ``y``, ``b_x``, ``b_y``, ``snr``)
    that also carries ``settings``: the arguments and defaults the search ran with
    (threshold, smoothing, radius in px, ...), so a result says how it was found.
    """

    def __new__(cls, rows, settings=None):
        obj = np.asarray(rows).view(cls)
        obj.settings = dict(settings or {})
        return obj

    def __array_finalize__(self, obj):
        self.settings = dict(getattr(obj, "settings", {}) or {})


def _check_number(name, value, low=None, strict=False, allow_none=True, integer=False):
    """``value`` as a float (or None), else a ValueError naming ``name``."""
    if value is None and allow_none:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(v) or (
            low is not None and (v <= low if strict else v < low)) or (
            integer and v != int(v)):
        what = "an integer" if integer else "a finite number"
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        raise ValueError(f"{name} must be {what}{bound}, got {value!r}")
    return v


#: Smallest image (px per side) on which derivatives of a map are defined.
MIN_MAP_SIDE = 4


class StrainDecompositionMixin:
    """Methods of :class:`StrainField` that split strain and find dislocations."""

    # -- decomposition ---------------------------------------------------------
    def decompose(self, composition, law, material=None, crystal_angle=None, plane=None,
                  reference=None, mask=None, boundary=None, override=False,
                  show_progressbar=None):
        """Split this strain field into reference, chemical, coherency and residual parts.

        ``measured = reference + chemical + coherency + residual`` pixel by pixel, with
        chemical = eps0(X(r)) (image frame, zero rotation), coherency = S[eps0(X)] -
        chemical (the elastic strain of the traction-free particle, and its lattice
        rotation) and residual what the chemistry does not explain (noise,
        dislocations, a wrong law). The stress is C(X) : coherency.

        The finite-element factorisation made while learning the law is reused (same
        mask, stiffness and angle), so nothing is factorised twice.

        Parameters
        ----------
        composition : CompositionMap
            Composition on this strain grid (same shape and calibration). The
            particle is where it is finite (or ``mask``).
        law : EigenstrainLaw
            From :meth:`learn_eigenstrain`.
        material : str, Material, 6x6 array or a pair, optional
            Stiffness; default the one the law was learned with (``"LixFePO4"``,
            C(X), for a law that records none). A different one is an error unless
            ``override=True``.
        crystal_angle : float or orix Orientation / CrystalMap, optional
            Angle (rad) from +x to [100], toward +y (or an orix orientation that gives
            it, as in :meth:`learn_eigenstrain`); default the law's (else the
            frame stored in ``metadata.Chemomech.frame``). One that contradicts the
            stored frame warns, naming both.
        plane : {"stress", "strain"}, optional
            Default the law's.
        reference : None, "fit" or array_like of 4 floats
            The constant reference strain (e11, e22, e12, theta). ``None``: the one
            fit jointly with the law (fitted here when the law has none, or for theta
            when the law was learned without rotation data); ``"fit"``: the median
            of measured - S[eps0(X)] over the particle; or given values.
        mask : array_like of bool, optional
            The body, overriding ``isfinite(composition)``.
        boundary : {"free", "dirichlet"}, optional
            Default the law's: ``"dirichlet"`` holds the body's edge at the measured
            displacement (a field of view that cuts the particle).
        override : bool
            Accept settings (material, plane, angle, pixel size) that differ from
            those the law was learned with.
        show_progressbar : bool, optional

        Returns
        -------
        DecompositionResult
            ``.chemical``, ``.coherency``, ``.residual`` (StrainField), ``.reference``
            (4,), ``.stress`` (Signal2D, GPa), ``.summary()``, ``.plot()``, and
            ``.residual_matched`` when the law was learned at a blurrier resolution.

        Examples
        --------
        >>> from hyperspy_chemomech.simulate.particle import make_particle
        >>> p = make_particle(shape=(40, 60), noise=1e-4)
        >>> strain, comp = p.strain_field(), p.composition_map()
        >>> law = strain.learn_eigenstrain(comp, degree=1, show_progressbar=False)
        >>> parts = strain.decompose(comp, law)
        >>> parts.residual                                 # what the chemistry leaves
        <StrainField, title: residual strain (Synthetic strain field), dimensions: (4|60, 40)>
        >>> bool(abs(parts.summary()["rms"]["residual"][0] / 1e-4 - 1) < 0.2)
        True
        """
        from ..decomposition import decompose
        from ..mechanics import resolve_stiffness
        from ._decomposition_result import DecompositionResult, image_like

        strain, X, pixel = self._paired_arrays(composition)
        info, settings = _law_settings(law)
        material = _material_pair(material)
        ps_law = settings.get("pixel_size_nm")
        if ps_law is not None and not np.isclose(float(ps_law), float(np.mean(pixel)),
                                                 rtol=1e-6) and not override:
            raise ValueError(f"the law was learned on a {float(ps_law):g} nm grid, this strain "
                             f"field has {float(np.mean(pixel)):g} nm pixels: the stiffness matrix "
                             "and the resolution matching depend on it (override=True to go on)")
        learned_material = settings.get("material")
        if isinstance(learned_material, np.ndarray):
            learned_material = learned_material.tolist()
        if learned_material == "user stiffness":
            if material is None:
                raise ValueError("the law was learned with a stiffness given as numbers, which "
                                 "the law does not record: pass material= (the same stiffness)")
            learned_material = None
        if material is None:
            material = learned_material if learned_material is not None else "LixFePO4"
            if isinstance(material, list):
                material = tuple(material)
        else:
            c_given = _canonical_material(material)
            c_law = _canonical_material(learned_material) if learned_material is not None else None
            if c_given is not None and c_law is not None:
                _resolve_setting("material", c_given, c_law, override)
        plane = _resolve_setting("plane", plane, settings.get("plane"), override) or "stress"
        boundary = _resolve_setting("boundary", boundary, settings.get("boundary"),
                                    override) or "free"
        angle_law = settings.get("crystal_angle")
        if crystal_angle is not None or angle_law is None:
            # a given angle is checked against the frame stored with the field (warns);
            # a law without an angle falls back on that frame
            from .._metadata import resolve_crystal_angle

            crystal_angle, _ = resolve_crystal_angle(
                self, crystal_angle_argument(crystal_angle), "decompose")
        crystal_angle = _resolve_setting(
            "crystal_angle", crystal_angle, None if angle_law is None else float(angle_law),
            override, fmt=lambda a: f"{float(a):.6g} rad",
            same=lambda a, b: np.isclose(float(a), float(b), rtol=0, atol=1e-9))
        crystal_angle = 0.0 if crystal_angle is None else float(crystal_angle)
        stiffness = resolve_stiffness(material, plane)

        if reference is None:
            ref = info.get("reference_strain")
            ref = None if ref is None else np.array(ref, dtype=float)
            if ref is not None and not bool(settings.get("use_rotation", True)):
                ref[3] = np.nan    # learned without rotation data: fit theta here
            source = "law" if ref is not None else "fit"
        elif isinstance(reference, str):
            if reference != "fit":
                raise ValueError(f"reference must be None, 'fit' or 4 numbers, got {reference!r}")
            ref, source = None, "fit"
        else:
            ref, source = reference, "given"
        sigma = float(info.get("resolution_sigma_px", 0.0) or 0.0)
        if mask is not None:
            mask = np.asarray(mask)
        d = decompose(strain, X, pixel, law.evaluate, stiffness, crystal_angle=crystal_angle,
                      mask=mask, reference=ref, resolution_sigma_px=sigma, boundary=boundary,
                      show_progressbar=show_progressbar)
        title = self.metadata.General.title

        def wrap(arr, part):
            s = image_like(self, arr, self._eager_class, title=f"{part} strain ({title})",
                           components=COMPONENTS)
            record(s, "decomposition", part=part, law=law.metadata.General.title)
            return s

        stress = image_like(self, d.stress, title=f"coherency stress ({title})",
                            components=STRESS_COMPONENTS)
        stress.metadata.Signal.quantity = "stress (GPa)"
        mat_record = material if isinstance(material, str) else (
            list(material) if _canonical_material(material) is not None else "user stiffness")
        settings_out = dict(material=mat_record, plane=plane, crystal_angle=crystal_angle,
                            reference_source=source if d.reference_source == "given"
                            else d.reference_source, resolution_sigma_px=sigma,
                            override=bool(override))
        result = DecompositionResult(
            measured=self, chemical=wrap(d.chemical, "chemical"),
            coherency=wrap(d.coherency, "coherency"), residual=wrap(d.residual, "residual"),
            reference=d.reference, stress=stress, mask=d.mask,
            residual_matched=None if d.residual_matched is None
            else wrap(d.residual_matched, "residual at the composition resolution"),
            settings=settings_out)
        for s in (result.chemical, result.coherency, result.residual, result.stress):
            record(s, "decomposition", reference=d.reference, **{k: v for k, v in
                                                                 settings_out.items()
                                                                 if k != "reference_source"})
        return result

    # -- dislocations -----------------------------------------------------------
    def _strain_nm(self, keep_lazy=False):
        """(strain array, (dy, dx) nm, (y0, x0) nm); a dask array if lazy and ``keep_lazy``."""
        from ..fields import require_real

        self.validate()
        ny, nx = self.axes_manager.signal_shape[::-1]
        if min(ny, nx) < MIN_MAP_SIDE:
            raise ValueError(f"the strain map is {ny} x {nx} px: derivatives need at least "
                             f"{MIN_MAP_SIDE} x {MIN_MAP_SIDE}")
        if keep_lazy and self._lazy:
            data = self.data
        else:
            data = np.asarray(require_real(self.data, "strain field"), dtype=float)
            if not np.isfinite(data).all(axis=0).any():
                raise ValueError("the strain map has no pixel where all four components are "
                                 "finite (all NaN)")
        return data, pixel_size_nm(self), offset_nm(self)

    @staticmethod
    def _local_map(func, data, n_out, halo):
        """Apply a local (finite-support) map function, chunk by chunk if ``data`` is dask.

        ``func`` takes a (4, ny, nx) block and returns (n_out, ny, nx); ``halo`` (px) is
        its support, so overlapping the chunks by it gives the same result as one call.
        """
        if isinstance(data, np.ndarray):
            return func(data)
        import dask.array as da

        arr = data.astype(float).rechunk({0: -1})
        return da.map_overlap(func, arr, depth={0: 0, 1: halo, 2: halo}, boundary="none",
                              dtype=float, chunks=((n_out,),) + arr.chunks[1:])

    def _smoothing_px(self, smoothing, pixel):
        if smoothing is None:
            return 0.0
        try:
            s = float(smoothing)
        except (TypeError, ValueError):
            s = np.nan
        if not np.isfinite(s) or s < 0:
            raise ValueError(f"smoothing must be a length >= 0 in the axes' units, got {smoothing!r}")
        return s * unit_nm(self) / float(np.mean(pixel))

    def dislocation_density(self, burgers=None, smoothing=None):
        """Nye-tensor map of edge dislocations with lines along the beam.

        The Nye components are the curl of the distortion (strain + rotation),
        ``alpha_x = d(e12 - theta)/dx - d(e11)/dy``, ``alpha_y = d(e22)/dx -
        d(e12 + theta)/dy``: the Burgers vector per unit area. Integrated over an
        area it gives the net Burgers vector of the dislocations inside (sign: a
        counter-clockwise circuit in the x, y axes). Meant for the residual of
        :meth:`decompose`; any compatible field gives zero.

        Parameters
        ----------
        burgers : float, optional
            Burgers vector length (nm). Given, the maps are divided by it and expressed
            as dislocation densities in m^-2; otherwise Burgers content per area, nm^-1.
        smoothing : float, optional
            Gaussian sigma in the axes' units (e.g. nm), to tame noise.

        Returns
        -------
        hyperspy.signals.Signal2D
            (3 | y, x): alpha_x, alpha_y and the magnitude ``|alpha|``; lazy (computed
            chunk by chunk with overlapping borders) when this signal is lazy.
        """
        from ..decomposition import nye_tensor
        from ._decomposition_result import image_like

        e, pixel, _ = self._strain_nm(keep_lazy=True)
        sigma = self._smoothing_px(smoothing, pixel)

        def nye(block):
            alpha = nye_tensor(block, pixel, sigma=sigma)
            return np.concatenate([alpha, np.hypot(alpha[0], alpha[1])[None]])

        data = self._local_map(nye, e, 3, 2 + int(np.ceil(4 * sigma)))
        if burgers is None:
            units = "nm^-1 (Burgers content per area, nm/nm^2)"
        else:
            b = float(burgers)
            if not np.isfinite(b) or b <= 0:
                raise ValueError(f"burgers must be a positive length (nm), got {burgers!r}")
            data = data / b * 1e18     # nm^-2 -> m^-2
            units = f"m^-2 (dislocations with |b| = {b:g} nm)"
        out = image_like(self, data, title=f"Nye tensor ({self.metadata.General.title})",
                         components=("alpha_x", "alpha_y", "|alpha|"))
        out.metadata.Signal.quantity = units
        record(out, "dislocation_density", burgers=burgers, smoothing=smoothing, units=units)
        return out

    def check_conventions(self, smoothing=None, tolerance=1.1):
        """Is this map compatible as given, or under another sign/shear convention?

        Needs no composition: the distortion of a defect-poor particle is the
        gradient of a displacement, so its Nye tensor is ~0; a map exported with
        another convention (rotation sign, engineering shear, y up, x and y
        swapped) is visibly incompatible. Use it on every imported map
        (:func:`~hyperspy_chemomech.decomposition.convention_check`).

        Parameters
        ----------
        smoothing : float, optional
            Gaussian sigma in the axes' units against noise (default 3 pixels).
        tolerance : float
            Flag the map when a correction is this many times more compatible
            (>= 1).

        Returns
        -------
        dict
            ``index`` per correction, ``best``, ``ok``, ``message`` and
            ``settings`` (smoothing, tolerance).

        Examples
        --------
        >>> from hyperspy_chemomech.simulate.particle import make_particle
        >>> strain = make_particle(shape=(60, 100), noise=1e-4).strain_field()
        >>> strain.check_conventions()["ok"]
        True
        """
        from ..decomposition import convention_check

        tol = _check_number("tolerance", tolerance, low=1.0, allow_none=False)
        e, pixel, _ = self._strain_nm()
        sigma = 3.0 if smoothing is None else self._smoothing_px(smoothing, pixel)
        out = convention_check(e, pixel, sigma=sigma, tolerance=tol)
        out["settings"] = {"smoothing": smoothing, "smoothing_px": float(sigma),
                           "tolerance": tol}
        return out

    def incompatibility(self, smoothing=None):
        """2D strain incompatibility ``eta = d_yy e11 + d_xx e22 - 2 d_xy e12`` (nm^-2).

        Needs no rotation data; zero for a compatible field, a dipole at each edge
        dislocation (``int y eta dA = b_x``, ``int x eta dA = -b_y``).

        Parameters
        ----------
        smoothing : float, optional
            Gaussian sigma in the axes' units, applied to the strain first.

        Returns
        -------
        hyperspy.signals.Signal2D
            Lazy when this signal is lazy.
        """
        from ..decomposition import incompatibility
        from ._decomposition_result import image_like

        e, pixel, _ = self._strain_nm(keep_lazy=True)
        sigma = self._smoothing_px(smoothing, pixel)
        eta = self._local_map(lambda block: incompatibility(block, pixel, sigma=sigma)[None], e, 1,
                              3 + int(np.ceil(4 * sigma)))[0]
        out = image_like(self, eta, title=f"incompatibility ({self.metadata.General.title})")
        out.metadata.Signal.quantity = "incompatibility (nm^-2)"
        record(out, "incompatibility", smoothing=smoothing)
        return out

    def find_dislocations(self, threshold=None, smoothing=None, min_burgers=None,
                          false_alarms=0.05, radius=None, exclude_border=2,
                          material="LixFePO4", crystal_angle=None, lattice_tolerance=0.15):
        """Locate edge dislocations and measure their Burgers vectors.

        Peaks of the smoothed Nye magnitude above a noise-based threshold; each core's
        Burgers vector is the Nye content integrated around it (a circuit integral,
        independent of the smoothing). See
        :func:`hyperspy_chemomech.decomposition.find_dislocations`.

        Parameters
        ----------
        threshold : float, optional
            On the smoothed Nye magnitude (nm^-1); default from the noise level.
        smoothing : float, optional
            Gaussian sigma in the axes' units; default one pixel.
        min_burgers : float, optional
            Smallest reported ``|b|`` (nm); default from the noise of the integrated content.
        false_alarms : float
            Expected false detections from noise for the default thresholds.
        radius : float, optional
            Integration radius in the axes' units; default max(4, 3 sigma + 2) pixels.
        exclude_border : int
            Pixels next to the particle edge where no core is reported.
        material : str, Material, pair of those, or None
            Whose lattice the Burgers vectors must be translations of (beam along
            [010]: a along [100], c along [001]; ``"LixFePO4"``, the default, either
            end member's). A core whose content is no lattice translation within
            its uncertainty is noise, not a dislocation. None: no lattice test.
        crystal_angle : float, optional
            Angle (rad) from +x to [100]; with it the direction of b is tested too.
        lattice_tolerance : float
            Relative allowance on a lattice translation's length.

        Returns
        -------
        DislocationTable
            Structured array with fields ``x``, ``y`` (nm, calibrated, offsets
            included), ``b_x``, ``b_y`` (nm, image frame) and ``snr``; its
            ``settings`` dict holds the arguments the search ran with.
        """
        from ..decomposition import find_dislocations
        from ..mechanics import in_plane_lattice

        threshold = _check_number("threshold", threshold, low=0.0, strict=True)
        min_burgers = _check_number("min_burgers", min_burgers, low=0.0)
        false_alarms = _check_number("false_alarms", false_alarms, low=0.0, strict=True,
                                     allow_none=False)
        exclude_border = int(_check_number("exclude_border", exclude_border, low=0.0,
                                           allow_none=False, integer=True))
        radius = _check_number("radius", radius, low=0.0, strict=True)
        e, pixel, offset = self._strain_nm()
        sigma = 1.0 if smoothing is None else self._smoothing_px(smoothing, pixel)
        rad = None if radius is None else self._smoothing_px(radius, pixel)
        lattice = None if material is None else in_plane_lattice(material)
        found = find_dislocations(e, pixel, sigma=sigma, threshold=threshold,
                                  min_burgers=min_burgers, false_alarms=false_alarms,
                                  radius=rad, exclude_border=exclude_border, offset=offset,
                                  lattice=lattice, crystal_angle=crystal_angle,
                                  lattice_tolerance=lattice_tolerance)
        from .._utils import package_version

        return DislocationTable(found, settings={
            "threshold": threshold, "smoothing": smoothing, "smoothing_px": float(sigma),
            "min_burgers": min_burgers, "false_alarms": false_alarms, "radius": radius,
            "radius_px": rad, "exclude_border": exclude_border, "material": material,
            "crystal_angle": crystal_angle, "lattice_tolerance": lattice_tolerance,
            "version": package_version()})

    def dislocation_markers(self, dislocations=None, arrow_length=None, color="k"):
        """HyperSpy markers of dislocation cores and their Burgers vectors.

        Parameters
        ----------
        dislocations : numpy.ndarray, optional
            From :meth:`find_dislocations` (found here when not given).
        arrow_length : float, optional
            Drawn length (axes' units) of a Burgers vector of the median ``|b|``;
            default 4 pixels.
        color : str

        Returns
        -------
        list of hyperspy markers
            A ``Points`` marker at each core and an ``Arrows`` marker along b;
            ``signal.add_marker(markers)`` or ``signal.plot(); signal.add_marker(...)``.

        Examples
        --------
        >>> found = parts.residual.find_dislocations()              # doctest: +SKIP
        >>> parts.residual.plot(style="hyperspy")                    # doctest: +SKIP
        >>> parts.residual.add_marker(parts.residual.dislocation_markers(found))  # doctest: +SKIP
        """
        import hyperspy.api as hs

        if dislocations is None:
            dislocations = self.find_dislocations()
        d = np.asarray(dislocations)
        if d.dtype.names is None or not {"x", "y", "b_x", "b_y"} <= set(d.dtype.names):
            raise TypeError("dislocations must be the structured array of find_dislocations")
        f = unit_nm(self)
        xy = np.column_stack([d["x"], d["y"]]) / f
        b = np.column_stack([d["b_x"], d["b_y"]])
        bn = np.hypot(b[:, 0], b[:, 1])
        if arrow_length is None:
            arrow_length = 4 * spatial_axes(self)[1].scale
        scale = arrow_length / np.median(bn) if bn.size and np.median(bn) > 0 else 1.0
        points = hs.plot.markers.Points(offsets=xy, sizes=8, color=color, facecolors="none")
        arrows = hs.plot.markers.Arrows(offsets=xy, U=b[:, 0] * scale, V=b[:, 1] * scale,
                                        color=color)
        return [points, arrows]

    def plot_dislocations(self, dislocations=None, smoothing=None, arrow_length=None,
                          figsize=None, ax=None):
        """Nye magnitude ``|alpha|`` with the dislocation cores and Burgers vectors drawn.

        Parameters
        ----------
        dislocations : numpy.ndarray, optional
            From :meth:`find_dislocations` (found here when not given).
        smoothing : float, optional
            Gaussian sigma (axes' units, e.g. nm) of the Nye map shown.
        arrow_length : float, optional
            Drawn length (axes' units) of a Burgers vector of the median ``|b|``;
            default 12 pixels (the true ``|b|`` in nm is written next to each core).
        figsize : (float, float), optional
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.figure.Figure
            Axes in the calibrated units with a scale bar; colour bar in nm^-1.
        """
        from ._plotting import plot_dislocations

        return plot_dislocations(self, dislocations=dislocations, smoothing=smoothing,
                                 arrow_length=arrow_length, figsize=figsize, ax=ax)
