"""CorrelativeTransform: a 2D affine map between calibrated image frames, with its provenance."""

import json
import warnings

import numpy as np

from ._grid import apply_matrix
from ._resample import resample

#: metadata node (under metadata.Chemomech) written by CorrelativeTransform.apply
METADATA_STEP = "registration"


class RegistrationWarning(UserWarning):
    """A registration result that should be checked by eye (low score, ambiguous mirror)."""


def decompose(matrix):
    """Read rotation, scales, shear, reflection and shift out of a 3x3 matrix.

    The linear part is written ``L = R(rotation) @ [[sx, shear*sy], [0, sy]] @ F``
    where ``F = diag(1, -1)`` (reflection of the moving y axis) when the map is
    mirrored and the identity otherwise: mirror first, then scale/shear, then
    rotate, then shift.

    Parameters
    ----------
    matrix : ndarray (3, 3)

    Returns
    -------
    dict
        ``rotation_deg`` (from +x toward +y, in (-180, 180]), ``scale`` (square root of
        the absolute determinant), ``scale_xy`` (sx, sy), ``shear``, ``reflection`` (bool),
        ``shift_nm`` (x, y).
    """
    lin = np.asarray(matrix, dtype=float)[:2, :2]
    reflection = bool(np.linalg.det(lin) < 0)
    proper = lin @ np.diag([1.0, -1.0]) if reflection else lin
    q, u = np.linalg.qr(proper)
    # QR's signs are arbitrary: make the diagonal of the triangular factor positive
    sgn = np.sign(np.diag(u))
    sgn[sgn == 0] = 1.0
    q, u = q * sgn, (u.T * sgn).T
    rot = float(np.degrees(np.arctan2(q[1, 0], q[0, 0])))
    return {
        "rotation_deg": rot,
        "scale": float(np.sqrt(abs(np.linalg.det(lin)))),
        "scale_xy": (float(u[0, 0]), float(u[1, 1])),
        "shear": float(u[0, 1] / u[1, 1]),
        "reflection": reflection,
        "shift_nm": (float(matrix[0][2]), float(matrix[1][2])),
    }


def _jsonable(obj):
    """Plain Python (lists, floats, str) version of a log entry."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


class CorrelativeTransform:
    """Affine map from the moving image's calibrated frame to the fixed image's.

    ``[x_f, y_f, 1] = matrix @ [x_m, y_m, 1]`` with (x, y) the calibrated
    positions (nm) along the images' column (x) and row (y) axes, offsets
    included. Because it works in calibrated units, images with different
    pixel sizes and offsets need no rescaling beforehand.

    Parameters
    ----------
    matrix : array_like (3, 3)
        Homogeneous matrix (last row 0, 0, 1).
    model : {"similarity", "affine"}
        The model it was fitted with (informative).
    score : float, optional
        Quality score of the registration (metric at the result, in [0, 1]).
    metric : str, optional
        Metric that gave ``score``.
    log : list of dict, optional
        Per-stage record of the registration.

    Attributes
    ----------
    matrix : ndarray (3, 3)
    reflection : bool
        Whether the map mirrors (det < 0).
    rotation, scale, scale_xy, shear, shift :
        Readout of the matrix, see :func:`decompose` (degrees, -, -, -, nm).

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech import CorrelativeTransform
    >>> tr = CorrelativeTransform.from_parameters(rotation=30.0, scale=2.0, shift=(5.0, -3.0))
    >>> round(tr.rotation, 6), round(tr.scale, 6)
    (30.0, 2.0)
    >>> np.allclose(tr.inverse()(tr([[1.0, 2.0]])), [[1.0, 2.0]])
    True
    """

    def __init__(self, matrix, model="similarity", score=None, metric=None, log=None):
        m = np.array(matrix, dtype=float)
        if m.shape == (2, 3):
            m = np.vstack([m, [0.0, 0.0, 1.0]])
        if m.shape != (3, 3) or not np.isfinite(m).all():
            raise ValueError(f"a transform matrix must be a finite 3x3 array, got shape {m.shape}")
        if not np.allclose(m[2], [0.0, 0.0, 1.0]):
            raise ValueError(f"the last row of an affine matrix must be (0, 0, 1), got {m[2]}")
        if abs(np.linalg.det(m[:2, :2])) < 1e-12:
            raise ValueError("the transform matrix is singular")
        if model not in ("similarity", "affine"):
            raise ValueError(f"unknown model {model!r}; use 'similarity' or 'affine'")
        self._matrix = m
        self.model = model
        self.score = None if score is None else float(score)
        self.metric = metric
        self.log = list(log) if log is not None else []
        self._images = None  # (moving, fixed) signals kept by register() for plot()

    # -- construction -------------------------------------------------------
    @classmethod
    def from_parameters(cls, rotation=0.0, scale=1.0, shift=(0.0, 0.0), reflection=False,
                        center=(0.0, 0.0)):
        """Similarity map: mirror (moving y -> -y), scale, rotate (deg) about ``center``, shift.

        Parameters
        ----------
        rotation : float
            Degrees, from +x toward +y.
        scale : float
        shift : (float, float)
            Translation (x, y) in nm applied last.
        reflection : bool
        center : (float, float)
            Moving-frame point (x, y) nm that the linear part leaves in place.
        """
        from ._initialise import similarity_linear

        lin = similarity_linear(np.deg2rad(rotation), scale, reflection)
        m = np.eye(3)
        m[:2, :2] = lin
        c = np.asarray(center, dtype=float)
        m[:2, 2] = c - lin @ c + np.asarray(shift, dtype=float)
        return cls(m)

    @classmethod
    def from_landmarks(cls, moving_xy, fixed_xy, model="similarity", allow_reflection=True):
        """Least-squares fit to landmark pairs (x, y in nm), see :func:`register` for clicking them.

        Parameters
        ----------
        moving_xy, fixed_xy : array_like (N, 2)
        model : {"similarity", "affine"}
        allow_reflection : bool
        """
        from ._landmarks import check_landmarks, fit_landmarks, landmark_residuals

        mov, fix = check_landmarks((moving_xy, fixed_xy))
        m = fit_landmarks(mov, fix, model, allow_reflection)
        res = landmark_residuals(m, mov, fix)
        return cls(m, model=model, log=[{"stage": "landmark fit", "n_landmarks": len(mov),
                                         "rms_residual_nm": float(np.sqrt(np.mean(res ** 2)))}])

    # -- readout --------------------------------------------------------------
    @property
    def matrix(self):
        return self._matrix.copy()

    def _parts(self):
        return decompose(self._matrix)

    @property
    def covariance(self):
        """Covariance (6, 6) of the matrix's first two rows (row-major; shifts in nm), or None.

        From the normal matrix of the sub-pixel polish's Gauss-Newton fit (recorded
        in its log entry as ``matrix_covariance``): the residuals' spatial
        correlation and the effective number of independent samples enter, and it
        is widened where a delete-a-sector jackknife shows one region of the
        image pulling the estimate (see ``registration._polish.matrix_covariance``);
        composition maps resampled through transforms drawn from it carry the
        registration into the law. Calibration (``benchmarks/registration.py``,
        RMS of error / predicted SD for rotation, log scale, centroid shift x, y):
        8 random warps of the measured pair P1, against their spread 0.54, 0.43,
        0.49, 0.36 and against the published alignment 1.04, 0.80, 0.44, 0.83 (too
        wide against the spread: on P1 the polish's model does not hold and the
        metric's solution is kept); synthetic pairs at 360 x 720 (seeds
        1000-1005) 1.15, 0.85, 1.33, 1.50 against the truth (with the former cubic
        intensity map, whose misfit biased the scale, 0.9, 3.4, 1.8, 1.2).
        """
        for entry in self.log[::-1]:
            if isinstance(entry, dict) and entry.get("matrix_covariance") is not None:
                return np.asarray(entry["matrix_covariance"], dtype=float)
        return None

    @property
    def reflection(self):
        return self._parts()["reflection"]

    @property
    def rotation(self):
        return self._parts()["rotation_deg"]

    @property
    def scale(self):
        return self._parts()["scale"]

    @property
    def scale_xy(self):
        return self._parts()["scale_xy"]

    @property
    def shear(self):
        return self._parts()["shear"]

    @property
    def shift(self):
        return self._parts()["shift_nm"]

    def __call__(self, xy):
        """Map (N, 2) moving points (x, y) nm to the fixed frame."""
        return apply_matrix(self._matrix, np.atleast_2d(np.asarray(xy, dtype=float)))

    def inverse(self):
        """The map from the fixed frame back to the moving frame."""
        return CorrelativeTransform(np.linalg.inv(self._matrix), model=self.model,
                                    score=self.score, metric=self.metric, log=self.log)

    def __repr__(self):
        p = self._parts()
        score = "" if self.score is None else f", score {self.score:.3f}"
        return (f"<CorrelativeTransform ({self.model}{', mirrored' if p['reflection'] else ''}): "
                f"rotation {p['rotation_deg']:.2f} deg, scale {p['scale']:.4f}, "
                f"shift ({p['shift_nm'][0]:.1f}, {p['shift_nm'][1]:.1f}) nm{score}>")

    # -- serialisation ----------------------------------------------------------
    def to_dict(self, include_log=True):
        """Plain, JSON- and HyperSpy-metadata-safe dict; :meth:`from_dict` reads it back."""
        d = {"matrix": self._matrix.tolist(), "model": self.model,
             "score": "None" if self.score is None else self.score,
             "metric": "None" if self.metric is None else str(self.metric)}
        p = self._parts()
        d.update(reflection=p["reflection"], rotation_deg=p["rotation_deg"], scale=p["scale"],
                 scale_xy=list(p["scale_xy"]), shear=p["shear"], shift_nm=list(p["shift_nm"]))
        if include_log:
            d["log"] = json.dumps(_jsonable(self.log))
        return d

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict` output (or the metadata node written by :meth:`apply`)."""
        if "matrix" not in d:
            raise ValueError("not a transform dict: no 'matrix' entry")
        score = d.get("score")
        metric = d.get("metric")
        log = d.get("log", [])
        if isinstance(log, str):
            log = json.loads(log)
        return cls(np.asarray(d["matrix"], dtype=float), model=d.get("model", "similarity"),
                   score=None if score in (None, "None") else float(score),
                   metric=None if metric in (None, "None") else metric, log=log)

    @classmethod
    def from_metadata(cls, signal):
        """The transform recorded in ``signal.metadata`` by :meth:`apply`."""
        from .._metadata import recorded

        node = recorded(signal, METADATA_STEP)
        if not node or "transform" not in node:
            raise ValueError("the signal carries no registration transform in its metadata")
        return cls.from_dict(node["transform"])

    # -- resampling -------------------------------------------------------------
    def apply(self, signal, onto, order=1):
        """Resample ``signal`` (on the moving frame) onto the grid of ``onto`` (fixed frame).

        Float data: interpolation of the given spline ``order``, NaN-aware (NaN, e.g.
        outside the particle, never leaks into valid pixels), NaN outside the overlap.
        Boolean data (masks): nearest neighbour / majority, False outside.
        Where a target pixel covers more than one source pixel (going to a coarser
        grid) the result is the average over the pixel's footprint (area
        averaging). For the other direction use ``tr.inverse().apply(...)``.
        A :class:`~hyperspy_chemomech.signals.StrainField` (image-frame components)
        also has its components turned into the target frame (``Q E Q^T`` with
        ``Q`` the rotation/mirror part of the map; a mirror reverses theta).

        Parameters
        ----------
        signal : hyperspy.signals.Signal2D (or a subclass, any navigation shape)
            Calibrated image axes in the moving frame.
        onto : hyperspy.signals.BaseSignal
            Any signal whose two image axes define the target grid (fixed frame).
        order : int
            Spline order 0-5 for float data.

        Returns
        -------
        Signal of the same class as ``signal`` (e.g. a CompositionMap stays one)
            On the target grid, with the transform and the source pixel size in
            ``metadata.Chemomech.registration`` (``transform``,
            ``source_pixel_size_nm`` = the source pixel size expressed in target
            nm, the resolution the resampled data really has).
        """
        from ._signals import apply_transform

        return apply_transform(self, signal, onto, order)

    def apply_to_array(self, data, src_grid, dst_grid, order=1):
        """Array version of :meth:`apply` on :class:`~hyperspy_chemomech.registration.Grid` objects."""
        return resample(data, src_grid, dst_grid, self._matrix, order=order)

    # -- display ------------------------------------------------------------------
    def plot(self, moving=None, fixed=None, tiles=8):
        """Checkerboard and edge overlay of the registered moving image on the fixed one.

        Parameters
        ----------
        moving, fixed : Signal2D, optional
            Default: the images this transform was registered from.
        tiles : int
            Checkerboard tiles along the longer side.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ._signals import plot_overlay

        if moving is None or fixed is None:
            if self._images is None:
                raise ValueError("pass moving= and fixed= (this transform did not come from register)")
            moving = moving if moving is not None else self._images[0]
            fixed = fixed if fixed is not None else self._images[1]
        return plot_overlay(self, moving, fixed, tiles)


def warn(message):
    warnings.warn(message, RegistrationWarning, stacklevel=3)
