"""CompositionMap: lithiated fraction X per pixel (| y, x).

Besides X, a map made by
:meth:`~hyperspy_chemomech.signals.XrayAbsorptionSpectrum.get_composition_map`
carries its by-products as arrays in ``metadata.Chemomech.composition_maps``
(so they survive ``.save()`` / ``hs.load()`` in hspy and zspy):

``thickness``
    sum of the unmixing coefficients (reference units, e.g. nm for attenuation
    coefficients in 1/nm, edge-jump units for mask references);
``uncertainty``
    one standard deviation of X (error propagation from the per-pixel fit);
``residual``
    RMS misfit of the fit (OD units);
``mask``
    the particle (boolean);
``coefficients``
    (y, x, K) coefficient of each reference;
``coefficient_covariance``
    (y, x, K (K + 1) / 2) their covariance per pixel, upper triangle row by row.

The properties of the same names return them as HyperSpy signals on the map's axes.
Parameters of the fit are in ``metadata.Chemomech.composition_map``.
"""

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D

from ._operations import CarriedArraysMixin

MAPS = "Chemomech.composition_maps"


def composition_map_arrays(shape, K):
    """Uninitialised arrays of a composition map (``numpy.empty``), by name.

    ``X`` and, as stored in ``metadata.Chemomech.composition_maps``: ``thickness``,
    ``uncertainty``, ``residual``, ``mask`` (``shape``), ``coefficients``
    (``shape + (K,)``) and ``coefficient_covariance`` (``shape + (K (K+1)/2,)``).
    """
    shape = tuple(shape)
    return {"X": np.empty(shape), "mask": np.empty(shape, dtype=bool),
            **{k: np.empty(shape) for k in ("thickness", "uncertainty", "residual")},
            "coefficients": np.empty(shape + (K,)),
            "coefficient_covariance": np.empty(shape + (K * (K + 1) // 2,))}


def composition_map_container(navigation_axes, arrays, title="composition", steps=None):
    """A CompositionMap on the image axes of a stack around ``arrays`` (not copied).

    Building a HyperSpy signal (its axes' traits) costs about one pass over a
    256 x 256 x 120 stack; :meth:`XrayAbsorptionSpectrum.get_composition_map` builds
    it while the unmixing reads the stack and writes into the same arrays.

    Parameters
    ----------
    navigation_axes : sequence of DataAxis
        The stack's navigation axes, HyperSpy order (x, y).
    arrays : dict
        As made by :func:`composition_map_arrays`: ``X`` becomes the data, the others
        ``metadata.Chemomech.composition_maps``.
    title : str
    steps : dict, optional
        ``{step: node}`` provenance stored in ``metadata.Chemomech.<step>`` (see
        :func:`hyperspy_chemomech._metadata.step_record`).

    Returns
    -------
    CompositionMap
    """
    axes = []
    for ax in list(navigation_axes)[::-1]:  # array order (y, x)
        d = ax.get_axis_dictionary()
        d["navigate"] = False
        d.pop("_type", None)
        axes.append(d)
    chemomech = {MAPS.split(".")[1]: {k: v for k, v in arrays.items() if k != "X"}}
    chemomech.update(steps or {})
    # the whole metadata at once: HyperSpy's set_item per key costs ~0.3 ms each
    metadata = {"General": {"title": title}, "Signal": {"quantity": "Li fraction X"},
                MAPS.split(".")[0]: chemomech}
    return CompositionMap(arrays["X"], axes=axes, metadata=metadata)


def make_composition_map(X, navigation_axes, mask, title="composition", steps=None, **maps):
    """Build a CompositionMap from finished arrays (copied), on the image axes of a stack.

    Parameters
    ----------
    X : numpy.ndarray, shape (ny, nx)
        Lithiated fraction; set to NaN outside ``mask``.
    navigation_axes : sequence of DataAxis
        The stack's navigation axes, HyperSpy order (x, y).
    mask : numpy.ndarray of bool, shape (ny, nx)
    title : str
    steps : dict, optional
        Provenance, as for :func:`composition_map_container`.
    **maps
        ``thickness``, ``uncertainty``, ``residual`` (ny, nx), ``coefficients``
        (ny, nx, K) and ``coefficient_covariance`` (ny, nx, K (K+1)/2); those not
        given are NaN.
    """
    X = np.asarray(X, dtype=float)
    coefficients = maps.get("coefficients")
    K = 2 if coefficients is None else np.shape(coefficients)[-1]
    arrays = composition_map_arrays(X.shape, K)
    unknown = set(maps) - set(arrays)
    if unknown:
        raise TypeError(f"unknown composition map arrays: {sorted(unknown)}")
    for name, value in (("mask", mask), *maps.items()):
        if np.shape(value)[:2] != X.shape:
            raise ValueError(f"{name} has shape {np.shape(value)}; the map is {X.shape}")
    for name, dest in arrays.items():
        if name == "mask":
            dest[...] = np.asarray(mask, dtype=bool)
        elif name == "X":
            dest[...] = np.where(mask, X, np.nan)
        else:
            dest[...] = np.asarray(maps[name], dtype=float) if name in maps else np.nan
    return composition_map_container(navigation_axes, arrays, title=title, steps=steps)


class CompositionMap(CarriedArraysMixin, Signal2D):
    """Map of the lithiated fraction X in [0, 1]; NaN outside the particle.

    Made by :meth:`XrayAbsorptionSpectrum.get_composition_map`, or from any
    (y, x) array of X with ``set_signal_type("composition_map")``.

    X is intensive: ``rebin`` gives the mean X of each bin (HyperSpy's sums it),
    and ``isig`` / ``crop`` / ``rebin`` carry the thickness, uncertainty,
    residual, mask and coefficients along.
    """

    _signal_type = "composition_map"
    _signal_dimension = 2

    def _carried_arrays(self):
        return [(f"{MAPS}.thickness", (0, 1), "mean"),
                (f"{MAPS}.uncertainty", (0, 1), "sigma"),
                (f"{MAPS}.residual", (0, 1), "rms"),
                (f"{MAPS}.mask", (0, 1), "any"),
                (f"{MAPS}.coefficients", (0, 1, None), "mean")]

    # ------------------------------------------------------- carried maps
    def _stored(self, name):
        key = f"{MAPS}.{name}"
        if not self.metadata.has_item(key):
            return None
        arr = np.asarray(self.metadata.get_item(key))
        shape = self.axes_manager.signal_shape[::-1]
        if arr.shape[:2] != tuple(shape):
            raise ValueError(
                f"the stored {name} map has shape {arr.shape[:2]} but the composition map "
                f"{tuple(shape)} (cropped or resampled after the fit); recompute it"
            )
        return arr

    def _as_signal(self, name, title, quantity):
        arr = self._stored(name)
        if arr is None:
            raise AttributeError(
                f"this composition map carries no {name} map (it was not made by "
                "get_composition_map)"
            )
        from hyperspy.signals import Signal1D
        from hyperspy.signals import Signal2D as _S2

        axes = [ax.get_axis_dictionary() for ax in self.axes_manager.signal_axes[::-1]]
        for d in axes:
            d.pop("_type", None)
        if arr.ndim == 3:  # (y, x, K): K images
            sig = Signal1D(arr, axes=axes + [{"size": arr.shape[2], "name": "reference"}])
            sig = sig.T
        else:
            sig = _S2(arr, axes=axes)
        sig.metadata.General.title = f"{self.metadata.General.title} {title}"
        sig.metadata.Signal.quantity = quantity
        return sig

    @property
    def particle_mask(self):
        """Boolean (y, x) array of the particle: the stored mask, else where X is finite."""
        stored = self._stored("mask")
        if stored is not None:
            return stored.astype(bool)
        return np.isfinite(np.asarray(self.data))

    @property
    def thickness(self):
        """Signal2D: sum of the unmixing coefficients (reference units, e.g. nm)."""
        return self._as_signal("thickness", "thickness", "Thickness (reference units)")

    @property
    def uncertainty(self):
        """Signal2D: standard deviation (1 sigma) of X per pixel."""
        return self._as_signal("uncertainty", "uncertainty", "sigma(X)")

    @property
    def residual(self):
        """Signal2D: RMS misfit of the per-pixel fit (OD units)."""
        return self._as_signal("residual", "residual", "RMS residual (OD)")

    @property
    def coefficients(self):
        """Signal2D stack (reference | y, x) of the unmixing coefficients."""
        return self._as_signal("coefficients", "coefficients", "Coefficient")

    # ------------------------------------------------------------ summaries
    def _inside(self):
        X = np.asarray(self.data, dtype=float)
        return X[self.particle_mask & np.isfinite(X)]

    def summary(self):
        """Statistics of X inside the particle.

        Returns
        -------
        dict
            ``n_pixels``, ``mean``, ``std``, ``median``, ``p05``, ``p95``,
            ``fraction_lithiated`` (X > 0.5), and ``mean_uncertainty`` when an
            uncertainty map is carried.
        """
        v = self._inside()
        if v.size == 0:
            raise ValueError("the composition map has no finite pixel inside the particle")
        out = {
            "n_pixels": int(v.size),
            "mean": float(v.mean()),
            "std": float(v.std()),
            "median": float(np.median(v)),
            "p05": float(np.percentile(v, 5)),
            "p95": float(np.percentile(v, 95)),
            "fraction_lithiated": float(np.mean(v > 0.5)),
        }
        unc = self._stored("uncertainty")
        if unc is not None:
            out["mean_uncertainty"] = float(np.nanmean(unc[self.particle_mask]))
        return out

    def histogram(self, bins=50, range=(0.0, 1.0)):
        """Histogram of X inside the particle.

        Parameters
        ----------
        bins : int
            Number of bins.
        range : (float, float)
            Range of X covered.

        Returns
        -------
        hyperspy.signals.Signal1D
            Pixel counts per bin, on an X axis of the bin centres.
        """
        from hyperspy.signals import Signal1D

        counts, edges = np.histogram(self._inside(), bins=int(bins), range=range)
        h = Signal1D(counts, axes=[{"size": counts.size, "offset": float(edges[:2].mean()),
                                    "scale": float(edges[1] - edges[0]), "name": "X",
                                    "units": ""}])
        h.metadata.General.title = f"{self.metadata.General.title} histogram"
        h.metadata.Signal.quantity = "Pixels"
        return h

    def plot(self, navigator="auto", cmap="RdBu_r", vmin=0.0, vmax=1.0,
             centre_colormap=False, **kwargs):
        """Plot X on a fixed [0, 1] scale (HyperSpy's ``Signal2D.plot``).

        Blue is Li-poor, red Li-rich, the middle X = 0.5; the colour bar reads
        "Li fraction X", NaN (outside the particle) is transparent, the axes are
        calibrated (nm) with a scale bar. A collection of maps gets a navigator
        of the mean X of each map (HyperSpy's default sum is NaN outside the
        particle).

        Parameters
        ----------
        navigator : "auto" or as HyperSpy's ``plot``
        cmap : str
            Default ``"RdBu_r"``.
        vmin, vmax : float
            Colour limits of X (default 0 and 1).
        centre_colormap : bool
            Default False (HyperSpy centres diverging maps on 0 otherwise).
        **kwargs
            Other keywords of HyperSpy's ``Signal2D.plot`` (e.g. ``scalebar``,
            ``axes_ticks``, ``colorbar``).

        Returns
        -------
        matplotlib.figure.Figure
            The figure of the image (HyperSpy's ``signal._plot.signal_plot.figure``).
        """
        from ._plotting import hyperspy_plot

        return hyperspy_plot(self, Signal2D.plot, navigator=navigator,
                             quantity="Li fraction X", cmap=cmap, vmin=vmin, vmax=vmax,
                             centre_colormap=centre_colormap, **kwargs)


class LazyCompositionMap(LazySignal, CompositionMap):
    """Lazy (dask) version of :class:`CompositionMap`."""

    _lazy = True
    rebin = CarriedArraysMixin.rebin   # the mean, not LazySignal's sum
