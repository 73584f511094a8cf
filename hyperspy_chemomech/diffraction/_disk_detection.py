"""Find Bragg disks in one diffraction pattern: template matching, then centroids.

Plain numpy / scikit-image. The template match is the computation pyxem's
``Diffraction2D.template_match_disk`` performs (``skimage.feature.match_template``
with ``pad_input=True``, via ``pyxem.utils.diffraction.normalize_template_match``);
it is called here per pattern so that the whole chain (match, peaks, centroids,
lattice fit) runs in one pass over the data without importing pyxem.
"""

import numpy as np
from skimage.feature import match_template, peak_local_max


def disk_image(shape, centers, radius, weights=None):
    """Anti-aliased uniform disks (edge ramp one pixel wide) on a pixel grid.

    Parameters
    ----------
    shape : (int, int)
        Image shape (rows, columns).
    centers : array_like, shape (n, 2)
        Disk centres (row, column) in px; pixel (i, j) has its centre at (i, j).
    radius : float
        Disk radius (px).
    weights : array_like, shape (n,), optional
        Value inside each disk (default 1).

    Returns
    -------
    numpy.ndarray, shape ``shape``
    """
    img = np.zeros(shape)
    centers = np.asarray(centers, dtype=float).reshape(-1, 2)
    weights = np.ones(len(centers)) if weights is None else np.asarray(weights, float)
    half = int(np.ceil(radius + 1))
    off = np.arange(-half, half + 1)
    for (r, c), w in zip(centers, weights):
        r0, c0 = int(np.floor(r)), int(np.floor(c))
        rows, cols = r0 + off, c0 + off
        rr = rows[(rows >= 0) & (rows < shape[0])]
        cc = cols[(cols >= 0) & (cols < shape[1])]
        if not len(rr) or not len(cc):
            continue
        d = np.hypot(rr[:, None] - r, cc[None, :] - c)
        img[np.ix_(rr, cc)] += w * np.clip(radius + 0.5 - d, 0.0, 1.0)
    return img


def disk_template(radius):
    """The matching template: one anti-aliased disk of ``radius`` px, centred."""
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
