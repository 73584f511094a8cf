"""Beer-Lambert optical density of transmission stacks, with I0 from particle-free pixels."""

import numpy as np
from scipy import ndimage


def check_energies(energies, units="eV"):
    """Validate a photon-energy axis.

    Parameters
    ----------
    energies : array_like
        Energies of the stack's frames.
    units : str
        Units of ``energies``; only ``"eV"`` is accepted.

    Returns
    -------
    numpy.ndarray
        The energies (eV) as a float array.

    Raises
    ------
    ValueError
        Units other than eV, fewer than two energies, non-finite values, or energies
        that are not strictly increasing.
    """
    if str(units).strip() != "eV":
        raise ValueError(
            f"the energy axis must be in eV, got units {units!r}; convert it first "
            "(e.g. axis.convert_to_units('eV') or set axes_manager[-1].units = 'eV')"
        )
    e = np.asarray(energies, dtype=float)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(f"need a 1D energy axis with >= 2 energies, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("the energy axis holds non-finite values")
    d = np.diff(e)
    if np.any(d <= 0):
        i = int(np.argmax(d <= 0))
        raise ValueError(
            "the energy axis must be strictly increasing; it is not monotonic at "
            f"index {i + 1} ({e[i]:.4g} eV -> {e[i + 1]:.4g} eV)"
        )
    return e


def check_intensities(intensity, name="intensity"):
    """Raise ``ValueError`` unless every intensity is finite and > 0 (counts or transmission).

    Works on numpy and dask arrays (a dask array is reduced once to check it).
    """
    if hasattr(intensity, "dask"):
        import dask.array as da

        lo, n_bad = da.compute(da.nanmin(intensity), (~da.isfinite(intensity)).sum())
    else:
        a = np.asarray(intensity)
        n_bad = np.count_nonzero(~np.isfinite(a))
        lo = np.nanmin(a) if n_bad < a.size else np.nan
    if n_bad:
        raise ValueError(
            f"{name} holds {int(n_bad)} NaN or infinite value(s); the optical density "
            "is undefined there (crop, or replace them by a measured value first)"
        )
    if not lo > 0:
        raise ValueError(
            f"{name} must be > 0 everywhere for OD = -ln(I/I0), but its minimum is {lo:g} "
            "(zero or negative counts: subtract less dark current, bin pixels, or crop)"
        )


def background_mask(image, margin=5, min_pixels=20):
    """Particle-free pixels of a transmission image: bright pixels away from the particle.

    Parameters
    ----------
    image : numpy.ndarray, shape (ny, nx)
        Mean transmitted intensity over energies (any positive units).
    margin : int
        Only pixels farther than this (px) from any absorbing pixel are kept, so that pixels the particle reaches
        at some energy (drift) are not used.
    min_pixels : int
        Fewest background pixels accepted.

    Returns
    -------
    numpy.ndarray of bool, shape (ny, nx)

    Raises
    ------
    ValueError
        When fewer than ``min_pixels`` particle-free pixels are found.

    Notes
    -----
    The threshold is Otsu's [1]_ on the image; absorbing pixels are dark, so the
    background is the bright class.

    References
    ----------
    .. [1] N. Otsu, IEEE Trans. Syst. Man Cybern. 9, 62 (1979).
    """
    from skimage.filters import threshold_otsu

    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"automatic I0 needs a 2D image of pixels, got shape {image.shape}")
    bg = image > threshold_otsu(image)
    if margin > 0:
        # Euclidean distance to the nearest absorbing pixel must exceed the margin
        bg = ndimage.distance_transform_edt(bg) > margin
    n = int(bg.sum())
    if n < min_pixels:
        raise ValueError(
            f"only {n} particle-free pixels found for the automatic I0 (need {min_pixels}); "
            "the particle may fill the field of view: pass i0 as a number, a spectrum "
            "or a boolean mask of empty pixels"
        )
    return bg


def optical_density(intensity, i0, check=True):
    """Optical density ``OD = -ln(I / I0)``.

    Parameters
    ----------
    intensity : numpy.ndarray or dask.array.Array, shape (..., n_energies)
        Transmitted intensity (counts, or transmission), > 0.
    i0 : float or array_like
        Incident intensity, broadcastable to ``intensity`` (a scalar, a spectrum of
        shape (n_energies,), or a full stack), > 0, same units as ``intensity``.
    check : bool
        Validate ``intensity`` (finite, > 0); pass False only when the caller has
        just done so (it costs a pass over a lazy stack).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        Optical density (dimensionless), float64, a new array.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.spectra import optical_density
    >>> round(float(optical_density(np.array([100.0]), 1000.0)[0]), 4)  # ln(10)
    2.3026
    """
    i0 = np.asarray(i0, dtype=float)
    if not np.all(np.isfinite(i0)) or np.any(i0 <= 0):
        raise ValueError(f"I0 must be finite and > 0 everywhere (minimum {np.nanmin(i0):g})")
    if check:
        check_intensities(intensity)
    if hasattr(intensity, "dask"):
        import dask.array as da

        return -da.log(intensity.astype(float) / i0)
    return -np.log(np.asarray(intensity, dtype=float) / i0)
