"""Per-pattern disk work vectorised over chunks of patterns: windows, sub-pixel fit, lattice.

Plain numpy. The lattice and the disks' Miller indices are found once (from the
mean pattern); every pattern then only refines the few small windows around the
disks that lattice predicts, for a whole chunk of patterns at a time:

1. gather the windows of every (pattern, disk) pair of a chunk with one fancy
   index;
2. fit each window by linear least squares with the pixel-integrated disk model
   ``d = A T(phi + delta) + b`` linearised about the nearest of ``K x K`` tabulated
   sub-pixel phases ``phi`` (unknowns ``A, b, A delta_y, A delta_x``): the
   pseudo-inverse of each phase's design matrix is tabulated once per radius, so a
   fit step is one small matrix-vector product per disk, re-anchored and repeated;
3. fit every pattern's lattice ``p = M (h, k) + c`` by weighted least squares,
   batched over the chunk.

The model fit weighs the disk edges, where the position information is; the
intensity centroid weighs every pixel of the disk alike and so carries the Poisson
noise of the flat interior too.
"""

from functools import lru_cache

import numpy as np

from ._lattice_fit import N_OUT

#: sub-pixel phases tabulated per axis
_K = 16
#: relative variance floor of the fit weights (see ``_tables``)
_FLOOR = 0.02


def _window_offsets(radius):
    """Integer (dy, dx) offsets of a disk's fitting window: a circle of ``radius + 1.5``."""
    h = int(np.ceil(radius + 1.5))
    dy, dx = np.mgrid[-h:h + 1, -h:h + 1]
    inside = dy**2 + dx**2 <= (radius + 1.5) ** 2
    return dy[inside], dx[inside], h


@lru_cache(maxsize=8)
def _tables(radius, k=_K, supersample=24, n_boundary=4096, floor=_FLOOR):
    """Fit tables of a disk of ``radius`` px for ``k x k`` sub-pixel phases.

    Returns ``(dy, dx, h, phases, table, area)``: the window offsets, the half-width,
    the phase grid (k,), ``table`` (k, k, 5, P) whose rows 0-3 are the
    pseudo-inverse of ``[T, 1, dT/dphi_y, dT/dphi_x]`` (so ``table[i, j, :4] @ d``
    gives ``A, b, A delta_y, A delta_x``) and row 4 the centred, unit-norm model
    (its dot product with a window is the normalised cross-correlation times the
    window's norm), and ``area`` (k, k): the model's sum (the disk area in px).
    """
    dy, dx, h = _window_offsets(radius)
    phases = -0.5 + (np.arange(k) + 0.5) / k
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    P = len(dy)
    py, px = np.meshgrid(phases, phases, indexing="ij")
    py, px = py.ravel(), px.ravel()  # (k*k,)
    # pixel-integrated coverage, by supersampling each pixel
    yy = (dy[:, None] + sub[None, :])  # (P, S)
    xx = (dx[:, None] + sub[None, :])
    r2 = radius**2
    ay = (yy[None] - phases[:, None, None]) ** 2  # (k, P, S): one row of phases
    ax = (xx[None] - phases[:, None, None]) ** 2
    T = np.empty((k, k, P))
    for i in range(k):
        T[i] = ((ay[i][None, :, :, None] + ax[:, :, None, :]) <= r2).mean(axis=(2, 3))
    T = T.reshape(k * k, P)
    # derivative of each pixel's coverage with respect to the disk centre: the
    # outward normal integrated along the part of the rim inside the pixel
    theta = (np.arange(n_boundary) + 0.5) * (2 * np.pi / n_boundary)
    ny_, nx_ = np.sin(theta), np.cos(theta)
    ds = radius * 2 * np.pi / n_boundary
    lut = -np.ones((2 * h + 1, 2 * h + 1), dtype=np.int64)
    lut[dy + h, dx + h] = np.arange(P)
    Dy = np.zeros((k * k, P))
    Dx = np.zeros((k * k, P))
    for i in range(k * k):
        ry = np.rint(py[i] + radius * ny_).astype(int) + h
        rx = np.rint(px[i] + radius * nx_).astype(int) + h
        idx = lut[ry, rx]
        ok = idx >= 0
        Dy[i] = np.bincount(idx[ok], weights=ny_[ok] * ds, minlength=P)
        Dx[i] = np.bincount(idx[ok], weights=nx_[ok] * ds, minlength=P)
    X = np.stack([T, np.ones_like(T), Dy, Dx], axis=-1)  # (kk, P, 4)
    # Poisson weights 1 / (T + floor), the variance of a disk without background
    # up to the factor A: the estimate stays linear in the data (unbiased for any
    # weights); the floor keeps empty pixels from dominating
    sw = 1.0 / np.sqrt(T + floor)
    pinv = np.linalg.pinv(X * sw[..., None]) * sw[:, None, :]  # (kk, 4, P)
    Tc = T - T.mean(axis=1, keepdims=True)
    Tn = Tc / np.linalg.norm(Tc, axis=1, keepdims=True)
    table = np.concatenate([pinv, Tn[:, None, :]], axis=1).reshape(k, k, 5, P)
    return dy, dx, h, phases, table, T.sum(axis=1).reshape(k, k)


@lru_cache(maxsize=1)
def _numba_refine():
    """The window fit compiled with numba (pyxem brings it), or None without numba.

    Imported on first use; the same arithmetic as :meth:`WindowFitter._refine_numpy`,
    one disk at a time without temporaries.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba comes with pyxem
        return None

    @numba.njit(cache=True, nogil=True)
    def refine(flat, pos, offs, table, phases, area, margin, rows, cols, n_iter):
        m_count = pos.shape[0]
        k = phases.shape[0]
        P = offs.shape[0]
        counts = np.zeros(m_count)
        ncc = np.zeros(m_count)
        out = pos.copy()
        u = np.zeros(5)
        for m in range(m_count):
            b = m // (out.shape[0] // flat.shape[0])
            py, px = out[m, 0], out[m, 1]
            A = 0.0
            idx = 0
            base = 0
            for _ in range(n_iter):
                r0 = min(max(np.rint(py), margin), rows - 1 - margin)
                c0 = min(max(np.rint(px), margin), cols - 1 - margin)
                iy = min(max(int(np.floor((py - r0 + 0.5) * k)), 0), k - 1)
                ix = min(max(int(np.floor((px - c0 + 0.5) * k)), 0), k - 1)
                idx = iy * k + ix
                base = int(r0) * cols + int(c0)
                for j in range(5):
                    u[j] = 0.0
                for p in range(P):
                    v = flat[b, base + offs[p]]
                    for j in range(5):
                        u[j] += table[idx, j, p] * v
                A = u[0]
                if A > 0:
                    dy = min(max(u[2] / A, -1.0), 1.0)
                    dx = min(max(u[3] / A, -1.0), 1.0)
                    py = r0 + phases[iy] + dy
                    px = c0 + phases[ix] + dx
            out[m, 0], out[m, 1] = py, px
            if A > 0:
                counts[m] = A * area[idx]
            s1 = 0.0
            s2 = 0.0
            for p in range(P):
                v = flat[b, base + offs[p]]
                s1 += v
                s2 += v * v
            var = s2 - s1 * s1 / P
            if var > 0:
                ncc[m] = u[4] / np.sqrt(var)
        return out, counts, ncc

    return refine


class WindowFitter:
    """Sub-pixel disk positions in chunks of patterns (see the module notes).

    Parameters
    ----------
    shape : (int, int)
        Detector shape (rows, columns).
    radius : float
        Disk radius (px).
    """

    def __init__(self, shape, radius):
        if not np.isfinite(radius) or radius <= 0:
            raise ValueError(f"disk_radius must be a positive number of pixels, got {radius}")
        self.shape = tuple(int(n) for n in shape)
        self.radius = float(radius)
        (self._dy, self._dx, self.half, self._phases, self._table,
         self._area) = _tables(round(float(radius), 3))  # 1e-3 px: shared tables
        self.margin = self.half + 1
        self._k = len(self._phases)
        self.use_numba = True

    def inside(self, pos):
        """Whether a window centred at ``pos`` (..., 2) px lies inside the detector margin."""
        m = self.margin
        return ((pos[..., 0] >= m) & (pos[..., 0] <= self.shape[0] - 1 - m)
                & (pos[..., 1] >= m) & (pos[..., 1] <= self.shape[1] - 1 - m))

    def _anchor(self, pos):
        m = self.margin
        r0 = np.clip(np.rint(pos[..., 0]), m, self.shape[0] - 1 - m).astype(np.intp)
        c0 = np.clip(np.rint(pos[..., 1]), m, self.shape[1] - 1 - m).astype(np.intp)
        return r0, c0

    def coarse(self, block, pos, search):
        """Integer positions of the best disk-sized box sum within ``search`` px of ``pos``.

        ``block`` (B, rows, cols), ``pos`` (B, n, 2) px; returns (B, n, 2) floats.
        """
        q = max(1, int(round(self.radius)))
        s = int(search)
        r0, c0 = self._anchor(pos)
        off = np.arange(-s - q, s + q + 1)
        L = len(off)
        rows = np.clip(r0[..., None] + off, 0, self.shape[0] - 1)  # (B, n, L)
        cols = np.clip(c0[..., None] + off, 0, self.shape[1] - 1)
        b = np.arange(len(block))[:, None, None, None]
        win = block[b, rows[..., :, None], cols[..., None, :]]  # (B, n, L, L)
        cs = np.zeros(win.shape[:2] + (L + 1, L + 1))
        cs[..., 1:, 1:] = win.cumsum(-1).cumsum(-2)
        w = 2 * q + 1
        box = cs[..., w:, w:] - cs[..., :-w, w:] - cs[..., w:, :-w] + cs[..., :-w, :-w]
        flat = box.reshape(box.shape[:2] + (-1,)).argmax(-1)
        iy, ix = np.divmod(flat, box.shape[-1])
        return np.stack([r0 + iy - s, c0 + ix - s], axis=-1).astype(float)

    def refine(self, block, pos, n_iter=3):
        """Fit every window; returns ``pos`` (B, n, 2) px, ``counts`` and ``ncc`` (B, n).

        ``block`` (B, rows, cols), ``pos`` (B, n, 2) starting positions (px).
        ``counts`` is the fitted disk intensity (``A`` times the disk area, the
        background removed), ``ncc`` the normalised cross-correlation of the window
        with the fitted model (0 for a flat window). Compiled with numba where it
        is installed, else vectorised numpy (the same numbers to rounding).
        """
        kernel = _numba_refine() if self.use_numba else None
        if kernel is None:
            return self._refine_numpy(block, pos, n_iter)
        B, n = pos.shape[:2]
        rows, cols = block.shape[-2:]
        flat = np.ascontiguousarray(block.reshape(B, rows * cols))
        if flat.dtype not in (np.float32, np.float64):
            flat = flat.astype(float)
        k = self._k
        offs = (self._dy * cols + self._dx).astype(np.int64)
        out, counts, ncc = kernel(flat, np.ascontiguousarray(pos, dtype=float).reshape(B * n, 2),
                                  offs, self._table.reshape(k * k, 5, -1), self._phases,
                                  self._area.ravel(), self.margin, rows, cols, int(n_iter))
        return out.reshape(B, n, 2), counts.reshape(B, n), ncc.reshape(B, n)

    def _refine_numpy(self, block, pos, n_iter=3):
        """:meth:`refine` in vectorised numpy."""
        B, n = pos.shape[:2]
        k = self._k
        rows, cols = block.shape[-2:]
        flat = block.reshape(B, rows * cols)
        if flat.dtype.kind != "f":
            flat = flat.astype(float)
        offs = self._dy * cols + self._dx  # (P,) flat offsets of the window
        base_b = (np.arange(B) * (rows * cols))[:, None]
        table = self._table.reshape(k * k, 5, -1).astype(flat.dtype, copy=False)
        pos = np.array(pos, dtype=float)
        for _ in range(n_iter):
            r0, c0 = self._anchor(pos)
            lin = (base_b + r0 * cols + c0).ravel()
            win = flat.ravel()[lin[:, None] + offs]  # (B n, P)
            ph = pos.reshape(-1, 2) - np.column_stack([r0.ravel(), c0.ravel()])
            iph = np.clip(np.floor((ph + 0.5) * k).astype(np.intp), 0, k - 1)
            tab = table[iph[:, 0] * k + iph[:, 1]]  # (B n, 5, P)
            u = np.einsum("mkp,mp->mk", tab, win).astype(float)
            A = u[:, 0]
            safe = np.where(A > 0, A, 1.0)
            delta = np.clip(u[:, 2:4] / safe[:, None], -1.0, 1.0)
            new = np.column_stack([r0.ravel() + self._phases[iph[:, 0]],
                                   c0.ravel() + self._phases[iph[:, 1]]]) + delta
            pos = np.where((A > 0)[:, None], new, pos.reshape(-1, 2)).reshape(B, n, 2)
        counts = np.where(A > 0, A * self._area.ravel()[iph[:, 0] * k + iph[:, 1]], 0.0)
        win = win.astype(float)
        s1 = win.sum(-1)
        var = np.maximum((win * win).sum(-1) - s1 * s1 / win.shape[-1], 0.0)
        ok = var > 0
        ncc = np.where(ok, u[:, 4] / np.sqrt(np.where(ok, var, 1.0)), 0.0)
        return pos, counts.reshape(B, n), ncc.reshape(B, n)


def fit_lattices(pos, weights, hk, min_disks=4):
    """Weighted least squares ``p = M (h, k) + c`` per pattern, batched.

    Parameters
    ----------
    pos : numpy.ndarray, shape (B, n, 2)
        Disk positions (any frame); ignored where ``weights`` is 0.
    weights : numpy.ndarray, shape (B, n)
        Inverse-variance weights (disk counts); 0 drops a disk.
    hk : numpy.ndarray, shape (n, 2)
        Miller indices of the disks.
    min_disks : int
        Fewer disks (or a degenerate set) gives NaN.

    Returns
    -------
    numpy.ndarray, shape (B, 12)
        As :func:`~hyperspy_chemomech.diffraction._lattice_fit.fit_lattice`.
    """
    B, n = weights.shape
    w = np.where(weights > 0, weights, 0.0)
    cnt = (w > 0).sum(1)
    mean_w = w.sum(1) / np.maximum(cnt, 1)
    w = w / np.where(mean_w > 0, mean_w, 1.0)[:, None]  # as fit_lattice: mean weight 1
    X = np.column_stack([hk, np.ones(n)])  # (n, 3)
    p = np.where(w[..., None] > 0, pos, 0.0)
    XtWX = np.einsum("bn,ni,nj->bij", w, X, X)
    XtWp = np.einsum("bn,ni,bnd->bid", w, X, p)
    lam = np.linalg.eigvalsh(XtWX)
    good = (cnt >= min_disks) & (lam[:, 0] > 1e-12 * np.maximum(lam[:, -1], 1e-300))
    XtWX[~good] = np.eye(3)
    beta = np.linalg.solve(XtWX, XtWp)  # (B, 3, 2)
    resid = pos - np.einsum("ni,bid->bnd", X, beta)
    dof = cnt - 3
    s2 = np.einsum("bn,bnd->bd", w, np.where(w[..., None] > 0, resid, 0.0) ** 2)
    s2 = s2 / np.where(dof > 0, dof, 1)[:, None]
    s2[dof <= 0] = np.nan
    cov = np.linalg.inv(XtWX)
    out = np.full((B, N_OUT), np.nan)
    out[:, :4] = np.swapaxes(beta[:, :2, :], 1, 2).reshape(B, 4)  # M rows: x, y
    out[:, 4:6] = beta[:, 2]
    out[:, 6:8] = s2
    out[:, 8], out[:, 9], out[:, 10] = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    out[~good, :11] = np.nan
    out[:, 11] = cnt
    return out


def estimate_disk_radius(patterns, center, search=None):
    """Disk radius (px) from a sample of patterns, each measured about its own disk.

    Parameters
    ----------
    patterns : numpy.ndarray, shape (n, rows, cols)
        A sample of patterns.
    center : (float, float)
        Nominal direct-beam position (row, column) px; the disk measured is the
        brightest of the sample's mean pattern within ``search`` px of it (default a
        quarter of the smaller detector side): the direct beam, or a Bragg disk as
        bright (in nano-beam diffraction every disk is the probe's).

    Returns
    -------
    float
        The radius of a uniform disk holding the disk's counts at its plateau
        intensity, ``sqrt(N / (pi I))``, ``N`` and ``I`` summed over the patterns (a
        pixel-integrated disk of radius ``r`` holds ``pi r**2 I`` counts).

    Notes
    -----
    The mean pattern (low noise) places the disk and gives a first radius ``r0``:
    that of the region above half its peak. Each pattern is then measured about
    its own centroid of the disk (background-subtracted, twice recentred), so a
    wandering beam (descan) does not blur the estimate as it blurs the mean
    pattern: ``N`` is the background-subtracted sum within ``r0 + 2.5`` px
    (background: the median of the ring from there to 1.5 px further; the disk's
    neighbours must lie beyond it), ``I`` the mean of the pixels within
    ``r0 - 0.8`` px (at least 0.75 px), wholly inside the disk for
    ``r >= 1.5`` px.
    """
    from scipy import ndimage

    pats = np.asarray(patterns)  # converted one pattern at a time below
    if pats.ndim == 2:
        pats = pats[None]
    rows, cols = pats.shape[-2:]
    if search is None:
        search = max(4.0, 0.25 * min(rows, cols))
    rr, cc = np.indices((rows, cols))
    mean = np.nan_to_num(pats.mean(axis=0, dtype=float))
    sm = ndimage.uniform_filter(mean, 3)
    near = np.hypot(rr - center[0], cc - center[1]) <= search
    peak = np.unravel_index(np.argmax(np.where(near, sm, -np.inf)), mean.shape)
    bg0 = np.median(mean)
    top = sm[peak] - bg0
    if not top > 0:
        raise ValueError("no direct beam found to estimate disk_radius from; "
                         "give disk_radius (detector px)")
    labels, _ = ndimage.label(mean > bg0 + 0.5 * top)
    region = labels == labels[peak]
    r0 = np.sqrt(np.count_nonzero(region) / np.pi)
    y0, x0 = ndimage.center_of_mass(np.where(region, mean - bg0, 0.0))
    outer = r0 + 2.5
    h = int(np.ceil(outer + 1.5)) + 1
    total_n, total_i = 0.0, 0.0
    for img in pats:
        img = np.nan_to_num(np.asarray(img, dtype=float))
        cy, cx = y0, x0
        for _ in range(3):
            iy, ix = int(round(cy)), int(round(cx))
            r_sl = slice(max(iy - h, 0), iy + h + 1)
            c_sl = slice(max(ix - h, 0), ix + h + 1)
            win, wy, wx = img[r_sl, c_sl], rr[r_sl, c_sl], cc[r_sl, c_sl]
            d = np.hypot(wy - cy, wx - cx)
            ring = (d > outer) & (d <= outer + 1.5)
            bg = np.median(win[ring]) if ring.any() else 0.0
            v = np.where(d <= outer, win - bg, 0.0)
            n = v.sum()
            if not n > 0:
                break
            cy, cx = (v * wy).sum() / n, (v * wx).sum() / n
        else:
            d = np.hypot(wy - cy, wx - cx)
            core = d <= max(r0 - 0.8, 0.75)
            total_n += (win[d <= outer] - bg).sum()
            total_i += win[core].mean() - bg
    if not (total_n > 0 and total_i > 0):
        raise ValueError("no direct beam found to estimate disk_radius from; "
                         "give disk_radius (detector px)")
    return float(np.sqrt(total_n / (np.pi * total_i)))
