"""HyperSpy operations that keep the physics: ``rebin``, ``isig`` / ``inav``, ``crop``.

HyperSpy's ``rebin`` sums the pixels of a bin, right for counts (extensive) and
wrong for strain, composition or optical density (intensive): their bins must hold
the mean. And HyperSpy slices and crops only the data (and, for ``isig``, the
variance), while our signals keep arrays beside the data in their metadata
(a composition map's uncertainty, thickness, mask; a stack's background mask and
drift): those must follow the data, or be dropped with a note in
``metadata.Chemomech.dropped``.

:class:`CarriedArraysMixin` does both for a signal class that lists its carried
arrays in :meth:`~CarriedArraysMixin._carried_arrays`.
"""

import numpy as np

from .._metadata import METADATA_ROOT

#: How a carried array combines over a bin (``rebin``).
#: mean: intensive; rms: root mean square (a misfit); sigma: the standard deviation of
#: the bin's mean (independent pixels); any: a mask; drop: cannot be rebinned.
REDUCTIONS = ("mean", "rms", "sigma", "any", "drop")


def _note_dropped(signal, name, why):
    signal.metadata.set_item(f"{METADATA_ROOT}.dropped.{name}", why)


class CarriedArraysMixin:
    """Mixin for signals whose values are intensive and that carry arrays in metadata.

    Subclasses set ``_intensive`` (bool, or a method of the signal returning it) and
    override :meth:`_carried_arrays`.
    """

    #: Whether ``rebin`` averages (True) or sums (HyperSpy's default).
    _intensive = True

    def _is_intensive(self):
        return bool(self._intensive)

    def _carried_arrays(self):
        """``[(metadata key, array axes, reduction)]`` of the arrays kept beside the data.

        ``array axes`` maps each axis of the array to the data's array axis it lies
        along (``None`` for an axis of its own, e.g. the references of the
        coefficients); ``reduction`` is one of :data:`REDUCTIONS`.
        """
        return []

    # -- helpers ---------------------------------------------------------------
    def _base_rebin(self, signal, **kwargs):
        """HyperSpy's own (summing) rebin of ``signal``, past this mixin."""
        if getattr(signal, "_lazy", False):
            from hyperspy._signals.lazy import LazySignal

            # LazySignal.rebin ends in super().rebin, which is this mixin's again:
            # the flag sends that call on to HyperSpy's BaseSignal.rebin
            signal._in_base_rebin = True
            try:
                out = LazySignal.rebin(signal, **kwargs)
            finally:
                del signal._in_base_rebin
            if out is not None:
                out.__dict__.pop("_in_base_rebin", None)
            return out
        return super(CarriedArraysMixin, signal).rebin(**kwargs)

    def _rebin_sum(self, array, kwargs):
        """Bin sums of an array laid out like the data (HyperSpy's rebin rules)."""
        plain = self._deepcopy_with_new_data(array)
        return np.asarray(self._base_rebin(plain, **kwargs).data)

    def _rebin_mean(self, array, kwargs):
        """NaN-aware bin means of an array laid out like the data."""
        array = np.asarray(array, dtype=float)
        finite = np.isfinite(array)
        total = self._rebin_sum(np.where(finite, array, 0.0), kwargs)
        count = self._rebin_sum(finite.astype(float), kwargs)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan), count

    @staticmethod
    def _to_data_layout(arr, axes, ndim):
        """View ``arr`` with its data-aligned axes in data order, extra axes last."""
        src = [i for i, a in enumerate(axes) if a is not None]
        extra = [i for i, a in enumerate(axes) if a is None]
        return np.transpose(arr, src + extra), len(extra)

    # -- rebin -------------------------------------------------------------------
    def rebin(self, new_shape=None, scale=None, crop=None, dtype=None, out=None, **kwargs):
        """Rebin; intensive quantities (strain, composition, OD) get the bin means.

        Parameters and behaviour are those of HyperSpy's ``rebin``, except that for
        an intensive signal each new pixel holds the mean of the finite pixels it
        covers (NaN only where none is finite), not their sum; a carried variance
        becomes that of the mean. Arrays kept in ``metadata.Chemomech`` are
        rebinned alike (means; RMS for misfits; the mask where the new data are
        finite) or dropped with a note in ``metadata.Chemomech.dropped``.
        """
        if self.__dict__.get("_in_base_rebin"):
            kw = {} if crop is None else {"crop": crop}
            return super().rebin(new_shape=new_shape, scale=scale, dtype=dtype, out=out, **kw,
                                 **kwargs)
        if crop is not None:
            kwargs["crop"] = crop
        kwargs.update(new_shape=new_shape, scale=scale)
        if not self._is_intensive():
            result = self._base_rebin(self, dtype=dtype, out=out, **kwargs)
            self._rebin_carried(result if out is None else out, kwargs)
            return result
        if out is not None:
            raise NotImplementedError("rebin(out=...) of an intensive signal: call rebin() "
                                      "and copy the result")
        result = self._base_rebin(self, dtype=dtype, **kwargs)     # axes, sums
        data = self.data
        if getattr(self, "_lazy", False):
            import dask.array as da

            finite = da.isfinite(data)
            total = self._base_rebin(self._deepcopy_with_new_data(da.where(finite, data, 0.0)),
                                     **kwargs).data
            count = self._base_rebin(self._deepcopy_with_new_data(finite.astype(float)),
                                     **kwargs).data
            mean = da.where(count > 0, total / da.where(count > 0, count, 1.0), np.nan)
        else:
            mean, count = self._rebin_mean(data, kwargs)
        if dtype is not None and dtype != "same":
            mean = mean.astype(dtype)
        result.data = mean
        var_key = "Signal.Noise_properties.variance"
        if self.metadata.has_item(var_key):
            var = self.metadata.get_item(var_key)
            var = getattr(var, "data", var)
            if np.shape(var) == np.shape(data) and not getattr(self, "_lazy", False):
                v = np.asarray(var, dtype=float)
                vsum = self._rebin_sum(np.where(np.isfinite(v) & np.isfinite(data), v, 0.0),
                                       kwargs)
                with np.errstate(invalid="ignore", divide="ignore"):
                    vmean = np.where(count > 0, vsum / np.square(count), np.nan)
                from hyperspy.signals import Signal2D

                result.metadata.set_item(var_key, Signal2D(vmean))
            else:
                del result.metadata.Signal.Noise_properties.variance
                _note_dropped(result, "variance", "variance dropped by rebin (not on the "
                                                  "data's grid, or lazy)")
        self._rebin_carried(result, kwargs)
        return result

    def _rebin_carried(self, result, kwargs):
        ndim = np.ndim(self.data)
        for key, axes, how in self._carried_arrays():
            if not self.metadata.has_item(key):
                continue
            arr = np.asarray(self.metadata.get_item(key))
            name = key.rsplit(".", 1)[-1]
            if how == "drop" or len([a for a in axes if a is not None]) != ndim:
                self._drop_carried(result, key, f"{name} dropped by rebin: it cannot follow "
                                                "the binning; recompute it")
                continue
            lay, n_extra = self._to_data_layout(arr, axes, ndim)
            if how == "any":
                new = np.isfinite(np.asarray(result.data, dtype=float))
            else:
                cols = []
                for k in np.ndindex(*lay.shape[ndim:]):
                    a = lay[(Ellipsis,) + k].astype(float)
                    if how == "mean":
                        cols.append(self._rebin_mean(a, kwargs)[0])
                    elif how == "rms":
                        cols.append(np.sqrt(self._rebin_mean(np.square(a), kwargs)[0]))
                    else:  # sigma of the mean of independent pixels
                        m, c = self._rebin_mean(np.square(a), kwargs)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            cols.append(np.sqrt(m / np.where(c > 0, c, np.nan)))
                new = np.stack(cols, axis=-1).reshape(cols[0].shape + lay.shape[ndim:]) \
                    if n_extra else cols[0]
            result.metadata.set_item(key, new)

    def _drop_carried(self, result, key, why):
        node, name = key.rsplit(".", 1)
        if result.metadata.has_item(key):
            delattr(result.metadata.get_item(node), name)
        _note_dropped(result, name, why)

    # -- slicing (isig, inav) and crop --------------------------------------------
    def _slice_carried(self, result, array_slices):
        ndim = np.ndim(self.data)
        for key, axes, _ in self._carried_arrays():
            if not self.metadata.has_item(key):
                continue
            arr = np.asarray(self.metadata.get_item(key))
            index = tuple(array_slices[a] if a is not None else slice(None) for a in axes)
            if len(array_slices) != ndim:
                continue
            result.metadata.set_item(key, np.array(arr[index]))

    def _slicer(self, slices, isNavigation=None, out=None):
        result = super()._slicer(slices, isNavigation=isNavigation, out=out)
        target = result if out is None else out
        if target is not None and self._carried_arrays():
            array_slices = self._get_array_slices(slices, isNavigation)
            self._slice_carried(target, tuple(array_slices))
        return result

    def crop(self, axis, start=None, end=None, convert_units=False):
        """Crop in place (HyperSpy's ``crop``); the carried arrays and variance follow."""
        ax = self.axes_manager[axis]
        i1, i2 = ax._get_index(start), ax._get_index(end)
        dim = ax.index_in_array
        ndim = np.ndim(self.data)
        sl = [slice(None)] * ndim
        sl[dim] = slice(i1, i2)
        carried = {key: np.asarray(self.metadata.get_item(key))
                   for key, _, _ in self._carried_arrays() if self.metadata.has_item(key)}
        var_key = "Signal.Noise_properties.variance"
        var = self.metadata.get_item(var_key) if self.metadata.has_item(var_key) else None
        super().crop(axis, start=start, end=end, convert_units=convert_units)
        for key, axes, _ in self._carried_arrays():
            if key in carried:
                index = tuple(sl[a] if a is not None else slice(None) for a in axes)
                self.metadata.set_item(key, np.array(carried[key][index]))
        if var is not None:
            v = getattr(var, "data", var)
            if np.ndim(v) == ndim:
                if hasattr(var, "_deepcopy_with_new_data"):
                    from hyperspy.signals import Signal2D

                    self.metadata.set_item(var_key, Signal2D(np.array(np.asarray(v)[tuple(sl)])))
                else:
                    self.metadata.set_item(var_key, np.array(np.asarray(v)[tuple(sl)]))
