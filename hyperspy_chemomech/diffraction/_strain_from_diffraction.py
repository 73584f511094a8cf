"""4D-STEM -> StrainField: disk finding, lattice indexing and a per-pattern fit."""

from contextlib import nullcontext

import numpy as np

from .._metadata import axes_nm
from ..fields import components_from_gradient, detector_to_image
from ._disk_detection import DiskFinder
from ._disk_refine import WindowFitter, estimate_disk_radius, fit_lattices
from ._lattice_fit import (
    N_OUT,
    basis_from_vectors,
    component_variance,
    displacement_gradient,
)

_MAX_MEAN_PATTERNS = 256


def _scan_axes(dp):
    """(ny, nx), (dy, dx) nm and (y0, x0) nm of the scan; raise if uncalibrated."""
    nav = dp.axes_manager.navigation_axes
    if len(nav) != 2 or len(dp.axes_manager.signal_axes) != 2:
        raise ValueError(
            "strain_from_diffraction needs a 4D-STEM signal with 2 navigation (scan) "
            f"and 2 signal (detector) axes; got navigation shape "
            f"{dp.axes_manager.navigation_shape} and signal shape {dp.axes_manager.signal_shape}"
        )
    return axes_nm(nav, "scan")


def _detector_axes(dp):
    """Detector (rows, cols), per-px scale (sy, sx), nominal centre (row, col), unit."""
    kx, ky = dp.axes_manager.signal_axes
    unit = str(kx.units)
    if unit in ("", "<undefined>", "None"):
        unit = "px"
    if str(ky.units) != str(kx.units):
        raise ValueError(f"detector axes have different units: {kx.units!r}, {ky.units!r}")
    for ax in (kx, ky):
        if not getattr(ax, "is_uniform", True) or not ax.scale > 0:
            raise ValueError(f"detector axis {ax.name!r} needs a positive uniform scale")
    shape = (int(ky.size), int(kx.size))
    scale = (float(ky.scale), float(kx.scale))
    # the axes' offsets put k = 0 at the nominal direct beam (pyxem's convention);
    # with zero offsets take the detector centre instead
    center = tuple(-ax.offset / ax.scale if ax.offset != 0 else (ax.size - 1) / 2
                   for ax in (ky, kx))
    return shape, scale, center, unit


# -- reference region --------------------------------------------------------
def _reference_mask(reference, dp, shape):
    """Boolean (ny, nx) mask of the reference region, validated against the scan."""
    ny, nx = shape
    if isinstance(reference, str):
        if reference != "median":
            raise ValueError(f"reference must be 'median', a mask, a ROI or a region; got {reference!r}")
        return np.ones(shape, dtype=bool)
    if hasattr(reference, "__call__") and type(reference).__module__.startswith("hyperspy.roi"):
        import hyperspy.api as hs

        img = hs.signals.Signal2D(np.arange(ny * nx, dtype=float).reshape(ny, nx))
        for dst, src in zip(img.axes_manager.signal_axes, dp.axes_manager.navigation_axes):
            dst.scale, dst.offset, dst.units, dst.name = src.scale, src.offset, src.units, src.name
        try:
            sub = reference(img)
        except ValueError as err:
            raise ValueError(f"reference ROI {reference} lies outside the scan: {err}") from None
        idx = np.asarray(np.ma.filled(sub.data, np.nan), dtype=float).ravel()
        idx = idx[np.isfinite(idx)].astype(int)
        if not len(idx):
            raise ValueError(f"reference ROI {reference} selects no scan position")
        mask = np.zeros(ny * nx, dtype=bool)
        mask[idx] = True
        return mask.reshape(shape)
    if isinstance(reference, tuple) and len(reference) == 2:
        slices = []
        for r, n, name in zip(reference, shape, "yx"):
            if isinstance(r, slice):
                if r.step not in (None, 1):
                    raise ValueError("reference region slices must have step 1")
                start, stop = r.start, r.stop
            elif np.isscalar(r):  # one scan index
                start, stop = int(r), int(r) + 1
            else:
                start, stop = r
            start = 0 if start is None else int(start)
            stop = n if stop is None else int(stop)
            if not 0 <= start < stop <= n:
                raise ValueError(
                    f"reference region {name} {start}:{stop} lies outside the scan "
                    f"(0:{n} along {name}; scan shape (ny, nx) = {shape})"
                )
            slices.append(slice(start, stop))
        mask = np.zeros(shape, dtype=bool)
        mask[tuple(slices)] = True
        return mask
    mask = np.asarray(reference)
    if mask.dtype != bool:
        raise TypeError(
            "reference must be 'median', a boolean (ny, nx) mask, a hyperspy ROI or a "
            f"(y, x) region of two (start, stop) pairs; got {type(reference).__name__}"
        )
    if mask.shape != shape:
        raise ValueError(f"reference mask has shape {mask.shape}, the scan is {shape}")
    if not mask.any():
        raise ValueError("reference mask selects no scan position")
    return mask.copy()


# -- per-pattern work, vectorised over chunks of patterns --------------------------
class _ChunkFit:
    """Every pattern of a chunk: refine the predicted disks' windows, fit the lattice.

    Parameters
    ----------
    fitter : WindowFitter
    to_image : callable
        (..., 2) detector (row, col) px -> image-frame vectors (calibrated).
    hk : numpy.ndarray, shape (n, 2)
        Miller indices of the disks to refine, (0, 0) (the direct beam) first.
    lattice_px, center_px : numpy.ndarray
        The mean pattern's lattice in detector px (2 x 2, columns g1, g2 as
        (row, col)) and beam position (row, col).
    inner : int
        The first ``inner`` disks (the beam and its nearest neighbours) are searched
        for within ``search`` px first; their fit predicts the others.
    """

    def __init__(self, fitter, to_image, hk, lattice_px, center_px, inner, search,
                 tol, min_disks, threshold):
        self.fitter, self.to_image = fitter, to_image
        self.hk = np.asarray(hk, dtype=float)
        self.lattice_px, self.center_px = lattice_px, center_px
        self.inner, self.search = int(inner), int(search)
        self.tol, self.min_disks, self.threshold = tol, min_disks, threshold

    def _predict(self, fits_px, hk):
        """(B, n, 2) px positions of ``hk`` from px-frame fits, the mean lattice where NaN."""
        B = len(fits_px)
        M = fits_px[:, :4].reshape(B, 2, 2)
        c = fits_px[:, 4:6]
        bad = ~np.isfinite(M).all(axis=(1, 2)) | ~np.isfinite(c).all(axis=1)
        M = np.where(bad[:, None, None], self.lattice_px, M)
        c = np.where(bad[:, None], self.center_px, c)
        return c[:, None, :] + np.einsum("bij,nj->bni", M, hk), M, c

    def _accept(self, pos, counts, ncc, M, c, hk):
        """Disks that matched, lie inside the margin and index on their own (h, k)."""
        frac = np.einsum("bij,bnj->bni", np.linalg.inv(M), pos - c[:, None, :])
        return ((ncc > self.threshold) & (counts > 0) & self.fitter.inside(pos)
                & np.all(np.abs(frac - hk) < self.tol, axis=-1))

    def block(self, block):
        """Fit every pattern of a (..., rows, cols) block -> (..., N_OUT)."""
        nav = block.shape[:-2]
        flat = block.reshape((-1,) + block.shape[-2:])
        if not np.isfinite(flat).all():
            flat = np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
        B = len(flat)
        f = self.fitter
        # 1. the beam and its neighbours, searched for around the mean pattern's places
        hk_in = self.hk[:self.inner]
        start = np.broadcast_to(self.center_px + hk_in @ self.lattice_px.T,
                                (B, self.inner, 2))
        pos = f.coarse(flat, start, self.search)
        pos, counts, ncc = f.refine(flat, pos)
        ok = self._accept(pos, counts, ncc, np.broadcast_to(self.lattice_px, (B, 2, 2)),
                          pos[:, 0], hk_in) & (ncc[:, :1] > self.threshold)
        fits_px = fit_lattices(pos, np.where(ok, counts, 0.0), hk_in, min_disks=3)
        # 2. every disk, from the lattice of its own pattern's inner disks
        pred, M, c = self._predict(fits_px, self.hk)
        pos, counts, ncc = f.refine(flat, pred)
        ok = self._accept(pos, counts, ncc, M, c, self.hk)
        w = np.where(ok, counts, 0.0)
        # 3. the lattice in the image frame; re-index with it and fit again
        img = self.to_image(pos)
        fits = fit_lattices(img, w, self.hk, min_disks=self.min_disks)
        Mi = fits[:, :4].reshape(B, 2, 2)
        good = np.isfinite(Mi).all(axis=(1, 2))
        if good.any():
            frac = np.einsum("bij,bnj->bni", np.linalg.inv(np.where(good[:, None, None], Mi,
                                                                    np.eye(2))),
                             img - np.where(good[:, None], fits[:, 4:6], 0.0)[:, None, :])
            keep = np.all(np.abs(frac - self.hk) < self.tol, axis=-1)
            w2 = np.where(good[:, None] & ~keep, 0.0, w)
            if (w2 != w).any():
                fits = fit_lattices(img, w2, self.hk, min_disks=self.min_disks)
        return fits.reshape(nav + (N_OUT,))


def _as_dask(dp, chunk_bytes=32 * 2**20):
    """The data as a dask array with whole patterns per chunk and ~``chunk_bytes`` chunks.

    Lazy data keep their scan chunking where it already holds whole patterns (a
    file's own chunks are the cheap ones to read); only oversized chunks are split.
    """
    import dask.array as da

    data = dp.data
    ny, nx = data.shape[:2]
    per_pattern = max(1, data.shape[2] * data.shape[3] * data.dtype.itemsize)
    n = max(1, chunk_bytes // per_pattern)
    rows = max(1, min(ny, n // max(nx, 1)))
    cols = nx if rows > 1 else max(1, min(nx, n))
    if not isinstance(data, da.Array):
        # name=False: a random key instead of hashing every byte of the data
        return da.from_array(data, chunks=(rows, cols, -1, -1), name=False)
    if len(data.chunks[2]) > 1 or len(data.chunks[3]) > 1:
        data = data.rechunk({2: -1, 3: -1})
    biggest = max(data.chunks[0]) * max(data.chunks[1]) * per_pattern
    if biggest > 8 * chunk_bytes:
        data = data.rechunk((rows, cols, -1, -1))
    return data


def _mean_pattern_positions(mask, chunks, most=_MAX_MEAN_PATTERNS):
    """Up to ``most`` reference positions, taken from as few scan chunks as possible.

    The mean pattern only seeds the beam position and the basis; reading a few
    chunks instead of every chunk the reference region touches keeps that step
    cheap for file-backed data.
    """
    ys, xs = np.nonzero(mask)
    edges = [np.cumsum((0,) + tuple(c)) for c in chunks]
    cid = (np.searchsorted(edges[0], ys, side="right") - 1) * len(chunks[1]) \
        + np.searchsorted(edges[1], xs, side="right") - 1
    ids, counts = np.unique(cid, return_counts=True)
    keep, total = [], 0
    for i in ids[np.argsort(-counts, kind="stable")]:
        keep.append(i)
        total += counts[ids == i][0]
        if total >= min(most, len(ys)):
            break
    sel = np.isin(cid, keep)
    ys, xs = ys[sel], xs[sel]
    if len(ys) > most:
        pick = np.linspace(0, len(ys) - 1, most).round().astype(int)
        ys, xs = ys[pick], xs[pick]
    return ys, xs


def _chunk_fit(mean, beam_px, g, Q, scale, det_shape, radius, to_image, tol, min_disks,
               threshold):
    """The per-chunk work: the disks the mean pattern shows, as (h, k) of its lattice.

    ``g`` rows are the basis g-vectors in the image frame (calibrated); ``beam_px``
    the mean pattern's beam (row, col).
    """
    sy, sx = scale
    g_det = g @ Q  # rows (gkx, gky): g_img = g_det @ Q.T, Q orthogonal
    lattice_px = np.column_stack([[gd[1] / sy, gd[0] / sx] for gd in g_det])  # (row, col)
    fitter = WindowFitter(det_shape, radius)
    # every (h, k) whose window lies on the detector ...
    shortest = min(np.hypot(*lattice_px[:, 0]), np.hypot(*lattice_px[:, 1]))
    n = int(np.ceil(np.hypot(*det_shape) / max(shortest, 1e-9))) + 1
    h, k = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    hk = np.column_stack([h.ravel(), k.ravel()]).astype(float)
    pred = np.asarray(beam_px, float) + hk @ lattice_px.T
    on = fitter.inside(pred)
    hk, pred = hk[on], pred[on]
    # ... and shows a disk in the mean pattern (the beam always kept)
    _, counts, ncc = fitter.refine(mean[None], pred[None])
    keep = ((ncc[0] > threshold) & (counts[0] > 0)) | np.all(hk == 0, axis=1)
    hk, pred = hk[keep], pred[keep]
    order = np.argsort(np.hypot(*(pred - beam_px).T), kind="stable")  # the beam first
    hk = hk[order]
    if not np.all(hk[0] == 0):
        raise ValueError("the direct beam lies outside the detector margin")
    inner = min(len(hk), 9)
    search = max(3, int(np.ceil(radius)))
    return _ChunkFit(fitter, to_image, hk, lattice_px, np.asarray(beam_px, float), inner,
                     search, tol, min_disks, threshold)


def strain_from_diffraction(dp, reference="median", disk_radius=None, basis=None,
                            scan_rotation=0.0, flip=False, threshold=0.3, tol=0.25,
                            min_disks=4, show_progressbar=None):
    """Strain and rotation maps from 4D-STEM (nano-beam) diffraction data.

    Once, on the mean pattern of the reference region: find the Bragg disks by
    template matching with a disk, pick the lattice and list the disks it shows.
    Then for every pattern, a whole chunk of patterns at a time: refine each
    listed disk to sub-pixel precision in a small window around its predicted
    place (a Poisson-weighted least-squares fit of the pixel-integrated disk), and
    fit the lattice *and* the direct-beam position
    (``p = M (h, k) + c``, weighted by disk intensity) by least squares over all
    indexed disks. The fitted lattices are compared with the reference lattice
    (the element-wise median of the lattices in the reference region) and turned
    into the real-space displacement gradient ``H = inv(M inv(M_ref)).T - I``.

    Parameters
    ----------
    dp : hyperspy Signal2D (pyxem Diffraction2D / ElectronDiffraction2D), lazy or not
        4D-STEM data ``(x, y | kx, ky)``; the scan axes must be calibrated in a
        length unit (nm, µm, Å). The detector axes may be calibrated (1/Å, 1/nm:
        the reference lattice is then reported in that unit) or not (px).
        Offsets of the detector axes that put k = 0 at the direct beam are used
        as the starting beam position; each pattern's beam is then fitted.
    reference : "median", bool array (ny, nx), hyperspy ROI or (y, x) region
        Where the lattice is taken as strain free: the median over all fitted
        patterns, a mask, a ROI on the scan (calibrated units), or a region
        ``((y0, y1), (x0, x1))`` of scan indices (stop exclusive; slices, or single
        indices ``(y, x)`` for one pattern, also work).
    disk_radius : float, optional
        Bragg disk radius (detector px). Default: estimated from the patterns read
        for the mean pattern (the brightest disk near k = 0, each pattern measured
        about its own disk); the value used is reported in the metadata
        (``disk_radius``, with ``disk_radius_estimated``).
    basis : array_like, shape (2, 2), optional
        Two reciprocal basis vectors as rows ``(gx, gy)`` in the detector axes'
        calibrated units (detector frame, before ``scan_rotation``). Default: the
        two shortest non-collinear disk vectors of the reference region's mean
        pattern, reduced. The first basis vector names the crystal axis whose
        angle is reported.
    scan_rotation : float
        Angle (rad) of the detector's kx (column) axis in the image frame, measured
        from +x toward +y; 0 when detector columns/rows run along scan x/y.
    flip : bool
        The detector's ky axis is mirrored relative to scan y (applied before the
        rotation).
    threshold : float
        Minimum normalised cross-correlation of a disk with the template (0..1).
    tol : float
        Indexing tolerance: fractional Miller indices within ``tol`` of integers.
    min_disks : int
        Patterns with fewer indexed disks (direct beam included) give NaN.
    show_progressbar : bool, optional
        Default: HyperSpy's preference.

    Returns
    -------
    StrainField
        e11, e22, e12 (tensor shear), theta (rad) in the image frame, x = scan
        column axis, y = scan row axis, pixel size in nm; NaN where a fit failed;
        per-pixel variance from the fit residuals in
        ``metadata.Signal.Noise_properties.variance``. ``metadata.Chemomech.
        strain_from_diffraction`` holds the reference lattice (columns g1, g2 in
        the image frame), its unit, the crystal angle (rad, +x toward +y, of the
        real-space axis a1 dual to g1), the number of disks per pattern, the
        direct-beam position per pattern and the parameters;
        ``metadata.Chemomech.frame`` the crystal frame (the angle of a1, taken
        as [100], and whether (a1, a2) are mirrored), used by
        ``learn_eigenstrain`` and ``decompose`` when no angle is given.

    Raises
    ------
    ValueError
        Wrong dimensionality, uncalibrated scan axes, a reference region outside
        the scan, no disks found, no lattice fitted in the reference region.

    Notes
    -----
    All patterns are processed in one pass of ``dask.array.map_blocks`` over scan
    chunks (lazy data stay lazy: memory is bounded by a few chunks); the work per
    pattern is that of its disk windows, vectorised over the chunk. The beam and
    its eight nearest disks are searched for within ``max(3, disk_radius)`` px of
    their places in the mean pattern; their fit predicts the other disks, so a
    pattern whose first disks moved farther than that (large strain or descan
    against the reference region) is not followed. Disk positions are converted
    to the image frame before fitting, so the result needs no further rotation.
    Conventions: see the diffraction guide page.

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import synthetic_4dstem
    >>> from hyperspy_chemomech.diffraction import strain_from_diffraction
    >>> dp, truth = synthetic_4dstem(scan_shape=(6, 6), signal_type="")
    >>> sf = strain_from_diffraction(dp, show_progressbar=False)  # disk radius estimated
    >>> sf.data.shape
    (4, 6, 6)
    """
    import dask
    from dask.diagnostics import ProgressBar

    from .._metadata import record
    from .._utils import show_progressbar_default
    from ..signals import StrainField

    scan_shape, (dy, dx), (y0, x0) = _scan_axes(dp)
    det_shape, (sy, sx), (r0, c0), kunit = _detector_axes(dp)
    ref_mask = _reference_mask(reference, dp, scan_shape)
    Q = detector_to_image(scan_rotation, flip)

    def to_image(rc):
        rc = np.asarray(rc, dtype=float)
        g_det = np.stack([(rc[..., 1] - c0) * sx, (rc[..., 0] - r0) * sy], axis=-1)
        return (g_det @ Q.T).reshape(rc.shape[:-1] + (2,) if rc.ndim > 1 else (1, 2))

    data = _as_dask(dp)

    # mean pattern of the reference region: the starting beam position and basis
    ys, xs = _mean_pattern_positions(ref_mask, data.chunks[:2])
    picked = data.vindex[ys, xs]
    estimated = disk_radius is None
    if estimated:
        # up to 64 of those patterns, each measured about its own beam (a mean
        # pattern blurs with descan); one read of the chunks for both
        pick = np.linspace(0, len(ys) - 1, min(len(ys), 64)).round().astype(int)
        mean, sample = dask.compute(picked.mean(axis=0), picked[pick])
        disk_radius = estimate_disk_radius(sample, (r0, c0))
        del sample
    else:
        mean = picked.mean(axis=0).compute()
    mean = np.asarray(mean, dtype=float)
    finder = DiskFinder(det_shape, disk_radius, threshold=threshold)
    pos, counts = finder.find(mean)
    if len(pos) == 0:
        raise ValueError(
            "no Bragg disks found in the mean pattern of the reference region "
            f"(disk_radius={disk_radius} px, threshold={threshold}); check both"
        )
    # the basis and the beam come from the strong disks only: on a diffuse
    # background the normalised match also fires on faint bumps
    top = np.sort(counts)[::-1][:10]
    strong = counts >= 0.1 * np.median(top)
    vec, counts = to_image(pos[strong]), counts[strong]
    # the direct beam: a bright disk (>= half the brightest) nearest to k = 0
    bright = np.flatnonzero(counts >= 0.5 * counts.max())
    beam = bright[np.argmin(np.hypot(*vec[bright].T))]  # vectors are relative to k = 0
    center = vec[beam]
    if basis is None:
        others = np.delete(vec, beam, axis=0) - center
        g = basis_from_vectors(others)
    else:
        g = np.asarray(basis, dtype=float)
        if g.shape != (2, 2) or not np.isfinite(g).all():
            raise ValueError(f"basis must be two finite g-vectors, shape (2, 2); got {g.shape}")
        if abs(np.linalg.det(g)) < 1e-12 * (g**2).sum():
            raise ValueError("basis vectors are collinear")
        g = g @ Q.T
    work = _chunk_fit(mean, pos[strong][beam], g, Q, (sy, sx), det_shape, disk_radius,
                      to_image, tol, min_disks, threshold)

    fits = data.map_blocks(work.block, dtype=float, drop_axis=(2, 3), new_axis=2,
                           chunks=data.chunks[:2] + ((N_OUT,),))
    show = show_progressbar_default(show_progressbar)
    with ProgressBar() if show else nullcontext():
        fits = fits.compute(scheduler=dask.config.get("scheduler", "threads"))

    lattices = fits[..., :4].reshape(scan_shape + (2, 2))
    ok = np.isfinite(lattices).all(axis=(-2, -1))
    if not ok.any():
        raise ValueError(
            "no Bragg disks found: no pattern had the "
            f"{min_disks} indexed disks a lattice fit needs (disk_radius={disk_radius} px, "
            f"threshold={threshold}, tol={tol})"
        )
    ref_ok = ok & ref_mask
    if not ref_ok.any():
        raise ValueError("no pattern in the reference region could be fitted; "
                         "choose a region inside the particle")
    m_ref = np.median(lattices[ref_ok], axis=0)
    H = displacement_gradient(lattices, m_ref)
    comps = components_from_gradient(H)
    var = component_variance(fits, m_ref)
    var[:, ~ok] = np.nan

    sf = StrainField.from_components(*comps, scale=(dy, dx), units="nm",
                                     offset=(y0, x0), variance=var)
    a_real = np.linalg.inv(m_ref).T  # columns a1, a2 (real space, 1/unit)
    record(
        sf, "strain_from_diffraction",
        reference_lattice=m_ref, reference_lattice_units=kunit,
        crystal_angle=float(np.arctan2(a_real[1, 0], a_real[0, 0])),
        reference=str(reference) if isinstance(reference, str) else type(reference).__name__,
        reference_mask=ref_mask, disk_radius=float(disk_radius),
        disk_radius_estimated=bool(estimated),
        scan_rotation=float(scan_rotation), flip=bool(flip), threshold=float(threshold),
        tol=float(tol), min_disks=int(min_disks),
        n_disks=fits[..., 11].astype(int), beam_center=fits[..., 4:6],
        frame="image: x = scan column axis, y = scan row axis",
    )
    # the frame travels with the data (metadata.Chemomech.frame): learning and
    # decomposition take [100] from here when no crystal_angle is given
    from .._metadata import set_frame

    set_frame(sf, float(np.arctan2(a_real[1, 0], a_real[0, 0])),
              source="diffraction: the real-space axis a1 dual to g1, taken as [100]",
              mirrored=bool(np.linalg.det(a_real) < 0), reader="strain_from_diffraction")
    sf.metadata.General.title = "Strain from diffraction"
    return sf
