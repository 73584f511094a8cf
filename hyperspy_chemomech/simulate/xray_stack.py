"""Synthetic Fe L-edge X-ray spectral stacks of a LixFePO4 platelet with known truth."""

import numpy as np
from scipy import ndimage

from .composition_fields import composition_field
from .shapes import platelet_mask

#: Peak positions (eV), widths (eV, Lorentzian HWHM) and heights of the Fe L-edge
#: multiplet lines used for the synthetic references. Fe2+ (LiFePO4) has its L3
#: maximum ~1.8 eV below Fe3+ (FePO4), as measured on LFP/FP (e.g. Augustsson 2005).
_LINES = {
    "FePO4": [(708.0, 0.5, 0.35), (709.8, 0.55, 1.00), (711.0, 0.8, 0.25),
              (721.0, 0.9, 0.20), (722.6, 0.9, 0.35)],
    "LiFePO4": [(708.0, 0.55, 1.00), (709.5, 0.6, 0.30), (710.6, 0.8, 0.22),
                (720.6, 0.9, 0.35), (722.3, 1.0, 0.18)],
}
#: L3 and L2 edge-step positions (eV) and 2:1 jumps (per Fe, both compounds).
_STEPS = [(709.0, 2.0 / 3.0), (721.8, 1.0 / 3.0)]
#: Attenuation coefficient (1/nm) scale: the LiFePO4 L3 maximum is ~0.012 / nm.
_MU_PEAK = 0.012
#: Absorption of the non-Fe atoms (1/nm), slowly falling with energy.
_MU_BACKGROUND = 0.0025


def _fe_l_edge_mu(energies, compound):
    """Attenuation coefficient (1/nm) of ``compound`` at ``energies`` (eV)."""
    e = np.asarray(energies, dtype=float)
    mu = np.zeros_like(e)
    for e0, hwhm, height in _LINES[compound]:
        mu += height / (1.0 + ((e - e0) / hwhm) ** 2)
    for e0, jump in _STEPS:
        # arctan step: the continuum, same per Fe in both compounds
        mu += 0.3 * jump * (0.5 + np.arctan((e - e0) / 0.6) / np.pi)
    mu *= _MU_PEAK
    mu += _MU_BACKGROUND * (700.0 / e) ** 3
    return mu


def edge_energies(n_energies=100, energy_range=(700.0, 730.0), spacing="edge"):
    """Photon energies of a STXM scan across the Fe L-edge.

    Parameters
    ----------
    n_energies : int
        Number of energies.
    energy_range : (float, float)
        First and last energy (eV).
    spacing : {"edge", "uniform"}
        ``"edge"`` puts fine steps across the L3 and L2 edges and coarse ones
        elsewhere (a non-uniform axis, the usual STXM scan); ``"uniform"`` is evenly spaced.

    Returns
    -------
    numpy.ndarray, shape (n_energies,)
        Strictly increasing energies (eV).
    """
    lo, hi = (float(v) for v in energy_range)
    if not hi > lo or n_energies < 2:
        raise ValueError("energy_range must increase and n_energies must be >= 2")
    if spacing == "uniform":
        return np.linspace(lo, hi, int(n_energies))
    if spacing != "edge":
        raise ValueError(f"unknown spacing {spacing!r}; use 'edge' or 'uniform'")
    # sampling density: 1 everywhere, 6x across L3, 3x across L2 (inverse-CDF spacing)
    fine = np.linspace(lo, hi, 20001)
    dens = (1.0 + 5.0 * np.exp(-0.5 * ((fine - 709.0) / 2.0) ** 2)
            + 2.0 * np.exp(-0.5 * ((fine - 721.8) / 1.5) ** 2))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(fine))])
    return np.interp(np.linspace(0.0, cdf[-1], int(n_energies)), cdf, fine)


def _spectrum_signal(energies, values, title):
    from hyperspy.signals import Signal1D

    from ..signals import energy_axis_dict

    s = Signal1D(np.asarray(values, dtype=float), axes=[energy_axis_dict(energies)])
    s.metadata.General.title = title
    s.metadata.Signal.quantity = "Attenuation coefficient (1/nm)"
    return s


def fe_l_edge_references(energies):
    """Fe L-edge-like attenuation spectra of FePO4 (Fe3+) and LiFePO4 (Fe2+).

    Lorentzian multiplet lines on an arctan edge step (L3 at ~709 eV, L2 at ~722 eV,
    2:1 jumps) and a smooth non-Fe background. The L3 maximum of LiFePO4 (708.0 eV)
    lies 1.8 eV below that of FePO4 (709.8 eV). Both share the same edge jump per Fe,
    so a fit with them gives the Fe2+ fraction = Li fraction X directly.

    Parameters
    ----------
    energies : array_like
        Photon energies (eV), strictly increasing (non-uniform spacing allowed).

    Returns
    -------
    (fp, lfp) : tuple of hyperspy.signals.Signal1D
        Attenuation coefficients (1/nm) on ``energies``, ordered delithiated ->
        lithiated as :meth:`XrayAbsorptionSpectrum.get_composition_map` expects.

    References
    ----------
    .. [1] Augustsson et al., J. Chem. Phys. 123, 184717 (2005): Fe L-edge of LixFePO4.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.simulate import fe_l_edge_references
    >>> fp, lfp = fe_l_edge_references(np.linspace(700, 730, 301))
    >>> round(float(lfp.axes_manager[-1].axis[np.argmax(lfp.data)]), 2)
    708.0
    """
    e = np.asarray(energies, dtype=float)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("energies must be a strictly increasing 1D array (eV)")
    return (_spectrum_signal(e, _fe_l_edge_mu(e, "FePO4"), "FePO4 (Fe3+)"),
            _spectrum_signal(e, _fe_l_edge_mu(e, "LiFePO4"), "LiFePO4 (Fe2+)"))


def _smooth_drift(n, max_drift, rng):
    """(n, 2) random-walk drift (px) between energies, scaled so max |d| = max_drift."""
    if max_drift <= 0:
        return np.zeros((n, 2))
    walk = np.cumsum(rng.standard_normal((n, 2)), axis=0)
    walk = ndimage.gaussian_filter1d(walk, sigma=2.0, axis=0, mode="nearest")
    walk -= walk[0]
    return walk * (max_drift / np.abs(walk).max())


def synthetic_xray_stack(shape=(128, 128), n_energies=100, i0=1e4, max_drift=5.0,
                         seed=None, energies=None, spacing="edge",
                         energy_range=(700.0, 730.0), max_thickness=100.0,
                         particle="hexagon", composition="two_phase", pixel_size=20.0,
                         noise=True, lazy=False):
    """A synthetic STXM transmission stack of a LixFePO4 platelet, with its truth.

    Intensity ``I(y, x, E) = Poisson(I0(E) exp(-OD))`` with
    ``OD = t(y, x) [(1 - X) mu_FP(E) + X mu_LFP(E)]`` on the drifted frame
    (each energy frame is translated by its own sub-pixel drift before the noise).

    Parameters
    ----------
    shape : (int, int)
        Image size (ny, nx) in px.
    n_energies : int
        Number of energies (ignored if ``energies`` is given).
    i0 : float
        Mean incident counts per pixel and energy; the flux varies by +-10 % across
        the scan, as beamline flux does.
    max_drift : float
        Largest drift (px) of any frame relative to the first one.
    seed : int or numpy.random.Generator, optional
    energies : array_like, optional
        Explicit energies (eV); default from :func:`edge_energies`.
    spacing : {"edge", "uniform"}
        Energy spacing when ``energies`` is not given.
    energy_range : (float, float)
        First and last energy (eV) when ``energies`` is not given.
    max_thickness : float
        Thickness (nm) in the particle's interior; it falls to 40 % at the edges.
    particle : str
        Outline passed to :func:`~hyperspy_chemomech.simulate.platelet_mask`.
    composition : str
        Field kind passed to :func:`~hyperspy_chemomech.simulate.composition_field`.
    pixel_size : float
        Pixel size (nm).
    noise : bool
        Poisson noise on the counts; ``False`` gives the expected counts.
    lazy : bool
        Return a lazy (dask) signal.

    Returns
    -------
    stack : XrayAbsorptionSpectrum
        Counts, layout (y, x | energy), energy axis in eV (non-uniform for
        ``spacing="edge"``), image axes in nm.
    truth : dict
        ``X`` (ny, nx; NaN outside), ``thickness`` (nm, 0 outside), ``mask``,
        ``drift`` (n_energies, 2): (dy, dx) px translation of each frame's content,
        ``i0`` (n_energies,), ``energies``, ``references`` (fp, lfp Signal1D, 1/nm),
        ``od`` (noise-free, undrifted optical density).

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import synthetic_xray_stack
    >>> stack, truth = synthetic_xray_stack(shape=(32, 32), n_energies=20, seed=0)
    >>> stack.data.shape
    (32, 32, 20)
    """
    rng = np.random.default_rng(seed)
    ny, nx = (int(n) for n in shape)
    e = (edge_energies(n_energies, energy_range, spacing) if energies is None
         else np.asarray(energies, dtype=float))
    if e.ndim != 1 or np.any(np.diff(e) <= 0):
        raise ValueError("energies must be strictly increasing (eV)")
    if not i0 > 0:
        raise ValueError(f"i0 must be positive, got {i0}")
    mask = platelet_mask((ny, nx), kind=particle, fill=0.7)
    X = composition_field(mask, kind=composition, seed=rng)
    depth = ndimage.distance_transform_edt(mask)
    thickness = np.where(mask, max_thickness * (0.4 + 0.6 * (1 - np.exp(-depth / 8.0))), 0.0)
    mu = np.stack([_fe_l_edge_mu(e, "FePO4"), _fe_l_edge_mu(e, "LiFePO4")], axis=1)
    Xz = np.nan_to_num(X)
    t = np.stack([thickness * (1 - Xz), thickness * Xz], axis=-1)  # (ny, nx, 2) nm
    od = t @ mu.T  # (ny, nx, nE)
    drift = _smooth_drift(e.size, float(max_drift), rng)
    flux = i0 * (0.9 + 0.2 * (e - e[0]) / (e[-1] - e[0]))
    counts = np.empty_like(od)
    for k in range(e.size):
        # outside the particle OD = 0, so "nearest" padding is exact for the background
        frame = ndimage.shift(od[..., k], drift[k], order=3, mode="nearest")
        counts[..., k] = flux[k] * np.exp(-frame)
    if noise:
        counts = rng.poisson(counts).astype(float)

    from ..signals import make_stack

    stack = make_stack(counts, e, pixel_size=pixel_size, units="nm",
                       title="Synthetic Fe L-edge stack", quantity="Intensity (counts)")
    stack.metadata.set_item("Chemomech.source.counts", True)
    if lazy:
        stack = stack.as_lazy()
    truth = {
        "X": X, "thickness": thickness, "mask": mask, "drift": drift, "i0": flux,
        "energies": e, "references": fe_l_edge_references(e), "od": od,
    }
    return stack, truth


def truth_on_aligned_grid(truth, shifts):
    """The truth of :func:`synthetic_xray_stack` moved to the grid of an aligned stack.

    After :meth:`~hyperspy_chemomech.signals.XrayAbsorptionSpectrum.align_energies`
    every frame sits where its content was displaced by ``drift - shifts`` px, the same
    for all frames up to the registration error; the truth maps are moved by the
    mean of that offset so they can be compared pixel by pixel.

    Parameters
    ----------
    truth : dict
        As returned by :func:`synthetic_xray_stack`.
    shifts : numpy.ndarray, shape (n_energies, 2)
        The drift estimated by the alignment (px).

    Returns
    -------
    dict
        ``X`` (NaN outside), ``thickness`` (nm), ``mask`` on the aligned grid, the
        ``offset`` (dy, dx) px applied, and ``drift_error`` (n_energies, 2): the
        estimated minus the true drift, both relative to their means (px).
    """
    drift = np.asarray(truth["drift"], dtype=float)
    shifts = np.asarray(shifts, dtype=float)
    offset = (drift - shifts).mean(axis=0)
    inside = ndimage.shift(truth["mask"].astype(float), offset, order=1, mode="constant")
    mask = inside > 0.5
    X = ndimage.shift(np.nan_to_num(truth["X"]), offset, order=1, mode="nearest")
    # near the edge the shifted X mixes in the zero-filled outside: renormalise
    with np.errstate(invalid="ignore", divide="ignore"):
        X = np.where(mask, X / np.maximum(inside, 1e-12), np.nan)
    thickness = ndimage.shift(truth["thickness"], offset, order=1, mode="constant")
    drift_error = (shifts - shifts.mean(axis=0)) - (drift - drift.mean(axis=0))
    return {"X": np.clip(X, 0.0, 1.0), "thickness": thickness, "mask": mask,
            "offset": offset, "drift_error": drift_error}
