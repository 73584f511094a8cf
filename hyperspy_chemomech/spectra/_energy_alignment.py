"""Sub-pixel drift between the energy frames of a spectral stack.

Across an absorption edge the contrast inside the particle changes (and can invert:
Fe2+ regions are dark at 708 eV, Fe3+ regions at 710 eV), so frames are not
registered on their grey levels but on their edge-magnitude images (Gaussian
gradient magnitude), which keep the particle's outline at every energy and do not
change sign with the contrast, or on the edge of the particle's saturated outline,
which ignores phase boundaries whose edges come and go with energy (they can pull
the edge-magnitude estimate by ~0.2 px, and a 0.2 px misalignment corrupts the
spectra at the particle's rim and its phase boundaries). Every frame is registered to one common reference
(no chaining, so errors do not accumulate), and the reference is rebuilt from the
aligned frames once more to sharpen it.
"""

import numpy as np
from scipy import ndimage

from .._utils import progressbar, with_one_blas_thread


def edge_image(frame, sigma=1.0):
    """Gaussian gradient magnitude of ``frame`` (NaN replaced by the frame's mean).

    Parameters
    ----------
    frame : numpy.ndarray, shape (ny, nx)
    sigma : float
        Gaussian smoothing (px) before the gradient; suppresses shot noise.

    Returns
    -------
    numpy.ndarray, shape (ny, nx)
    """
    f = np.asarray(frame, dtype=float)
    if not np.all(np.isfinite(f)):
        f = np.where(np.isfinite(f), f, np.nanmean(f))
    return ndimage.gaussian_gradient_magnitude(f, sigma=sigma, mode="nearest")


def outline_image(frame, level=0.15, sigma=0.5):
    """The particle's outline, free of the contrast inside it.

    The frame is referred to its border (vacuum) level, made positive inside
    the particle whatever the contrast sign, and saturated at ``level`` times its
    95th percentile: the interior becomes a plateau, so composition contrast
    that appears and inverts across the absorption edge no longer pulls the
    registration, while the partly covered edge pixels keep the sub-pixel
    position of the outline.

    Parameters
    ----------
    frame : numpy.ndarray, shape (ny, nx)
    level : float
        Saturation level as a fraction of the 95th percentile of the particle signal.
    sigma : float
        Gaussian smoothing (px) against shot noise.

    Returns
    -------
    numpy.ndarray, shape (ny, nx), values in [0, 1]
    """
    f = np.asarray(frame, dtype=float)
    if not np.all(np.isfinite(f)):
        f = np.where(np.isfinite(f), f, np.nanmedian(f))
    border = np.concatenate([f[0], f[-1], f[:, 0], f[:, -1]])
    f = f - np.median(border)
    hi, lo = np.percentile(f, [95, 5])
    if abs(lo) > abs(hi):  # a dark particle (intensity): flip
        f, hi = -f, -lo
    if sigma:
        f = ndimage.gaussian_filter(f, sigma, mode="nearest")
    return np.clip(f / max(level * hi, 1e-12), 0.0, 1.0)


def _features(frame, sigma, features):
    if features == "outline":
        # the outline's own edge: sharp localisation, no internal contrast
        return edge_image(outline_image(frame), sigma)
    return edge_image(frame, sigma)


#: rows per block of a banded filter matrix (its products skip the zeros off the band)
_BAND_BLOCK = 32


def _band_blocks(M):
    """``M`` (r, n) cut into row blocks, each with the column range of its nonzeros."""
    blocks = []
    for lo in range(0, M.shape[0], _BAND_BLOCK):
        rows = slice(lo, min(lo + _BAND_BLOCK, M.shape[0]))
        used = np.flatnonzero(np.any(M[rows] != 0, axis=0))
        cols = slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 1)
        blocks.append((rows, cols, np.ascontiguousarray(M[rows, cols])))
    return blocks


def _apply_banded(blocks, f, axis):
    """``M @ f`` along ``axis`` (1: rows, 2: columns) of frames ``f`` (m, ny, nx)."""
    shape = list(f.shape)
    shape[axis] = blocks[-1][0].stop
    out = np.empty(shape)
    for rows, cols, B in blocks:
        if axis == 1:
            out[:, rows] = np.matmul(B, f[:, cols])
        else:
            out[:, :, rows] = np.matmul(f[:, :, cols], B.T)
    return out


def _edge_images(frames, sigma):
    """:func:`edge_image` of each frame of ``frames`` (m, ny, nx), all at once.

    The separable Gaussian derivative filters along the frames' two axes of the
    whole batch, exactly ``ndimage.gaussian_gradient_magnitude`` per frame (one C
    pass per filter; products with the filters' banded matrices were 2.3x slower
    with OpenBLAS on an AMD EPYC).
    """
    f = np.asarray(frames, dtype=float)
    bad = ~np.isfinite(f)
    if bad.any():
        f = f.copy()
        for k in np.flatnonzero(bad.any(axis=(1, 2))):
            f[k][bad[k]] = np.nanmean(f[k])
    if not float(sigma) > 1e-15:  # ndimage skips a zero-width filter, derivative and all
        return np.sqrt(2.0) * np.abs(f)
    s = float(sigma)

    def g(a, axis, order):
        return ndimage.gaussian_filter1d(a, s, axis=axis, order=order, mode="nearest")

    # d/dy: derivative along y, smoothing along x; d/dx the other way round
    out = g(g(f, 1, 1), 2, 0)
    np.multiply(out, out, out)
    tmp = g(g(f, 1, 0), 2, 1)
    np.multiply(tmp, tmp, tmp)
    out += tmp
    return np.sqrt(out, out)


def _outline_images(frames, level=0.15, sigma=0.5):
    """:func:`outline_image` of each frame of ``frames`` (m, ny, nx), all at once."""
    f = np.array(frames, dtype=float)
    bad = ~np.isfinite(f)
    for k in np.flatnonzero(bad.any(axis=(1, 2))):
        f[k][bad[k]] = np.nanmedian(f[k])
    border = np.concatenate([f[:, 0], f[:, -1], f[:, :, 0], f[:, :, -1]], axis=1)
    f -= np.median(border, axis=1)[:, None, None]
    hi, lo = np.percentile(f.reshape(f.shape[0], -1), [95, 5], axis=1)
    flip = np.abs(lo) > np.abs(hi)  # a dark particle (intensity): flip
    f[flip] *= -1
    hi = np.where(flip, -lo, hi)
    if sigma:
        f = ndimage.gaussian_filter(f, (0.0, sigma, sigma), mode="nearest")
    return np.clip(f / np.maximum(level * hi, 1e-12)[:, None, None], 0.0, 1.0)


def _features_batch(frames, sigma, features):
    """:func:`_features` of each frame of ``frames`` (m, ny, nx)."""
    if features == "outline":
        return _edge_images(_outline_images(frames), sigma)
    return _edge_images(frames, sigma)


def _register_batch(reference_fft, frames_fft, upsample, nx=None):
    """Drift (dy, dx) of frames, given by their FFTs (m, ny, nx), against the reference.

    The algorithm of ``skimage.registration.phase_cross_correlation`` (no
    normalisation, Fourier-space input; Guizar-Sicairos et al. 2008): the integer
    peak of the cross-correlation of every frame from one batched inverse FFT, then
    the ``upsample``-fold matrix-product DFT around it. Given ``nx``, the FFTs are
    real-input half spectra (``rfft2``, (m, ny, nx // 2 + 1)) of real frames ``nx``
    wide: the cross-correlation is then a real inverse FFT of half the size, and
    the full spectrum the DFT needs follows from the half by Hermitian symmetry.
    """
    from scipy.fft import fftfreq, ifftn, irfftn, rfftfreq

    m, ny = frames_fft.shape[:2]
    product = reference_fft[None] * frames_fft.conj()
    if nx is None:
        nx = frames_fft.shape[2]
        cc = np.abs(ifftn(product, axes=(1, 2)))
        conj = product.conj() if upsample > 1 else None
    else:
        cc = np.abs(irfftn(product, s=(ny, nx), axes=(1, 2)))
        conj = product.conj() if upsample > 1 else None
    peak = np.argmax(cc.reshape(m, -1), axis=1)
    shift = np.stack(np.unravel_index(peak, (ny, nx)), axis=1).astype(float)
    for d, n in enumerate((ny, nx)):
        wrap = shift[:, d] > np.trunc(n / 2)
        shift[wrap, d] -= n
    if upsample > 1:
        up = float(upsample)
        shift = np.round(shift * up) / up
        size = int(np.ceil(up * 1.5))
        dftshift = np.trunc(size / 2.0)
        offset = dftshift - shift * up                              # (m, 2)
        ky = np.exp(-2j * np.pi * (np.arange(size)[None, :, None] - offset[:, 0, None, None])
                    * fftfreq(ny, up)[None, None, :])               # (m, size, ny)
        if conj.shape[2] == nx:   # full spectra
            fx, weight = fftfreq(nx, up), None
        else:
            # half spectra of real frames: the cross-correlation is real, and the
            # columns the half leaves out are the conjugates of those it holds, so the
            # sum over all columns is the real part of the half's, each column but the
            # zero and Nyquist ones counted twice (half the products of the full DFT)
            fx = rfftfreq(nx, up)
            weight = np.full(fx.size, 2.0)
            weight[0] = 1.0
            if nx % 2 == 0:
                weight[-1] = 1.0
        kx = np.exp(-2j * np.pi * (np.arange(size)[None, :, None] - offset[:, 1, None, None])
                    * fx[None, None, :])                            # (m, size, nx or nh)
        if weight is not None:
            kx *= weight
        dft = np.matmul(np.matmul(ky, conj), np.swapaxes(kx, 1, 2))
        up_cc = np.abs(dft.real if weight is not None else dft)
        best = np.argmax(up_cc.reshape(m, -1), axis=1)
        shift += (np.stack(np.unravel_index(best, (size, size)), axis=1) - dftshift) / up
    # the shift that moves the frame onto the reference; the content's drift is its opposite
    return -shift


#: frames registered per batch (bounds the memory of the batched FFTs)
REGISTER_BATCH = 32


#: memory (bytes) of the frames a lazy stack computes at once while aligning
LAZY_FRAME_BYTES = 1 << 28


def _frame(stack, k):
    """Frame ``k`` as a float numpy array."""
    return np.asarray(stack[..., k], dtype=float)


def _frame_batches(stack, batch=REGISTER_BATCH):
    """``(lo, frames)`` over the energies: frames ``lo, lo + 1, ...`` as (b, ny, nx) floats.

    A dask stack is computed in batches of whole energy chunks (up to
    ``LAZY_FRAME_BYTES``), each once: frame by frame, every frame would read its
    whole chunk again (a stack chunked along the full energy axis: the whole stack
    per frame).
    """
    ne = stack.shape[-1]
    if not hasattr(stack, "dask"):
        frames = np.moveaxis(stack, -1, 0)
        for lo in range(0, ne, batch):
            yield lo, np.asarray(frames[lo: lo + batch], dtype=float)
        return
    per_frame = 8 * stack.shape[0] * stack.shape[1]
    most = max(1, LAZY_FRAME_BYTES // per_frame)
    bounds = np.cumsum((0,) + stack.chunks[-1])
    lo = 0
    while lo < ne:
        # whole chunks while they fit (at least one frame), else part of one
        fits = bounds[(bounds > lo) & (bounds - lo <= most)]
        hi = int(fits[-1]) if fits.size else min(lo + most, ne)
        block = np.moveaxis(np.asarray(stack[..., lo:hi].compute(), dtype=float), -1, 0)
        for s in range(0, hi - lo, batch):
            yield lo + s, block[s: s + batch]
        lo = hi


def _mean_frame(stack, shifts):
    """NaN-mean over energies of the frames, drift-corrected when ``shifts`` is given."""
    total = np.zeros(stack.shape[:2])
    count = np.zeros(stack.shape[:2])
    for lo, frames in _frame_batches(stack):
        for k, f in enumerate(frames, start=lo):
            if shifts is not None:
                f = _shift_frame(f, shifts[k], 1)
            ok = np.isfinite(f)
            total[ok] += f[ok]
            count += ok
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


#: Smallest frame (px per side) on which a drift between energies is measured.
MIN_ALIGN_SIDE = 16


def _integer_option(name, value, low, high=None):
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    return int(value)


def check_alignment_options(upsample=None, sigma=None, n_iter=None, smooth=None, order=None):
    """Check the options of an energy alignment; a ValueError names the bad one."""
    if upsample is not None:
        _integer_option("upsample", upsample, 1)
    if n_iter is not None:
        _integer_option("n_iter", n_iter, 1)
    if order is not None:
        _integer_option("order", order, 0, 5)
    for name, value in (("sigma", sigma), ("smooth", smooth)):
        if value is None:
            continue
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number >= 0 (px), got {value!r}") from None
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a number >= 0 (px), got {value!r}")


# small BLAS work: one thread (spin-waiting BLAS threads: ~11x slower under load, #16)
@with_one_blas_thread
def estimate_energy_drift(stack, reference="mean", upsample=20, sigma=1.0, n_iter=2,
                          show_progressbar=None, smooth=0.0, features="edges"):
    """Drift (dy, dx) of each energy frame of a stack relative to a reference.

    Parameters
    ----------
    stack : numpy.ndarray, shape (ny, nx, n_energies)
        Optical density (preferred) or intensity frames.
    reference : {"mean"} or int or numpy.ndarray
        ``"mean"``: the mean over energies (rebuilt from the aligned frames for
        ``n_iter`` passes); int: the frame at that index; array (ny, nx): an image.
    upsample : int
        Upsampling factor of the cross-correlation: shifts are resolved to
        ``1/upsample`` px.
    sigma : float
        Smoothing (px) of the edge images.
    n_iter : int
        Passes for ``reference="mean"`` (the first reference is blurred by the drift).
    show_progressbar : bool, optional
    smooth : float
        Width (frames, Gaussian sigma) over which the drift is smoothed along the
        scan. Frames are recorded one after the other and stage drift is smooth in
        time, while each frame's own estimate errs by up to a few tenths of a pixel
        (noise, and edges whose contrast changes across the absorption edge); a
        misalignment of 0.2 px at the particle's edges and phase boundaries
        corrupts their spectra, and so the composition exactly where the strain
        analysis needs it. 0 disables the smoothing.
    features : {"edges", "outline"}
        What is registered: ``"edges"`` (default), the gradient magnitude of each
        frame (:func:`edge_image`), robust to contrast inversions of whole regions
        (0.1 px on the tests' inverting half-particle); ``"outline"``, the edge of
        the particle's saturated outline (:func:`outline_image`), blind to phase
        boundaries whose edges come and go with energy (0.04 px instead of 0.2 px
        on a two-phase particle with domains, see the demo) but biased when a
        whole region's contrast changes near the saturation level.

    Returns
    -------
    numpy.ndarray, shape (n_energies, 2)
        Displacement (dy, dx) in px of each frame's content relative to the
        reference. For ``"mean"`` the shifts are centred (zero mean), for an index
        the shift of that frame is zero.

    References
    ----------
    .. [1] M. Guizar-Sicairos, S. T. Thurman, J. R. Fienup, "Efficient subpixel image
       registration algorithms", Opt. Lett. 33, 156 (2008).
    """
    if not hasattr(stack, "dask"):
        stack = np.asarray(stack)
    if np.iscomplexobj(stack):
        raise TypeError("the stack is complex; optical density and counts are real")
    if stack.ndim != 3:
        raise ValueError(f"need a (ny, nx, n_energies) stack, got shape {stack.shape}")
    ny, nx, ne = stack.shape
    check_alignment_options(upsample=upsample, sigma=sigma, n_iter=n_iter, smooth=smooth)
    if min(ny, nx) < MIN_ALIGN_SIDE:
        raise ValueError(f"the frames are {ny} x {nx} px: drift between energies cannot be "
                         f"measured on frames smaller than {MIN_ALIGN_SIDE} x {MIN_ALIGN_SIDE} px")
    if ne < 2:
        raise ValueError(f"the stack has {ne} energy; aligning needs at least 2 frames")
    if not hasattr(stack, "dask"):
        empty = np.flatnonzero(np.mean(~np.isfinite(stack), axis=(0, 1)) > 0.5)
        if empty.size:
            raise ValueError(f"energy frame(s) {empty.tolist()} are more than half NaN: "
                             "remove them (e.g. with isig) before aligning")
    if isinstance(reference, str):
        if reference != "mean":
            raise ValueError(f"unknown reference {reference!r}; use 'mean', an index or an image")
        ref_img = _mean_frame(stack, None)
    elif np.ndim(reference) == 0:
        idx = int(reference)
        if not -ne <= idx < ne:
            raise ValueError(f"reference index {idx} out of range for {ne} energies")
        ref_img, n_iter = _frame(stack, idx), 1
    else:
        ref_img = np.asarray(reference, dtype=float)
        if ref_img.shape != (ny, nx):
            raise ValueError(
                f"reference image shape {ref_img.shape} does not match the frames {(ny, nx)}"
            )
        n_iter = 1
    from scipy.fft import rfft2

    shifts = np.zeros((ne, 2))
    for it in range(max(1, int(n_iter))):
        if features not in ("outline", "edges"):
            raise ValueError(f"features must be 'outline' or 'edges', got {features!r}")
        ref_fft = rfft2(_features(ref_img, sigma, features))
        batches = progressbar(_frame_batches(stack), total=-(-ne // REGISTER_BATCH),
                              show_progressbar=show_progressbar,
                              desc=f"align energies ({it + 1}/{n_iter})", leave=False)
        for lo, frames in batches:
            feats = _features_batch(frames, sigma, features)
            shifts[lo: lo + len(frames)] = _register_batch(
                ref_fft, rfft2(feats, axes=(1, 2)), int(upsample), nx)
        if isinstance(reference, str):
            shifts -= shifts.mean(axis=0)
            if it + 1 < n_iter:
                ref_img = _mean_frame(stack, shifts)
    if smooth and smooth > 0 and ne > 2:
        shifts = ndimage.gaussian_filter1d(shifts, float(smooth), axis=0, mode="nearest")
    if isinstance(reference, str):
        shifts -= shifts.mean(axis=0)
    elif np.ndim(reference) == 0:
        shifts -= shifts[int(reference)]
    return shifts


def _shift_frame(frame, drift, order):
    """Move ``frame`` by ``-drift`` px; pixels whose source lies outside become NaN."""
    ny, nx = frame.shape
    finite = np.isfinite(frame)
    src = np.where(finite, frame, 0.0)
    out = ndimage.shift(src, -np.asarray(drift), order=order, mode="nearest")
    # a pixel is valid when its source point (y + dy, x + dx) lies inside the frame
    # and no NaN of the input contributes to it
    y = np.arange(ny)[:, None] + drift[0]
    x = np.arange(nx)[None, :] + drift[1]
    inside = (y >= 0) & (y <= ny - 1) & (x >= 0) & (x <= nx - 1)
    if not finite.all():
        # linear weights of NaN neighbours spread through this shifted indicator
        bad = ndimage.shift((~finite).astype(float), -np.asarray(drift), order=1,
                            mode="constant", cval=0.0)
        inside &= bad < 1e-6
    return np.where(inside, out, np.nan)


# small BLAS work: one thread (spin-waiting BLAS threads: ~11x slower under load, #16)
@with_one_blas_thread
def apply_energy_drift(stack, shifts, order=3):
    """Undo a per-frame drift: move each frame by ``-shifts[k]`` px.

    Parameters
    ----------
    stack : numpy.ndarray or dask.array.Array, shape (ny, nx, n_energies)
        A dask stack is corrected lazily (whole frames per chunk, energies chunked).
    shifts : array_like, shape (n_energies, 2)
        Drift (dy, dx) px of each frame, as :func:`estimate_energy_drift` returns.
    order : int
        Spline order of the interpolation (scipy.ndimage.shift), 0..5.

    Returns
    -------
    numpy.ndarray or dask.array.Array, shape (ny, nx, n_energies)
        A new float array. Pixels whose source lies outside the frame (brought in by
        the shift) and pixels touched by NaN inputs are NaN ("no data"), never padded.
    """
    check_alignment_options(order=order)
    if hasattr(stack, "dask"):
        return _apply_energy_drift_lazy(stack, shifts, order)
    stack = np.asarray(stack)
    shifts = np.asarray(shifts, dtype=float)
    if stack.ndim != 3:
        raise ValueError(f"need a (ny, nx, n_energies) stack, got shape {stack.shape}")
    if shifts.shape != (stack.shape[-1], 2):
        raise ValueError(
            f"shifts must have shape ({stack.shape[-1]}, 2), got {shifts.shape}"
        )
    if not np.all(np.isfinite(shifts)):
        raise ValueError("shifts hold non-finite values")
    if order == 3:
        return _CubicShifter(stack)(shifts)
    out = np.empty(stack.shape, dtype=float)
    for k in range(stack.shape[-1]):
        out[..., k] = _shift_frame(stack[..., k], shifts[k], order)
    return out


#: padding (px) of the frames before the spline prefilter, as scipy.ndimage does for
#: mode="nearest" (``_prepad_for_spline_filter``)
_SPLINE_PAD = 12


def _cubic_bspline_weights(t):
    """Weights of the 4 cubic B-spline coefficients at offsets -1..2 for fraction t."""
    return np.array([(1 - t) ** 3, 3 * t ** 3 - 6 * t ** 2 + 4,
                     -3 * t ** 3 + 3 * t ** 2 + 3 * t + 1, t ** 3]) / 6.0


class _CubicShifter:
    """:func:`_shift_frame` with ``order=3`` for every frame of a stack, separably.

    A translation by a cubic spline is separable: the frames are padded (edge
    values) and prefiltered once, all together, as ``scipy.ndimage.shift(...,
    order=3, mode="nearest")`` does for each; both steps are linear, so along each
    axis they are one (n + 2 pad, n) matrix ``Q`` (the prefilter, mode "mirror",
    applied to the padding matrix) and the stack's coefficients are ``Q_y f Q_x^T``,
    two batched matrix products. Each shift of the stack is then a 4-tap filter
    along y and one along x per frame, with the weights of its sub-pixel shift.
    Equal to ``ndimage.shift`` to rounding for drifts smaller than the padding
    (frames that drift farther take ``ndimage.shift`` itself). The coefficients are
    kept, so shifting the same stack again (the iterations of
    :func:`refine_drift_with_model`) costs only the short filters.
    """

    def __init__(self, stack):
        self.stack = stack
        frames = np.moveaxis(np.asarray(stack, dtype=float), -1, 0)   # (ne, ny, nx), a view
        self.finite = np.isfinite(frames)
        self.any_nan = ~self.finite.all(axis=(1, 2))
        src = np.where(self.finite, frames, 0.0) if self.any_nan.any() else frames
        self.frames = np.ascontiguousarray(src)
        ny, nx = self.frames.shape[1:]
        q = [self._padded_prefilter(n) for n in (ny, nx)]
        # the prefiltered, padded frames Q_y f Q_x^T (n + 2 pad square), two matrix products
        self.coef = _apply_banded(q[1], _apply_banded(q[0], self.frames, 1), 2)

    @staticmethod
    def _padded_prefilter(n):
        """(n + 2 pad, n): edge padding by ``_SPLINE_PAD`` then the cubic prefilter.

        As :func:`_band_blocks` of :func:`_apply_banded`: the prefilter's response
        decays as 0.268^distance, so entries below 1e-17 of the largest (beyond ~30
        px) are dropped (rounding-level), and each row block reaches only its band.
        """
        pad = _SPLINE_PAD
        E = np.zeros((n + 2 * pad, n))
        E[np.arange(n + 2 * pad), np.clip(np.arange(n + 2 * pad) - pad, 0, n - 1)] = 1.0
        Q = ndimage.spline_filter1d(E, 3, axis=0, mode="mirror")
        Q[np.abs(Q) < 1e-17 * np.abs(Q).max()] = 0.0
        return _band_blocks(Q)

    def __call__(self, shifts):
        ny, nx, ne = self.stack.shape
        pad = _SPLINE_PAD
        shifts = np.asarray(shifts, dtype=float)
        out = np.empty((ne, ny, nx))
        for k in range(ne):
            dy, dx = float(shifts[k, 0]), float(shifts[k, 1])
            fy, fx = int(np.floor(dy)), int(np.floor(dx))
            if max(abs(fy), abs(fx)) > pad - 3:  # beyond the padding: scipy itself
                out[k] = _shift_frame(self.stack[..., k], shifts[k], 3)
                continue
            # 4-tap filters (one C pass each): correlate1d's output i holds
            # sum_j w_j c[i + j - 2], so the taps from y0 = pad + fy - 1 sit at y0 + 2
            y0, x0 = pad + fy + 1, pad + fx + 1
            rows = ndimage.correlate1d(self.coef[k, y0 - 2: y0 + ny + 2, x0 - 2: x0 + nx + 2],
                                       _cubic_bspline_weights(dy - fy), axis=0)[2: 2 + ny]
            out[k] = ndimage.correlate1d(rows, _cubic_bspline_weights(dx - fx),
                                         axis=1)[:, 2: 2 + nx]
            # valid where the source point lies inside the frame: a rectangle
            o = out[k]
            lo_y, hi_y = int(np.ceil(-dy)), int(np.floor(ny - 1 - dy))
            lo_x, hi_x = int(np.ceil(-dx)), int(np.floor(nx - 1 - dx))
            o[:max(lo_y, 0)] = np.nan
            o[max(hi_y + 1, 0):] = np.nan
            o[:, :max(lo_x, 0)] = np.nan
            o[:, max(hi_x + 1, 0):] = np.nan
            if self.any_nan[k]:  # and no NaN of the input contributes
                bad = ndimage.shift((~self.finite[k]).astype(float), (-dy, -dx), order=1,
                                    mode="constant", cval=0.0)
                o[bad >= 1e-6] = np.nan
        return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def _apply_energy_drift_lazy(data, shifts, order):
    """Lazy drift correction: whole frames per chunk, energies chunked."""
    Y = data.rechunk({0: -1, 1: -1})

    def block(y, block_info=None):
        lo, hi = block_info[0]["array-location"][2]
        return apply_energy_drift(y, shifts[lo:hi], order)

    return Y.map_blocks(block, dtype=float)


def _joint_step(aligned, design, pinv):
    """One Gauss-Newton step of the joint drift + unmixing fit (maps eliminated).

    The model of the aligned stack is ``model_k(r) = sum_j A_kj T_j(r)``; the drift
    enters through the aligned frames ``F_k(r + d_k)``. For fixed drift the maps T
    are a linear least-squares fit (T = pinv(A) F); eliminating them (variable
    projection) leaves a (2 n_E)-parameter problem whose Gauss-Newton matrix is the
    Schur complement ``blockdiag(G_kk) - P o G`` with ``P = A pinv(A)`` (the hat
    matrix of the unmixing) and ``G_kl = sum_r g_k g_l^T``, ``g_k = sum_j A_kj grad T_j``
    (the model frame's gradient). The ``P o G`` term is what frame-by-frame
    registration to the model leaves out: it lets the maps move with the frames,
    so frames dominated by one end member no longer drag that member's map along
    (a weak valley that alternating model / registration rounds crawl along).

    Returns the step (n_E, 2) and the RMS residual.
    """
    ne = aligned.shape[-1]
    K = design.shape[1]
    finite = np.isfinite(aligned)
    valid = np.all(finite, axis=-1)
    Y = aligned if finite.all() else np.where(finite, aligned, 0.0)
    T = Y @ pinv.T                                              # (ny, nx, K)
    # every pixel, the invalid ones with a zero gradient (they add nothing): no gathers
    gT = np.stack(np.gradient(T, axis=(0, 1)), axis=2)          # (ny, nx, 2, K)
    gT[~valid] = 0.0
    r = (Y - T @ design.T).reshape(-1, ne)                      # (npix, nE)
    # J_d^T r: b_na = sum_p sum_k gT_pak A_nk r_pn, through M_(ak)n = sum_p gT_pak r_pn
    gT2 = gT.reshape(-1, 2 * K)
    M = (gT2.T @ r).reshape(2, K, ne)                           # (2, K, nE)
    b = np.einsum("nk,akn->na", design, M).ravel()
    C = (gT2.T @ gT2).reshape(2, K, 2, K)                       # sum_p gT_pai gT_pbj
    G = np.einsum("ki,aibj,lj->kalb", design, C, design)        # (nE, 2, nE, 2)
    P = design @ pinv                                           # (nE, nE) hat matrix
    S = -P[:, None, :, None] * G
    idx = np.arange(ne)
    S[idx, :, idx, :] += G[idx, :, idx, :]
    S = S.reshape(2 * ne, 2 * ne)
    # a common shift of every frame (and of the maps) changes nothing: S is
    # singular along it; the minimum-norm step leaves the mean drift alone
    step = -np.linalg.lstsq(S, b, rcond=1e-10)[0].reshape(ne, 2)
    rr = np.vecdot(r, r)[valid.ravel()]
    return step, float(np.sqrt(rr.sum() / (rr.size * ne)))


#: Convergence tolerance (px) of the drift refinement that ``align_energies(references=...)``
#: runs: Gauss-Newton converges quadratically, so once a step moves no frame by more than
#: 0.1 px the error left is ~0.01 px, at the noise floor of the fit. On the composition
#: benchmark's 128 x 128 x 100 stacks one step from the image estimate gives the
#: converged composition (whole-particle RMS equal to 1e-4) at half the cost.
ALIGN_REFINE_TOL = 0.1


# small (n_energies x n_parameters) least-squares per step: BLAS threads only spin-wait,
# which made it 45-99x slower under load (issue 16)
@with_one_blas_thread
def refine_drift_with_model(stack, shifts, design, n_iter=8, order=3, show_progressbar=None,
                            tol=1e-4, return_shifter=False):
    """Refine drift estimates by a joint fit of the drift and the unmixing model.

    Across an absorption edge no single reference image looks like every frame.
    Once the stack is roughly aligned, the unmixing model (thickness of each end
    member per pixel, times the reference spectra) predicts what every frame
    *should* look like, contrast inversions included. The drift of every frame
    and the end-member maps are fitted together, by least squares on the
    aligned optical density: Gauss-Newton on the drift with the maps, linear in
    the data, eliminated at each step (variable projection [1]_). Registering
    each frame to its own prediction in turn (alternating with the model fit)
    converges slowly: frames dominated by one end member pull that member's map
    along with them, and a misalignment of ~0.05 px between the frames before
    and after the edge survives many rounds, enough to move the composition at
    the particle's rim and its phase boundaries by several per cent. The joint
    step moves frames and maps together and reaches the noise floor in a few
    steps.

    Parameters
    ----------
    stack : numpy.ndarray, shape (ny, nx, n_energies)
        Raw (unaligned) optical density.
    shifts : numpy.ndarray, shape (n_energies, 2)
        Initial drift (px), as :func:`estimate_energy_drift` returns (within a
        fraction of a pixel of the truth).
    design : numpy.ndarray, shape (n_energies, K)
        Reference attenuation spectra on the stack's energies.
    n_iter : int
        Largest number of Gauss-Newton steps (it stops when a step moves no
        frame by more than ``tol`` px).
    order : int
        Spline order of the frame shifts.
    show_progressbar : bool, optional
    tol : float
        Convergence tolerance (px).
    return_shifter : bool
        Also return the function ``shifts -> aligned stack`` (as
        :func:`apply_energy_drift` with ``order``) that keeps the stack's spline
        coefficients, so that the final correction need not compute them again.

    Returns
    -------
    numpy.ndarray, shape (n_energies, 2)
        Refined drift (px), relative to the same frame as ``shifts``; with
        ``return_shifter``, the pair (drift, shifter).

    References
    ----------
    .. [1] G. H. Golub, V. Pereyra, "Separable nonlinear least squares: the
       variable projection method and its applications", Inverse Problems 19,
       R1 (2003).
    """
    out = _refine_drift(stack, shifts, design, n_iter, order, show_progressbar, tol)
    return out if return_shifter else out[0]


@with_one_blas_thread
def _refine_drift(stack, shifts, design, n_iter=8, order=3, show_progressbar=None, tol=1e-4):
    """:func:`refine_drift_with_model`, also returning the function that shifts the
    stack (``shifts -> aligned stack``; for ``order=3`` it keeps the prefiltered stack,
    so the final correction need not prefilter it again)."""
    stack = np.asarray(stack, dtype=float)
    design = np.asarray(design, dtype=float)
    ne = stack.shape[-1]
    if design.shape[0] != ne:
        raise ValueError(f"design has {design.shape[0]} energies, the stack {ne}")
    shifts = np.array(shifts, dtype=float)
    if shifts.shape != (ne, 2):
        raise ValueError(f"shifts must have shape ({ne}, 2), got {shifts.shape}")
    anchor = shifts.copy()
    pinv = np.linalg.pinv(design)  # (K, nE): unconstrained unmixing, enough for a model
    check_alignment_options(order=order)
    # the stack's spline coefficients are computed once for all the steps
    shift = _CubicShifter(stack) if order == 3 else (
        lambda d: apply_energy_drift(stack, d, order))
    for _ in progressbar(range(int(n_iter)), show_progressbar=show_progressbar,
                         desc="refine drift on the model", leave=False):
        step, _ = _joint_step(shift(shifts), design, pinv)
        # Gauss-Newton from a start within a fraction of a pixel; cap wild steps
        big = np.abs(step).max()
        if big > 0.5:
            step *= 0.5 / big
        shifts += step
        if big < tol:
            break
    # keep the reference frame of the initial estimate (its mean or its anchor frame)
    return shifts - (shifts - anchor).mean(axis=0), shift
