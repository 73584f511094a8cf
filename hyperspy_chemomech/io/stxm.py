"""X-ray spectral stacks: NeXus NXstxm files and lists of per-energy images.

Both readers return an :class:`~hyperspy_chemomech.signals.XrayAbsorptionSpectrum`
with layout (y, x | energy), energies in eV (a non-uniform axis when the scan steps
are uneven) and image axes in nm (or the unit asked for).
"""

import numpy as np

from ._files import names_the_file, open_hdf5, regular_positions_nm

_TO_EV = {"eV": 1.0, "ev": 1.0, "keV": 1e3, "kev": 1e3}


def _attr(obj, name, default=None):
    v = obj.attrs.get(name, default)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return [x.decode() if isinstance(x, bytes) else str(x) for x in v]
    return v


def _string(value):
    """A NeXus string: scalar or 1-element array (as MANTiS writes), bytes or str."""
    value = np.asarray(value)
    if value.ndim and value.size == 1:
        value = value.ravel()[0]
    value = value[()] if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _nx_children(group, nx_class):
    return [k for k in group if _attr(group[k], "NX_class") == nx_class]


def _pick(group, nx_class, name, where):
    """The child of ``group`` of class ``nx_class`` called ``name`` (default the first)."""
    found = sorted(_nx_children(group, nx_class))
    if not found:
        raise ValueError(f"{where}: no {nx_class} group")
    if name is None:
        return found[0]
    if name not in found:
        raise ValueError(f"{where}: no {nx_class} {name!r}; found {found}")
    return name


def _axis_order(dgroup, ndim):
    """Names of the data's dimensions from @axes or the *_indices attributes."""
    axes = _attr(dgroup, "axes")
    if isinstance(axes, str):
        axes = [a for a in axes.replace(":", ",").split(",") if a]
    if axes is not None and len(axes) == ndim:
        return [str(a).strip() for a in axes]
    order = [None] * ndim
    for name in ("energy", "sample_y", "sample_x"):
        idx = dgroup.attrs.get(f"{name}_indices")
        if idx is not None and 0 <= int(np.ravel(idx)[0]) < ndim:
            order[int(np.ravel(idx)[0])] = name
    return order


def _positions_nm(ds, name):
    return regular_positions_nm(ds[()], str(_attr(ds, "units", "um")).strip(), name)


@names_the_file
def load_nxstxm(path, entry=None, data_group=None, lazy=False):
    """Read a NeXus NXstxm "sample image stack" (HDF5).

    Parameters
    ----------
    path : str or pathlib.Path
        The HDF5 file.
    entry : str, optional
        NXentry to read; default the first one (alphabetical order).
    data_group : str, optional
        NXdata group in the entry (detector); default the first one.
    lazy : bool
        Return a lazy signal backed by the open file (dask); the file stays open.

    Returns
    -------
    XrayAbsorptionSpectrum
        Counts with layout (y, x | energy); energies in eV (converted from keV
        if so labelled), image axes in nm with offsets at the first sample position.
        The incident-beam monitor ``entry/control/data`` (NXmonitor), when present, is
        stored in ``metadata.Chemomech.nxstxm.control`` (per energy, or per pixel
        and energy) together with the file, entry and group names. It is a relative
        flux monitor, not I0 in the detector's counts: use it to normalise, and let
        :meth:`~hyperspy_chemomech.signals.XrayAbsorptionSpectrum.to_optical_density`
        find I0 from empty pixels. The dwell ``count_time`` of the NXdata group,
        when present, is stored as ``count_time`` (file order) with its units.
        Strings may be scalars or 1-element arrays, bytes or text (nexusformat
        writes the first, MANTiS the second): both read alike.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not an HDF5 file (the message says what it is: text, an image, empty, ...),
        a corrupted one, not an NXstxm image stack (missing energy / sample_x /
        sample_y axes, wrong data rank, mismatched sizes), unknown units or an
        uneven sample grid. Every message names the file.

    References
    ----------
    .. [1] NeXus application definition NXstxm,
       https://manual.nexusformat.org/classes/applications/NXstxm.html

    Examples
    --------
    >>> from hyperspy_chemomech.io import load_nxstxm
    >>> stack = load_nxstxm("particle.hdf5")  # doctest: +SKIP
    >>> od = stack.to_optical_density()  # doctest: +SKIP
    """
    from .._metadata import record
    from ..signals import make_stack

    f = open_hdf5(path, "a NeXus NXstxm file (HDF5)")
    try:
        entry = _pick(f, "NXentry", entry, str(path))
        g = f[entry]
        definition = None
        if "definition" in g:
            definition = _string(g["definition"][()])
        data_group = _pick(g, "NXdata", data_group, f"{path}:{entry}")
        dg = g[data_group]
        signal_name = str(_attr(dg, "signal", "data"))
        if signal_name not in dg:
            raise ValueError(f"{path}:{entry}/{data_group}: no signal dataset {signal_name!r}")
        dset = dg[signal_name]
        if dset.ndim != 3:
            raise ValueError(
                f"{path}:{entry}/{data_group}/{signal_name} has {dset.ndim} dimensions; "
                "an NXstxm 'sample image stack' has 3 (energy, sample_y, sample_x)"
            )
        order = _axis_order(dg, 3)
        if sorted(map(str, order)) != ["energy", "sample_x", "sample_y"]:
            raise ValueError(
                f"{path}:{entry}/{data_group}: axes {order} are not (energy, sample_y, "
                "sample_x) in some order; only 'sample image stack' scans are supported"
            )
        for name in ("energy", "sample_x", "sample_y"):
            if name not in dg:
                raise ValueError(f"{path}:{entry}/{data_group}: missing axis dataset {name!r}")
        e_units = str(_attr(dg["energy"], "units", "eV")).strip()
        if e_units not in _TO_EV:
            raise ValueError(f"energy units {e_units!r} are not eV or keV")
        energies = np.asarray(dg["energy"][()], dtype=float).ravel() * _TO_EV[e_units]
        ys, dy = _positions_nm(dg["sample_y"], "sample_y")
        xs, dx = _positions_nm(dg["sample_x"], "sample_x")
        sizes = {"energy": energies.size, "sample_y": ys.size, "sample_x": xs.size}
        for dim, name in enumerate(order):
            if dset.shape[dim] != sizes[name]:
                raise ValueError(
                    f"data dimension {dim} ({name}) has {dset.shape[dim]} points but the "
                    f"{name} axis {sizes[name]}"
                )
        perm = [order.index(n) for n in ("sample_y", "sample_x", "energy")]
        if lazy:
            import dask.array as da

            data = da.from_array(dset, chunks=dset.chunks or "auto").transpose(perm)
        else:
            data = np.asarray(dset[()]).transpose(perm)
        data = data.astype(float)
        # scan directions: flip reversed axes so that the image axes increase
        if ys[-1] < ys[0]:
            data, ys = data[::-1], ys[::-1]
        if xs[-1] < xs[0]:
            data, xs = data[:, ::-1], xs[::-1]
        if energies.size > 1 and np.all(np.diff(energies) < 0):
            data, energies = data[..., ::-1], energies[::-1]
        title = ""
        if "title" in g:
            title = _string(g["title"][()])
        stack = make_stack(data, energies, pixel_size=(dy, dx), units="nm",
                           title=title or f"{entry}/{data_group}",
                           quantity="Intensity (counts)")
        yax, xax = stack.axes_manager.navigation_axes[::-1]
        yax.offset, xax.offset = float(ys[0]), float(xs[0])
        control = None
        for c in _nx_children(g, "NXmonitor"):
            if "data" in g[c]:
                control = np.asarray(g[c]["data"][()], dtype=float)
                if control.ndim == 3:
                    control = control.transpose(perm)
                break
        stack.metadata.set_item("Chemomech.source.counts", True)
        count_time = count_units = None
        if "count_time" in dg:  # dwell per energy (or per point)
            count_time = np.asarray(dg["count_time"][()], dtype=float)
            count_units = str(_attr(dg["count_time"], "units", "unknown"))
        record(stack, "nxstxm", file=str(path), entry=entry, data_group=data_group,
               definition=definition, control=control, count_time=count_time,
               count_time_units=count_units)
    finally:
        if not lazy:
            f.close()
    return stack


def stack_from_images(images, energies, pixel_size, units="nm", counts=None):
    """Build a stack from one 2D image per energy (e.g. ptychography reconstructions).

    Parameters
    ----------
    images : sequence of 2D arrays (or Signal2D), or array of shape (n, ny, nx)
        One image per energy, all the same shape. Real images are transmitted
        intensities; complex images are transmission functions (exit waves divided by
        the probe), whose squared amplitude is the transmitted intensity fraction, so
        ``OD = -ln|T|^2 = -2 ln|T|`` (after I0 normalisation by
        :meth:`~hyperspy_chemomech.signals.XrayAbsorptionSpectrum.to_optical_density`).
    energies : array_like
        Photon energy (eV) of each image. They are sorted if given out of order;
        duplicates are an error.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in ``units``.
    units : str
        Length unit of the image axes.
    counts : bool, optional
        Whether the intensities are photon counts (Poisson errors apply). Default
        True for real images, False for complex ones.

    Returns
    -------
    XrayAbsorptionSpectrum
        Layout (y, x | energy). For complex input the data are ``|T|^2`` and the phase
        (rad, wrapped to (-pi, pi]) is kept as an (ny, nx, n_energies) array in
        ``metadata.Chemomech.ptychography.phase``.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.io import stack_from_images
    >>> imgs = [np.full((8, 8), 0.5 + 0.1j) for _ in range(3)]
    >>> s = stack_from_images(imgs, [708.0, 709.0, 710.0], pixel_size=10.0)
    >>> s.data.shape
    (8, 8, 3)
    """
    from .._metadata import record
    from ..signals import make_stack

    if isinstance(images, np.ndarray):
        frames = list(images) if images.ndim == 3 else None
    else:
        frames = [np.asarray(getattr(im, "data", im)) for im in images]
    if frames is None or len(frames) == 0:
        raise ValueError("images must be a non-empty list of 2D images or an (n, ny, nx) array")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"all images must be 2D with one shape, got shapes {sorted(shapes)}")
    e = np.asarray(energies, dtype=float).ravel()
    if e.size != len(frames):
        raise ValueError(f"{len(frames)} images but {e.size} energies")
    if not np.all(np.isfinite(e)):
        raise ValueError("energies hold non-finite values")
    order = np.argsort(e, kind="stable")
    if np.any(np.diff(e[order]) == 0):
        raise ValueError("two images share one energy; merge or drop duplicates")
    cube = np.stack([frames[i] for i in order], axis=-1)
    is_complex = np.iscomplexobj(cube)
    if counts is None:
        counts = not is_complex
    if is_complex:
        data = np.abs(cube) ** 2
        phase = np.angle(cube)
    else:
        data = cube.astype(float)
    stack = make_stack(data, e[order], pixel_size=pixel_size, units=units,
                       title="stack from images",
                       quantity="Transmission |T|^2" if is_complex else "Intensity")
    stack.metadata.set_item("Chemomech.source.counts", bool(counts))
    if is_complex:
        record(stack, "ptychography", phase=phase)
    if not np.array_equal(order, np.arange(e.size)):
        record(stack, "stack_from_images", original_order=order)
    return stack
