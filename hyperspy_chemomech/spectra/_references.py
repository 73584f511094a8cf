"""Reference spectra of the end members: resampling, checks, the energy-scale shift.

Interpolation onto the data's energies (with a shift of the energy scale), the
check that two references tell the iron valences apart (Fe L3 white line), mean
spectra of end-member regions of the data, and the one shift of the references'
energy scale that best explains a whole stack (from its Gram matrix).
"""

import numpy as np

from ._unmixing import CHUNK_PIXELS


def interpolate_references(references, energies, shift=0.0):
    """Reference spectra resampled onto the data's energies.

    Parameters
    ----------
    references : sequence of (energies_k, values_k)
        Each reference on its own strictly increasing energy axis (eV).
    energies : numpy.ndarray, shape (n_energies,)
        Energies of the data (eV).
    shift : float
        Energy shift (eV) applied to every reference: the result is
        ``values_k(E - shift)``, i.e. a reference feature at ``E0`` moves to ``E0 + shift``.

    Returns
    -------
    numpy.ndarray, shape (n_energies, K)

    Raises
    ------
    ValueError
        If a reference does not cover the (shifted) data range, or is not increasing.
    """
    e = np.asarray(energies, dtype=float)
    shift = float(shift)
    if not np.isfinite(shift):
        raise ValueError(f"the reference energy shift must be finite (eV), got {shift}")
    cols = []
    for k, (ek, vk) in enumerate(references):
        ek = np.asarray(ek, dtype=float)
        vk = np.asarray(vk, dtype=float)
        if ek.ndim != 1 or ek.shape != vk.shape or ek.size < 2:
            raise ValueError(f"reference {k}: energies and values must be 1D of equal length")
        if np.any(np.diff(ek) <= 0):
            raise ValueError(f"reference {k}: its energy axis must be strictly increasing")
        if not np.all(np.isfinite(vk)):
            raise ValueError(f"reference {k} holds non-finite values")
        lo, hi = e[0] - shift, e[-1] - shift
        tol = 1e-9 * max(1.0, abs(hi))
        if lo < ek[0] - tol or hi > ek[-1] + tol:
            raise ValueError(
                f"reference {k} covers {ek[0]:.2f}-{ek[-1]:.2f} eV but the data need "
                f"{lo:.2f}-{hi:.2f} eV (data range {e[0]:.2f}-{e[-1]:.2f} eV, reference "
                f"shift {shift:+.2f} eV); crop the data or supply wider references"
            )
        cols.append(np.interp(e - shift, ek, vk))
    return np.stack(cols, axis=1)


#: Window (eV) holding the Fe L3 white line of LixFePO4.
FE_L3_WINDOW = (705.0, 713.0)
#: Least shift (eV) of the L3 maximum that tells two iron valences apart.
FE_L3_MIN_SPLIT = 0.5


def check_reference_spectra(references, names=None):
    """Refuse references that cannot be what they claim: negated, or in the wrong order.

    - Every absorption spectrum rises across its edge: a reference whose mean over
      the last tenth of its energies lies below that over the first tenth (a
      negative edge jump) is negated or not an absorption spectrum.
    - References are ordered delithiated -> lithiated (X is the fraction of the
      last). Across the Fe L3 edge (705-713 eV) the lithiated (Fe2+) white line
      lies ~1.5-2 eV below the delithiated (Fe3+) one (708.0 against 709.8 eV for
      LiFePO4 / FePO4, Augustsson et al. 2005): when both cover that window and the
      last one's maximum lies more than 0.5 eV above the first one's, they are
      reversed.

    Parameters
    ----------
    references : sequence of (energies_k, values_k)
        Energies (eV) and absorption of each reference.
    names : sequence of str, optional
        Names used in the messages.

    Raises
    ------
    ValueError
        Naming the reference and what is wrong with it.
    """
    names = list(names) if names is not None else [f"reference {k}" for k in range(len(references))]
    peaks = []
    for name, (ek, vk) in zip(names, references):
        ek, vk = np.asarray(ek, dtype=float), np.asarray(vk, dtype=float)
        n = max(1, ek.size // 10)
        jump = float(np.mean(vk[-n:]) - np.mean(vk[:n]))
        if not jump > 0:
            raise ValueError(
                f"{name}: its absorption falls across the edge (post-edge minus pre-edge = "
                f"{jump:.3g}); is it negated? An absorption reference rises across its edge")
        inside = (ek >= FE_L3_WINDOW[0]) & (ek <= FE_L3_WINDOW[1])
        covers = ek[0] <= FE_L3_WINDOW[0] and ek[-1] >= FE_L3_WINDOW[1] and inside.sum() >= 5
        peaks.append(float(ek[inside][np.argmax(vk[inside])]) if covers else None)
    if len(peaks) >= 2 and peaks[0] is not None and peaks[-1] is not None:
        if peaks[-1] - peaks[0] > FE_L3_MIN_SPLIT:
            raise ValueError(
                f"references in the wrong order: the Fe L3 maximum of {names[0]} lies at "
                f"{peaks[0]:.2f} eV and that of {names[-1]} at {peaks[-1]:.2f} eV, but the "
                "lithiated (Fe2+) one lies ~1.5-2 eV below the delithiated (Fe3+) one; give "
                "them delithiated first, lithiated last (X is the fraction of the last)")


def shift_range(references, energies):
    """The energy shifts (eV) for which every reference covers the data: (low, high)."""
    e = np.asarray(energies, dtype=float)
    lo = max(float(e[-1] - np.asarray(ek, float)[-1]) for ek, _ in references)
    hi = min(float(e[0] - np.asarray(ek, float)[0]) for ek, _ in references)
    return lo, hi


def data_gram(od, chunk_pixels=CHUNK_PIXELS):
    """``Y^T Y`` (n_energies, n_energies) summed over all pixels, NaN counted as 0.

    Parameters
    ----------
    od : numpy.ndarray or dask.array.Array, shape (..., n_energies)
    chunk_pixels : int
        Pixels per chunk (numpy input).
    """
    if hasattr(od, "dask"):
        import dask.array as da

        Y = da.nan_to_num(od)
        axes = tuple(range(od.ndim - 1))
        return np.asarray(da.tensordot(Y, Y, axes=(axes, axes)).compute())
    ne = od.shape[-1]
    flat = np.asarray(od).reshape(-1, ne)
    G = np.zeros((ne, ne))
    for s in range(0, flat.shape[0], int(chunk_pixels)):
        blk = np.nan_to_num(flat[s: s + chunk_pixels])
        G += blk.T @ blk
    return G


def region_reference(od, mask, n_edge=3):
    """A reference spectrum from a region of the data, normalised to a unit edge jump.

    Parameters
    ----------
    od : numpy.ndarray or dask.array.Array, shape (ny, nx, n_energies)
        Optical density.
    mask : numpy.ndarray of bool, shape (ny, nx)
        The end-member region.
    n_edge : int
        Energies averaged at each end for the pre- and post-edge levels.

    Returns
    -------
    numpy.ndarray, shape (n_energies,)
        Mean OD of the region divided by its edge jump (mean of the last ``n_edge``
        minus mean of the first ``n_edge`` energies), so that references from regions
        of different thickness count Fe atoms alike.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the region selects no pixels")
    if hasattr(od, "dask"):
        import dask.array as da

        spec = np.asarray(da.nanmean(da.where(mask[..., None], od, np.nan), axis=(0, 1)).compute())
    else:
        spec = np.nanmean(np.asarray(od)[mask], axis=0)
    if not np.all(np.isfinite(spec)):
        raise ValueError("the region's mean spectrum holds NaN")
    jump = spec[-n_edge:].mean() - spec[:n_edge].mean()
    if not jump > 0:
        raise ValueError(
            f"no positive edge jump (post-edge minus pre-edge OD = {jump:.3g}); "
            "is the region on the particle?"
        )
    return spec / jump


def fit_energy_shift(gram, references, energies, max_shift=1.0, step=0.02):
    """One common energy shift of the references that best fits a whole stack.

    The total least-squares misfit over all pixels is
    ``tr(Y^T Y) - tr((A^T A)^-1 A^T (Y^T Y) A)``, so only the (n_energies, n_energies)
    Gram matrix ``Y^T Y`` of the data is needed: the search over shifts is cheap.

    Parameters
    ----------
    gram : numpy.ndarray, shape (n_energies, n_energies)
        ``Y^T Y`` summed over the pixels (finite pixels only).
    references : sequence of (energies_k, values_k)
    energies : numpy.ndarray
        Data energies (eV).
    max_shift : float
        Search range +-max_shift (eV).
    step : float
        Grid step (eV); the optimum is refined by a parabola through the best grid
        point and its neighbours.

    Returns
    -------
    float
        The shift (eV), with the convention of :func:`interpolate_references`.
    """
    if not (np.isfinite(max_shift) and max_shift > 0) or not (np.isfinite(step) and step > 0):
        raise ValueError(f"max_shift and step must be positive (eV), got max_shift={max_shift!r}, "
                         f"step={step!r}")
    # only shifts at which every reference still covers the data can be tried
    lo, hi = shift_range(references, energies)
    lo, hi = max(lo, -max_shift), min(hi, max_shift)
    e = np.asarray(energies, dtype=float)
    if hi - lo < 2 * step:
        raise ValueError(
            f"energy_shift='fit' needs references that extend beyond the data's "
            f"{e[0]:.2f}-{e[-1]:.2f} eV by the shifts to try (+-{max_shift} eV); these allow "
            f"only {lo:+.2f} to {hi:+.2f} eV: supply wider references, crop the data (isig), or "
            "give energy_shift as a number")
    grid = np.arange(lo, hi + step / 2, step)
    grid = grid[grid <= hi + 1e-12]

    def explained(s):
        A = interpolate_references(references, energies, s)
        G = A.T @ A
        return float(np.trace(np.linalg.solve(G, A.T @ gram @ A)))

    vals = np.array([explained(s) for s in grid])
    i = int(np.argmax(vals))
    if i in (0, grid.size - 1):
        why = (f"widen max_shift (now {max_shift} eV)" if abs(grid[i]) >= max_shift - step / 2
               else "supply references wider than the data (they limit the search)")
        raise ValueError(
            f"the best reference energy shift lies at the edge of the search range "
            f"({grid[0]:+.2f} to {grid[-1]:+.2f} eV): {why}, or check the energy calibration"
        )
    y0, y1, y2 = vals[i - 1: i + 2]
    denom = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    return float(grid[i] + frac * step)
