"""XrayAbsorptionSpectrum: STXM / spectro-ptychography stacks (y, x | energy)."""

from hyperspy._signals.signal1d import Signal1D
from hyperspy._signals.lazy import LazySignal


class XrayAbsorptionSpectrum(Signal1D):
    """X-ray absorption spectrum image, signal axis = photon energy in eV.

    Data layout ``(y, x | energy)``: transmitted intensity (counts) or, after
    :meth:`to_optical_density`, optical density (dimensionless).
    """

    _signal_type = "xray_absorption"
    _alias_signal_types = ["XAS", "STXM"]
    _signal_dimension = 1


class LazyXrayAbsorptionSpectrum(LazySignal, XrayAbsorptionSpectrum):
    """Lazy (dask) version of :class:`XrayAbsorptionSpectrum`."""

    _lazy = True
