"""XrayAbsorptionSpectrum: STXM / spectro-ptychography stacks (y, x | energy).

The class validates, delegates to :mod:`hyperspy_chemomech.spectra` and wraps the
results; provenance goes to ``metadata.Chemomech``:

- ``optical_density``: ``i0`` (spectrum used), ``i0_source``, ``n_background_pixels``,
  ``background_mask`` (auto / mask), ``counts`` (whether Poisson statistics apply);
- ``align_energies``: ``shifts`` (n_energies, 2) drift (dy, dx) px of each frame, and
  the parameters.
"""

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal1d import Signal1D

from .._metadata import is_recorded, record, recorded, step_record
from ..fields import require_real
from ._operations import CarriedArraysMixin

OD_STEP = "optical_density"


def energy_axis_dict(energies, name="Energy"):
    """HyperSpy axis dictionary for an energy axis (uniform when evenly spaced)."""
    e = np.asarray(energies, dtype=float)
    d = np.diff(e)
    if e.size > 1 and np.allclose(d, d[0], rtol=1e-9, atol=0):
        return {"size": e.size, "offset": float(e[0]), "scale": float(d[0]),
                "units": "eV", "name": name, "navigate": False}
    return {"axis": e, "units": "eV", "name": name, "navigate": False}


def make_stack(data, energies, pixel_size=1.0, units="nm", title="", quantity=None):
    """Wrap a (ny, nx, n_energies) array as an XrayAbsorptionSpectrum.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array, shape (ny, nx, n_energies)
    energies : array_like
        Photon energies (eV).
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in ``units``.
    units : str
        Length unit of the image axes.
    """
    from ..spectra import check_energies

    e = check_energies(energies)
    require_real(data, "data")
    if data.ndim != 3 or data.shape[-1] != e.size:
        raise ValueError(
            f"data of shape {data.shape} do not match (ny, nx, {e.size} energies)"
        )
    dy, dx = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,))
    if not (dy > 0 and dx > 0):
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    axes = [
        {"size": data.shape[0], "scale": float(dy), "units": units, "name": "y", "navigate": True},
        {"size": data.shape[1], "scale": float(dx), "units": units, "name": "x", "navigate": True},
        energy_axis_dict(e),
    ]
    cls = LazyXrayAbsorptionSpectrum if hasattr(data, "dask") else XrayAbsorptionSpectrum
    s = cls(data, axes=axes)
    s.metadata.General.title = title
    if quantity:
        s.metadata.Signal.quantity = quantity
    return s


class XrayAbsorptionSpectrum(CarriedArraysMixin, Signal1D):
    """X-ray absorption spectrum image, signal axis = photon energy in eV.

    Data layout ``(y, x | energy)``: transmitted intensity (counts) or, after
    :meth:`to_optical_density`, optical density (dimensionless). Non-uniform energy
    axes (fine steps across the edge) are supported throughout.
    """

    _signal_type = "xray_absorption"
    _alias_signal_types = ["XAS", "STXM"]
    _signal_dimension = 1

    # counts add up in a bin (HyperSpy's rebin); optical density is intensive (the mean)
    def _is_intensive(self):
        return self.is_optical_density

    def _carried_arrays(self):
        # energy-dependent items follow isig / crop along the energy axis (2), the
        # background mask along the image axes (0, 1); rebin drops them with a note
        return [(f"Chemomech.{OD_STEP}.i0", (2,), "drop"),
                (f"Chemomech.{OD_STEP}.i0_energies", (2,), "drop"),
                (f"Chemomech.{OD_STEP}.background_mask", (0, 1), "drop"),
                ("Chemomech.align_energies.shifts", (2, None), "drop")]

    # ----------------------------------------------------------------- checks
    @property
    def energies(self):
        """Photon energies (eV) of the frames, validated (strictly increasing, eV)."""
        from ..spectra import check_energies

        ax = self.axes_manager.signal_axes[0]
        return check_energies(ax.axis, ax.units)

    def _image_shape(self, what):
        nav = self.axes_manager.navigation_shape[::-1]
        if len(nav) != 2:
            raise ValueError(
                f"{what} needs an image stack with 2 navigation axes (y, x), got "
                f"navigation shape {nav}"
            )
        return nav

    @property
    def is_optical_density(self):
        """True when the data are optical density (converted here, or declared so)."""
        if is_recorded(self, OD_STEP):
            return True
        q = str(self.metadata.get_item("Signal.quantity", ""))
        return "optical density" in q.lower()

    # ------------------------------------------------------------------ display
    def plot(self, navigator="auto", **kwargs):
        """HyperSpy's spectrum-image view: the spectrum at one pixel, an image navigator.

        The navigator is the mean over the energies of each pixel (NaN-safe, where
        HyperSpy's default sum would be NaN for pixels with a missing frame); the
        spectrum's y label is the quantity (counts or optical density), x the
        energy in eV.

        Parameters
        ----------
        navigator : "auto" or as HyperSpy's ``plot``
        **kwargs
            HyperSpy's ``Signal1D.plot`` keywords.

        Returns
        -------
        matplotlib.figure.Figure
            The spectrum's figure (``signal._plot.signal_plot.figure``).
        """
        from ._plotting import hyperspy_plot

        quantity = "Optical density" if self.is_optical_density else \
            "Transmitted intensity (counts)"
        kwargs.pop("scalebar_color", None)
        if self.axes_manager.navigation_dimension == 2 and not self._lazy and \
                tuple(self.axes_manager.indices) == (0, 0):
            # start on the most absorbing pixel (in the particle), not on the corner
            mean = np.nanmean(np.asarray(self.data, dtype=float), axis=-1)
            if np.isfinite(mean).any():
                pick = np.nanargmax(mean) if self.is_optical_density else np.nanargmin(mean)
                iy, ix = np.unravel_index(pick, mean.shape)
                self.axes_manager.indices = (int(ix), int(iy))
        return hyperspy_plot(self, Signal1D.plot, navigator=navigator, quantity=quantity,
                             spectrum=True, **kwargs)

    # ------------------------------------------------------- optical density
    def to_optical_density(self, i0="auto", margin=5):
        """Optical density ``OD = -ln(I / I0)`` as a new signal.

        Parameters
        ----------
        i0 : "auto", float, array_like, Signal1D or boolean mask
            Incident intensity, same units as the data:

            - ``"auto"``: the mean, per energy, of the particle-free pixels: the
              bright class (Otsu threshold) of the energy-averaged image, keeping only
              pixels farther than ``margin`` px from any absorbing pixel; the pixels
              used are stored in the metadata;
            - a number: the same I0 at every energy (counts);
            - a spectrum: 1D array or Signal1D with one value per energy (counts);
            - a boolean (ny, nx) array or Signal2D: True marks empty pixels to average.
        margin : int
            Distance (px) the automatic background keeps from the particle, so that
            drift does not bring the particle into it.

        Returns
        -------
        XrayAbsorptionSpectrum
            OD (dimensionless); ``metadata.Chemomech.optical_density`` holds ``i0``
            (n_energies,), ``i0_source`` and, for "auto" or a mask, the
            ``background_mask`` and ``n_background_pixels``.

        Raises
        ------
        ValueError
            Non-eV or non-increasing energy axis, NaN / zero / negative intensities,
            I0 <= 0, shape mismatches, or data that already are OD.
        """
        from ..spectra import background_mask, check_intensities, optical_density

        energies = self.energies
        require_real(self.data, "the stack")
        if self.is_optical_density:
            raise ValueError("the data already are optical density")
        ne = energies.size
        data = self.data
        lazy = hasattr(data, "dask")
        bg, checked = None, False
        if isinstance(i0, str):
            if i0 != "auto":
                raise ValueError(f"unknown i0 {i0!r}; use 'auto', a number, a spectrum or a mask")
            check_intensities(data)
            checked = True
            self._image_shape("i0='auto'")
            img = data.mean(axis=-1)
            bg = background_mask(np.asarray(img.compute() if lazy else img), margin=margin)
            source = "auto"
        elif isinstance(i0, (bool, np.bool_)):
            raise TypeError("i0 must be 'auto', a number, a spectrum or a boolean mask")
        elif np.ndim(getattr(i0, "data", i0)) == 0:
            value = float(getattr(i0, "data", i0))
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"I0 must be a finite number > 0, got {value}")
            i0_spec, source = np.full(ne, value), "number"
        else:
            arr = np.asarray(getattr(i0, "data", i0))
            if arr.dtype == bool:
                shape = self._image_shape("an i0 mask")
                if arr.shape != tuple(shape):
                    raise ValueError(
                        f"i0 mask shape {arr.shape} does not match the image shape {shape}"
                    )
                if arr.sum() < 1:
                    raise ValueError("the i0 mask selects no pixels")
                bg, source = arr.copy(), "mask"
            else:
                if arr.ndim != 1 or arr.size != ne:
                    raise ValueError(
                        f"an I0 spectrum needs one value per energy ({ne}), got shape {arr.shape}"
                    )
                if hasattr(i0, "axes_manager"):
                    ax = i0.axes_manager.signal_axes[0]
                    if not np.allclose(ax.axis, energies, atol=1e-6):
                        raise ValueError("the I0 spectrum's energy axis differs from the data's")
                i0_spec, source = arr.astype(float), "spectrum"
        if bg is not None:
            if lazy:
                sums = (data * bg[..., None]).sum(axis=(0, 1)).compute()
                i0_spec = np.asarray(sums, dtype=float) / int(bg.sum())
            else:
                i0_spec = np.asarray(data[bg], dtype=float).mean(axis=0)
        od_data = optical_density(data, i0_spec, check=not checked)
        od = self._deepcopy_with_new_data(od_data)
        od.metadata.Signal.quantity = "Optical density"
        od.metadata.General.title = (self.metadata.General.title or "stack") + " (OD)"
        counts = self.metadata.get_item("Chemomech.source.counts", True)
        record(od, OD_STEP, i0=i0_spec, i0_energies=np.asarray(energies, dtype=float),
               i0_source=source, counts=bool(counts))
        if bg is not None:
            record(od, OD_STEP, background_mask=bg, n_background_pixels=int(bg.sum()))
        return od

    # ----------------------------------------------------- energy alignment
    def align_energies(self, reference="mean", upsample=20, sigma=1.0, order=3,
                       n_iter=2, smooth=0.0, features="edges", references=None,
                       show_progressbar=None):
        """Correct the drift between energy frames, in place.

        Each frame is registered (phase correlation, upsampled to ``1/upsample`` px)
        on its edge-magnitude image (or the edge of the particle's saturated outline,
        ``features="outline"``), which keeps the particle outline at every energy and
        does not flip with the contrast inversions across the edge, against one
        common reference (no chaining of errors). See
        :func:`hyperspy_chemomech.spectra.estimate_energy_drift`.

        Parameters
        ----------
        reference : {"mean"}, int or array_like
            ``"mean"`` (the mean over energies, rebuilt after a first alignment),
            a frame index, or a (ny, nx) image.
        upsample : int
            Sub-pixel resolution 1/upsample px.
        sigma : float
            Smoothing (px) of the edge images.
        order : int
            Spline order used to shift the frames (scipy.ndimage.shift).
        n_iter : int
            Passes for ``reference="mean"``.
        smooth : float
            Smoothing of the drift along the scan (Gaussian sigma in frames; stage
            drift is smooth in time, single-frame estimates are not); 0 (default)
            disables it.
        features : {"edges", "outline"}
            Register the frames' gradient magnitude (default) or the edge of the
            particle's saturated outline (blind to phase boundaries; better for
            particles with domains). See
            :func:`hyperspy_chemomech.spectra.estimate_energy_drift`.
        references : list of Signal1D, optional
            The end-member spectra (as for :meth:`get_composition_map`). Given, the
            drift is refined against the unmixing model's prediction of every frame
            (contrast inversions included): drift and end-member
            maps are fitted jointly, which brings the error of the image-based
            estimate (~0.1-0.2 px) down to the noise floor (~0.01 px rms; see
            :func:`hyperspy_chemomech.spectra.refine_drift_with_model`), stopping once
            a Gauss-Newton step moves no frame by more than
            ``spectra.ALIGN_REFINE_TOL`` (0.1 px; usually after one step). Needs an
            optical-density stack.
        show_progressbar : bool, optional

        Returns
        -------
        numpy.ndarray, shape (n_energies, 2)
            Drift (dy, dx) in px of each frame, also stored in
            ``metadata.Chemomech.align_energies.shifts``.

        Notes
        -----
        The signal is modified in place (as HyperSpy's ``align2D``); its data array is
        replaced, not overwritten. Pixels whose content moved in from outside the
        frame become NaN ("no data"); they lie at the border and give NaN in the
        composition map.
        """
        from ..spectra import apply_energy_drift, check_alignment_options, estimate_energy_drift

        self.energies  # validates the axis
        self._image_shape("align_energies")
        require_real(self.data, "the stack")
        check_alignment_options(upsample=upsample, sigma=sigma, n_iter=n_iter, smooth=smooth,
                                order=order)
        if isinstance(reference, str) or np.ndim(reference) == 0:
            ref = reference
        else:
            ref = np.asarray(getattr(reference, "data", reference), dtype=float)
        shifts = estimate_energy_drift(self.data, ref, upsample, sigma, n_iter,
                                       show_progressbar, smooth=smooth, features=features)
        shift_stack = None
        if references is not None:
            from ..spectra import (
                ALIGN_REFINE_TOL,
                interpolate_references,
                refine_drift_with_model,
            )

            if not self.is_optical_density:
                raise ValueError("align_energies(references=...) needs an optical-density "
                                 "stack: call to_optical_density() first")
            design = interpolate_references(
                [(r.axes_manager[-1].axis, np.asarray(r.data, dtype=float)) for r in references],
                self.energies)
            shifts, shift_stack = refine_drift_with_model(
                np.asarray(self.data), shifts, design, order=order, tol=ALIGN_REFINE_TOL,
                show_progressbar=show_progressbar, return_shifter=True)
            if np.ndim(ref) == 0 and not isinstance(ref, str):
                shifts = shifts - shifts[int(ref)]
        if shift_stack is not None and not self._lazy:
            # the refinement's shifter keeps the prefiltered stack: no second prefilter
            self.data = shift_stack(shifts)
        else:
            self.data = apply_energy_drift(self.data, shifts, order)
        if isinstance(ref, str):
            ref_note = ref
        else:
            ref_note = int(ref) if np.ndim(ref) == 0 else "image"
        record(self, "align_energies", shifts=shifts, reference=ref_note,
               upsample=int(upsample), sigma=float(sigma), order=int(order),
               smooth=float(smooth), features=features,
               model_refined=references is not None)
        self.events.data_changed.trigger(obj=self)
        return shifts

    # -------------------------------------------------------- composition map
    def get_composition_map(self, references, method="nnls", energy_shift=None,
                            max_shift=1.0, mask="auto", threshold=None, noise="auto",
                            show_progressbar=None):
        """Per-pixel unmixing into end members: the lithiated fraction X.

        Solves ``OD(E) = sum_k t_k ref_k(E)`` per pixel (all pixels at once, see
        :mod:`hyperspy_chemomech.spectra`) and returns ``X = t_last / sum_k t_k``.

        Parameters
        ----------
        references : list of Signal1D, or list of boolean masks
            End members ordered delithiated -> lithiated (X is the fraction of the
            last). Signal1D references lie on their own energy axes (eV) and are
            interpolated onto the data's; they must cover its range. Boolean (ny, nx)
            masks (arrays or Signal2D) select end-member regions of the data: their
            mean OD spectra are used, each normalised to a unit edge jump (OD of the
            last three minus the first three energies), so that the coefficients count
            Fe atoms alike.
        method : {"nnls", "lstsq"}
            Non-negative (X within [0, 1]) or unconstrained least squares (X may leave
            [0, 1] through noise).
        energy_shift : None, float or "fit"
            Shift (eV) of the references' energy scale: a feature at ``E0`` is moved to
            ``E0 + energy_shift``. ``"fit"`` finds the one shift (within
            +-``max_shift``) that best explains the whole stack (beamline calibrations
            differ by tenths of an eV). Only for Signal1D references.
        max_shift : float
            Search range (eV) of ``energy_shift="fit"``.
        mask : "auto", None or boolean (ny, nx) array / Signal2D
            The particle. ``"auto"``/``None``: thickness (sum of coefficients) above
            ``threshold``, by default the lower of Otsu's threshold and a quarter of
            the particle's median thickness, never below the background noise (see
            :func:`hyperspy_chemomech.spectra.particle_mask`), which keeps the thin rim.
        threshold : float, optional
            Thickness threshold (reference units) for the automatic mask.
        noise : {"auto", "poisson", "residual"}
            Error model for the uncertainty of X. ``"poisson"``: counting statistics,
            ``var(OD) = exp(OD) / I0`` at the fitted model ``OD = A t`` (needs the
            I0 recorded by :meth:`to_optical_density` on count data); ``"residual"``: per-pixel
            variance from the fit residual; ``"auto"``: Poisson when possible.
        show_progressbar : bool, optional

        Returns
        -------
        CompositionMap
            X (NaN outside the particle), with ``thickness``, ``uncertainty`` (1 sigma
            of X), ``residual`` (RMS OD misfit), ``coefficients`` and the mask carried
            along (see :class:`~hyperspy_chemomech.signals.CompositionMap`).
        """
        from ..spectra import composition_from_rows, unmix_particle
        from .composition_map import composition_map_arrays, composition_map_container

        energies = self.energies
        ny, nx = self._image_shape("get_composition_map")
        require_real(self.data, "the stack")
        if not self.is_optical_density:
            raise ValueError(
                "get_composition_map needs optical density: call to_optical_density() "
                "first (or set metadata.Signal.quantity = 'Optical density' if the data "
                "already are OD)"
            )
        if method not in ("nnls", "lstsq"):
            raise ValueError(f"unknown method {method!r}; use 'nnls' or 'lstsq'")
        auto_mask = mask is None or (isinstance(mask, str) and mask == "auto")
        if not auto_mask:
            if isinstance(mask, str):
                raise ValueError(f"unknown mask {mask!r}; use 'auto' or a boolean array")
            given = np.asarray(getattr(mask, "data", mask))
            if given.dtype != bool:
                raise TypeError(f"mask must be boolean, got dtype {given.dtype}")
            if given.shape != (ny, nx):
                raise ValueError(f"mask shape {given.shape} does not match the image {(ny, nx)}")
            if not given.any():
                raise ValueError("mask selects no pixel: the composition map would be all NaN")
        A, ref_info = self._reference_matrix(references, energies, energy_shift,
                                             max_shift, (ny, nx))
        od_step = recorded(self, OD_STEP) or {}
        variance, noise_used = self._variance_model(noise, od_step)
        mask_source = "auto" if auto_mask else "given"
        K = A.shape[1]
        # how the errors of X were made, so that they can be made again (see
        # learn_eigenstrain): the Poisson I0 and the frames' drift correction, whose
        # interpolation correlates the noise of neighbouring pixels
        made = {}
        if noise_used == "poisson":
            made["noise_i0"] = np.broadcast_to(np.asarray(od_step["i0"], float),
                                               (len(energies),)).copy()
            n_bg = od_step.get("n_background_pixels")
            if n_bg is not None:  # I0 estimated as a mean of empty pixels: its error
                made["noise_n_background"] = int(n_bg)
        drift = recorded(self, "align_energies") or {}
        if "shifts" in drift:
            made.update(drift_shifts=np.asarray(drift["shifts"], float),
                        drift_order=int(drift.get("order", 3)),
                        drift_model_refined=bool(drift.get("model_refined", False)),
                        drift_reference=drift.get("reference", "mean"))
        steps = {"composition_map": step_record(
            method=method, noise=noise_used, **made, mask_source=mask_source,
            threshold=None,  # set below: the engine validates it (or finds it)
            energies=energies, reference_spectra=A.T.copy(), **ref_info)}
        arrays = composition_map_arrays((ny, nx), K)
        n = ny * nx
        built = []

        def build():  # while the stack is read (see composition_map_container)
            built.append(composition_map_container(
                self.axes_manager.navigation_axes, arrays,
                title=(self.metadata.General.title or "stack") + " composition", steps=steps))

        # the engine writes into the map's own arrays: (K, n) rows as views of them
        t, rms, tri, pmask, threshold = unmix_particle(
            self.data, A, method, variance=variance, mask=None if auto_mask else given,
            threshold=threshold, show_progressbar=show_progressbar, meanwhile=build,
            out={"t": arrays["coefficients"].reshape(n, K).T,
                 "rms": arrays["residual"].reshape(n),
                 "thickness": arrays["thickness"].reshape(n), "mask": arrays["mask"],
                 # Cov(t) per pixel, upper triangle: lets the errors of X be redrawn
                 # through the unmixing (nonlinear: the ratio and the NNLS bounds)
                 "tri": arrays["coefficient_covariance"].reshape(n, -1).T})
        # X and its error where they are shown: the particle (NaN elsewhere)
        composition_from_rows(t, tri, mask=pmask, total=arrays["thickness"].reshape(n),
                              out=(arrays["X"].reshape(n), arrays["uncertainty"].reshape(n)))
        out = built[0]
        if threshold is not None:
            out.metadata.Chemomech.composition_map.threshold = float(threshold)
        return out

    def _reference_matrix(self, references, energies, energy_shift, max_shift, shape):
        """(n_energies, K) reference matrix and its provenance."""
        from ..spectra import (
            check_energies,
            check_reference_spectra,
            data_gram,
            fit_energy_shift,
            interpolate_references,
            region_reference,
        )

        if not isinstance(references, (list, tuple)) or len(references) < 2:
            raise ValueError("give at least two references (a list), delithiated -> lithiated")
        is_sig = [hasattr(r, "axes_manager") and r.axes_manager.signal_dimension == 1
                  for r in references]
        if all(is_sig):
            pairs, names = [], []
            for k, r in enumerate(references):
                if r.axes_manager.navigation_size > 1:
                    raise ValueError(f"reference {k} must be a single spectrum")
                ax = r.axes_manager.signal_axes[0]
                try:
                    e_k = check_energies(ax.axis, ax.units)
                except ValueError as err:
                    raise ValueError(f"reference {k}: {err}") from None
                vals = np.asarray(require_real(r.data, f"reference {k}"), dtype=float).reshape(-1)
                pairs.append((e_k, vals))
                names.append(str(r.metadata.General.title or f"reference {k}"))
            check_reference_spectra(pairs, [f"reference {k} ({n})" for k, n in enumerate(names)])
            if isinstance(energy_shift, str):
                if energy_shift != "fit":
                    raise ValueError(f"energy_shift must be a number, None or 'fit', got {energy_shift!r}")
                try:
                    ms = float(max_shift)
                except (TypeError, ValueError):
                    ms = np.nan
                if not (np.isfinite(ms) and ms > 0):
                    raise ValueError(f"max_shift must be a positive number of eV, got {max_shift!r}")
                shift = fit_energy_shift(data_gram(self.data), pairs, energies, ms)
                shift_source = "fit"
            else:
                try:
                    shift = 0.0 if energy_shift is None else float(energy_shift)
                except (TypeError, ValueError):
                    shift = np.nan
                if not np.isfinite(shift):
                    raise ValueError(f"energy_shift must be a finite number of eV, None or 'fit', "
                                     f"got {energy_shift!r}")
                shift_source = "given"
            A = interpolate_references(pairs, energies, shift)
            return A, {"reference_names": names, "energy_shift": shift,
                       "energy_shift_source": shift_source, "reference_source": "spectra"}
        if any(is_sig):
            raise ValueError("references must be all spectra (Signal1D) or all masks")
        if energy_shift is not None:
            raise ValueError("energy_shift applies to Signal1D references, not to masks")
        cols = []
        for k, m in enumerate(references):
            m = np.asarray(getattr(m, "data", m))
            if m.dtype != bool:
                raise TypeError(
                    f"reference {k} must be a Signal1D spectrum or a boolean mask, got dtype {m.dtype}"
                )
            if m.shape != shape:
                raise ValueError(f"reference mask {k} has shape {m.shape}, the image {shape}")
            try:
                cols.append(region_reference(self.data, m))
            except ValueError as err:
                raise ValueError(f"reference mask {k}: {err}") from None
        return np.stack(cols, axis=1), {"reference_names": [f"mask {k}" for k in range(len(cols))],
                                        "energy_shift": 0.0, "energy_shift_source": "none",
                                        "reference_source": "masks"}

    def _variance_model(self, noise, od_step=None):
        """Callable ``od_block -> variance`` (Poisson) or None (residual-based).

        ``od_step``: the optical-density step's record, if already read.
        """
        if noise not in ("auto", "poisson", "residual"):
            raise ValueError(f"unknown noise model {noise!r}; use 'auto', 'poisson' or 'residual'")
        info = (recorded(self, OD_STEP) if od_step is None else od_step) or {}
        i0 = info.get("i0")
        if i0 is not None:
            # the I0 follows the energy axis (cropped with isig / crop, or dropped if rebinned)
            i0 = np.asarray(i0, dtype=float)
            e_i0 = info.get("i0_energies")
            energies = self.energies
            if e_i0 is not None:
                e_i0 = np.asarray(e_i0, dtype=float)
                idx = np.searchsorted(e_i0, energies)
                idx = np.clip(idx, 0, e_i0.size - 1)
                i0 = i0[idx] if np.allclose(e_i0[idx], energies, rtol=0, atol=1e-6) else None
            elif i0.shape != energies.shape:
                i0 = None
        poisson_ok = i0 is not None and bool(info.get("counts", False))
        if noise == "poisson" and not poisson_ok:
            raise ValueError(
                "noise='poisson' needs count data converted with to_optical_density() "
                "(the I0 in counts is not recorded, or not on these energies, or the stack "
                "was rebinned); use noise='residual'"
            )
        if noise == "residual" or not poisson_ok:
            return None, "residual"
        from ..spectra import PoissonODVariance

        return PoissonODVariance(i0), "poisson"


class LazyXrayAbsorptionSpectrum(LazySignal, XrayAbsorptionSpectrum):
    """Lazy (dask) version of :class:`XrayAbsorptionSpectrum`."""

    _lazy = True
    rebin = CarriedArraysMixin.rebin   # OD: the mean, not LazySignal's sum
