"""Find Bragg disks in one diffraction pattern: template matching, then centroids.

Plain numpy / scipy / scikit-image. The template match is the normalised
cross-correlation pyxem's ``Diffraction2D.template_match_disk`` computes
(``skimage.feature.match_template`` with ``pad_input=True`` and zero padding, via
``pyxem.utils.diffraction.normalize_template_match``; a test checks the two
agree), with the template's Fourier transform computed once per detector shape,
without importing pyxem. ``strain_from_diffraction`` runs it once, on the mean
pattern (to find the lattice and the disks); each pattern's disks are then
refined in their windows only (``_disk_refine``).
"""

import numpy as np
from scipy import fft as sfft
from scipy.ndimage import maximum_filter, uniform_filter


def disk_image(shape, centers, radius, weights=None, supersample=8):
    """Uniform disks integrated over the pixel area, as a detector records them.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, columns).
    centers : array_like, shape (n, 2)
        Disk centres (row, column) in px; pixel (i, j) covers [i - 1/2, i + 1/2] x
        [j - 1/2, j + 1/2].
    radius : float
        Disk radius (px).
    weights : float or array_like, shape (n,), optional
        Intensity per unit area inside each disk (default 1).
    supersample : int
        Sub-pixel samples per axis used to integrate the disk over each pixel.

    Returns
    -------
    numpy.ndarray, shape ``shape``
    """
    img = np.zeros(shape)
    centers = np.asarray(centers, dtype=float).reshape(-1, 2)
    weights = np.broadcast_to(np.asarray(1.0 if weights is None else weights, float),
                              (len(centers),))
    if not len(centers):
        return img
    half = int(np.ceil(radius + 1))
    off = np.arange(-half, half + 2)
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    base = np.floor(centers).astype(int)  # (n, 2)
    rows = base[:, 0, None] + off[None, :]  # (n, w)
    cols = base[:, 1, None] + off[None, :]
    dy = rows[:, :, None] + sub[None, None, :] - centers[:, 0, None, None]  # (n, w, s)
    dx = cols[:, :, None] + sub[None, None, :] - centers[:, 1, None, None]
    inside = (dy[:, :, None, :, None] ** 2 + dx[:, None, :, None, :] ** 2) <= radius**2
    cover = inside.mean(axis=(3, 4)) * weights[:, None, None]  # (n, w, w)
    ok_r = (rows >= 0) & (rows < shape[0])
    ok_c = (cols >= 0) & (cols < shape[1])
    for i in range(len(centers)):
        r, c = rows[i][ok_r[i]], cols[i][ok_c[i]]
        if len(r) and len(c):
            img[np.ix_(r, c)] += cover[i][np.ix_(ok_r[i], ok_c[i])]
    return img


def disk_template(radius):
    """The matching template: one pixel-integrated disk of ``radius`` px, centred."""
    half = int(np.ceil(radius + 1))
    return disk_image((2 * half + 1, 2 * half + 1), [(half, half)], radius)


class DiskFinder:
    """Find disk centres in patterns of one detector shape.

    Parameters
    ----------
    shape : (int, int)
        Detector shape (rows, columns).
    radius : float
        Disk radius (px).
    threshold : float
        Minimum normalised cross-correlation (0..1) of a disk with the template.
    min_distance : int, optional
        Minimum separation of two disks (px); default ``max(1, round(radius))``.

    Notes
    -----
    Each match peak is refined by the intensity centroid of the raw pattern in a
    circular window of radius ``radius + 1.5`` px, recentred twice, after
    subtracting the local background (the median of a ring from ``radius + 2`` to
    ``radius + 3.5`` px, so a diffuse background does not pull the centroid toward
    the window centre); disks whose ring would leave the detector are dropped (a
    cut disk has a biased centroid).
    The centroid is the natural estimator for a uniform disk under Poisson noise
    (its variance is ``radius**2 / (4 N)`` px^2 for ``N`` counts).
    """

    def __init__(self, shape, radius, threshold=0.3, min_distance=None):
        if not np.isfinite(radius) or radius <= 0:
            raise ValueError(f"disk_radius must be a positive number of pixels, got {radius}")
        self.shape = tuple(int(n) for n in shape)
        self.radius = float(radius)
        self.threshold = float(threshold)
        self.min_distance = (max(1, int(round(radius))) if min_distance is None
                             else int(min_distance))
        self.template = disk_template(radius)
        th, tw = self.template.shape
        self._fshape = tuple(sfft.next_fast_len(n + t - 1, real=True)
                             for n, t in zip(self.shape, (th, tw)))
        tz = self.template - self.template.mean()
        self._t_ssd = float((tz**2).sum())
        self._t_fft = sfft.rfft2(tz[::-1, ::-1], s=self._fshape)
        self._t_size = th * tw
        self._crop = tuple(slice(t - 1 - (t - 1) // 2, t - 1 - (t - 1) // 2 + n)
                           for n, t in zip(self.shape, (th, tw)))
        wr, ring = self.radius + 1.5, (self.radius + 2.0, self.radius + 3.5)
        h = int(np.ceil(ring[1]))
        dy, dx = np.mgrid[-h:h + 1, -h:h + 1]
        r2 = dy**2 + dx**2
        inside = r2 <= wr**2
        annulus = (r2 >= ring[0] ** 2) & (r2 <= ring[1] ** 2)
        self._dy, self._dx = dy[inside], dx[inside]
        self._ay, self._ax = dy[annulus], dx[annulus]
        self.margin = h + 1

    def match(self, pattern):
        """Normalised cross-correlation map of ``pattern`` with the disk template.

        Equal to ``skimage.feature.match_template(pattern, template, pad_input=True)``
        (zero padding): the correlation with the zero-mean template over the
        local window, divided by the template's and the window's standard
        deviations; 0 where the window is flat.
        """
        img = np.asarray(pattern, dtype=float)
        if img.shape != self.shape:
            raise ValueError(f"pattern shape {img.shape} differs from the detector {self.shape}")
        corr = sfft.irfft2(sfft.rfft2(img, s=self._fshape) * self._t_fft,
                           s=self._fshape)[self._crop]
        size = self.template.shape
        s1 = uniform_filter(img, size=size, mode="constant") * self._t_size
        s2 = uniform_filter(img * img, size=size, mode="constant") * self._t_size
        var = np.maximum(s2 - s1 * s1 / self._t_size, 0.0) * self._t_ssd
        out = np.zeros_like(corr)
        ok = var > 1e-12 * max(float(var.max()), 1e-300)
        out[ok] = corr[ok] / np.sqrt(var[ok])
        return out

    def find(self, pattern):
        """Disk centres and intensities of one pattern.

        Returns
        -------
        centers : numpy.ndarray, shape (n, 2)
            (row, column) in px, sub-pixel.
        counts : numpy.ndarray, shape (n,)
            Background-subtracted intensity of each disk.
        """
        pattern = np.asarray(pattern, dtype=float)
        if not np.isfinite(pattern).all():
            pattern = np.nan_to_num(pattern, nan=0.0, posinf=0.0, neginf=0.0)
        tm = self.match(pattern)
        # local maxima above the threshold, away from the edge (what
        # skimage.feature.peak_local_max returns here, without its sorting overhead)
        size = 2 * self.min_distance + 1
        peak = (tm == maximum_filter(tm, size=size, mode="constant", cval=-np.inf))
        peak &= tm > self.threshold
        m = self.margin
        peak[:m], peak[-m:], peak[:, :m], peak[:, -m:] = False, False, False, False
        peaks = np.argwhere(peak)
        if len(peaks) == 0:
            return np.empty((0, 2)), np.empty(0)
        return self.refine(pattern, peaks)

    def refine(self, pattern, peaks):
        """Centroid refinement of integer peak positions (see class notes)."""
        ny, nx = pattern.shape
        pos = np.asarray(peaks, dtype=float)
        counts = np.zeros(len(pos))
        for _ in range(2):
            r0 = np.clip(np.round(pos[:, 0]).astype(int), self.margin, ny - 1 - self.margin)
            c0 = np.clip(np.round(pos[:, 1]).astype(int), self.margin, nx - 1 - self.margin)
            rr = r0[:, None] + self._dy[None, :]
            cc = c0[:, None] + self._dx[None, :]
            # local background: the median of a ring just outside the window
            bg = np.median(pattern[r0[:, None] + self._ay, c0[:, None] + self._ax], axis=1)
            vals = pattern[rr, cc] - bg[:, None]
            counts = vals.sum(axis=1)
            ok = counts > 0
            safe = np.where(ok, counts, 1.0)
            pos = np.where(ok[:, None],
                           np.column_stack([(vals * rr).sum(1) / safe,
                                            (vals * cc).sum(1) / safe]), pos)
        inside = ((pos[:, 0] >= self.margin) & (pos[:, 0] <= ny - 1 - self.margin)
                  & (pos[:, 1] >= self.margin) & (pos[:, 1] <= nx - 1 - self.margin)
                  & (counts > 0))
        pos, counts = pos[inside], counts[inside]
        # a flat-topped match (ties) gives several maxima that refine onto one
        # disk: keep one per disk, the strongest
        order = np.argsort(-counts, kind="stable")
        pos, counts = pos[order], counts[order]
        d = np.hypot(*(pos[:, None, :] - pos[None, :, :]).transpose(2, 0, 1))
        close = np.triu(d < max(1.0, self.min_distance), k=1)
        keep = ~close.any(axis=0)
        return pos[keep], counts[keep]
