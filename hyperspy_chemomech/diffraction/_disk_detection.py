"""Find Bragg disks in one diffraction pattern: template matching, then centroids.

Plain numpy / scikit-image. The template match is the computation pyxem's
``Diffraction2D.template_match_disk`` performs (``skimage.feature.match_template``
with ``pad_input=True``, via ``pyxem.utils.diffraction.normalize_template_match``);
it is called here per pattern so that the whole chain (match, peaks, centroids,
lattice fit) runs in one pass over the data without importing pyxem.
"""

import numpy as np
from skimage.feature import match_template, peak_local_max


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
    weights : array_like, shape (n,), optional
        Intensity per unit area inside each disk (default 1).
    supersample : int
        Sub-pixel samples per axis used to integrate the disk over each pixel.

    Returns
    -------
    numpy.ndarray, shape ``shape``
    """
    img = np.zeros(shape)
    centers = np.asarray(centers, dtype=float).reshape(-1, 2)
    weights = np.ones(len(centers)) if weights is None else np.asarray(weights, float)
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
    circular window of radius ``radius + 1.5`` px, recentred twice; disks whose
    window would leave the detector are dropped (a cut disk has a biased centroid).
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
        wr = self.radius + 1.5
        h = int(np.ceil(wr))
        dy, dx = np.mgrid[-h:h + 1, -h:h + 1]
        inside = dy**2 + dx**2 <= wr**2
        self._dy, self._dx = dy[inside], dx[inside]
        self.margin = h + 1

    def match(self, pattern):
        """Normalised cross-correlation map of ``pattern`` with the disk template."""
        return match_template(np.asarray(pattern, dtype=np.float32), self.template,
                              pad_input=True)

    def find(self, pattern):
        """Disk centres and intensities of one pattern.

        Returns
        -------
        centers : numpy.ndarray, shape (n, 2)
            (row, column) in px, sub-pixel.
        counts : numpy.ndarray, shape (n,)
            Summed intensity in each disk's window.
        """
        pattern = np.asarray(pattern, dtype=float)
        if not np.isfinite(pattern).all():
            pattern = np.nan_to_num(pattern, nan=0.0, posinf=0.0, neginf=0.0)
        tm = self.match(pattern)
        peaks = peak_local_max(tm, min_distance=self.min_distance,
                               threshold_abs=self.threshold,
                               exclude_border=self.margin)
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
            vals = pattern[rr, cc]
            counts = vals.sum(axis=1)
            ok = counts > 0
            safe = np.where(ok, counts, 1.0)
            pos = np.where(ok[:, None],
                           np.column_stack([(vals * rr).sum(1) / safe,
                                            (vals * cc).sum(1) / safe]), pos)
        inside = ((pos[:, 0] >= self.margin) & (pos[:, 0] <= ny - 1 - self.margin)
                  & (pos[:, 1] >= self.margin) & (pos[:, 1] <= nx - 1 - self.margin)
                  & (counts > 0))
        return pos[inside], counts[inside]
