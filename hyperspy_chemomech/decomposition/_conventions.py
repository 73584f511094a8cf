"""Which sign, shear and frame conventions make a strain map a compatible distortion?

A strain and rotation map imported from another tool can carry a different
convention: the sign of the rotation, engineering instead of tensor shear, a y
axis pointing up, x and y swapped, maps turned or mirrored without their tensor
components, components left in a rotated (crystal) frame. None of these needs the
composition to be caught. The measured distortion ``beta`` of a defect-poor
particle is the gradient of a displacement, so its Nye tensor (its curl) is zero
up to noise and the odd dislocation; under a wrong convention the curl is of the
order of the gradient itself. The check compares the compatibility index

    c = median(|alpha|^2)^1/2 / median(|grad beta|^2)^1/2

(``alpha`` the Nye tensor, both smoothed by the same Gaussian, over the particle)
of the map as given with those of the common conventions' corrections.

Every correction is a constant linear map of the four components (a 4 x 4
matrix ``L``), and the index's numerator and denominator are built from the
smoothed pixel gradients of the four components, which are linear too. So the
gradients are taken once and any reading ``L e`` is scored by a few array
products (:class:`CompatibilityBasis`): a scan over frame angles costs
milliseconds per angle. Reading components at fixed pixel positions in a frame
turned by ``phi`` changes the curl (the positions do not turn with them), so the
scan also finds the frame a file's components are in (:func:`find_frame`).

A convention cannot be told apart when the map has nothing it acts on (e.g. a
uniform rotation): then the indices tie.
"""

import numpy as np

from ..fields import (
    corner_gradient,
    corners_to_pixels,
    pixel_size_pair,
    smooth_in_mask,
    valid_pixels,
)


# -- linear readings of (e11, e22, e12, theta) ----------------------------------------
def rotation_reading(angle):
    """4 x 4 matrix: components in a frame at ``angle`` -> components in the image frame.

    ``E_image = R E R^T`` with ``R`` the rotation by ``angle`` (rad, from +x toward
    +y); theta, a rotation about the beam, is unchanged.
    """
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c * c, s * s, -2 * c * s, 0.0],
                     [s * s, c * c, 2 * c * s, 0.0],
                     [c * s, -c * s, c * c - s * s, 0.0],
                     [0.0, 0.0, 0.0, 1.0]])


#: y -> -y (a mirrored frame): the shear and the rotation change sign.
MIRROR = np.diag([1.0, 1.0, -1.0, -1.0])
#: the rotation's sign alone.
THETA_FLIP = np.diag([1.0, 1.0, 1.0, -1.0])
#: the shear's sign alone (a mirror with the rotation sign of the other handedness).
SHEAR_FLIP = np.diag([1.0, 1.0, -1.0, 1.0])

#: Families of readings that a frame angle completes: name -> matrix applied first.
FAMILIES = {
    "as given": np.eye(4),
    "shear sign flipped": SHEAR_FLIP,
    "rotation sign flipped": THETA_FLIP,
    "shear and rotation flipped": MIRROR,
}


class Correction:
    """A named linear correction of the components (callable on (4, ny, nx) maps)."""

    def __init__(self, matrix):
        self.matrix = np.asarray(matrix, dtype=float)

    def __call__(self, e):
        return np.einsum("ij,j...->i...", self.matrix, np.asarray(e, dtype=float))


#: Corrections tried: name -> Correction (a callable (4, ny, nx) -> (4, ny, nx)
#: of e11, e22, e12, theta, with its matrix as ``.matrix``).
CORRECTIONS = {
    "as given": Correction(np.eye(4)),
    "rotation sign flipped": Correction(THETA_FLIP),
    "shear was engineering (halved)": Correction(np.diag([1.0, 1.0, 0.5, 1.0])),
    "shear was half the tensor shear (doubled)": Correction(np.diag([1.0, 1.0, 2.0, 1.0])),
    "shear sign flipped": Correction(SHEAR_FLIP),
    # a map mirrored (flipud/fliplr) without its components reads like y up
    "y axis pointed up (shear and rotation flipped)": Correction(MIRROR),
    # a transposed map is the x/y swap
    "x and y swapped (e11 <-> e22, rotation flipped)":
        Correction(rotation_reading(np.pi / 2) @ MIRROR),
    # the components' x and y exchanged, nothing else
    "e11 and e22 swapped": Correction(rotation_reading(np.pi / 2) @ SHEAR_FLIP),
    # np.rot90 of the maps without turning the tensor (a 180 deg turn needs nothing)
    "maps turned by 90 deg without their components (e11 <-> e22, shear flipped)":
        Correction(rotation_reading(np.pi / 2)),
}

#: How each correction is applied, said to a user.
FIXES = {
    "as given": "nothing to fix",
    "rotation sign flipped": "negate theta",
    "shear was engineering (halved)": "halve e12 (it was the engineering shear)",
    "shear was half the tensor shear (doubled)": "double e12",
    "shear sign flipped": "negate e12",
    "y axis pointed up (shear and rotation flipped)":
        "negate e12 and theta (or undo the mirror of the maps)",
    "x and y swapped (e11 <-> e22, rotation flipped)":
        "swap e11 and e22 and negate theta (or transpose the maps back)",
    "e11 and e22 swapped": "swap e11 and e22",
    "maps turned by 90 deg without their components (e11 <-> e22, shear flipped)":
        "swap e11 and e22 and negate e12 (or turn the maps back)",
}


class CompatibilityBasis:
    """Smoothed pixel gradients of the four components, to score linear readings fast.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad); NaN = no data.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
        Where to look (default where all four components are finite).
    sigma : float
        Gaussian smoothing (px) of the gradients, against noise.
    """

    # beta (xx, xy, yx, yy) from (e11, e22, e12, theta)
    _D = np.array([[1.0, 0.0, 0.0, 0.0],
                   [0.0, 0.0, 1.0, -1.0],
                   [0.0, 0.0, 1.0, 1.0],
                   [0.0, 1.0, 0.0, 0.0]])

    def __init__(self, strain, pixel_size, mask=None, sigma=3.0):
        e = np.asarray(strain, dtype=float)
        if e.ndim != 3 or e.shape[0] != 4:
            raise ValueError(f"strain must have shape (4, ny, nx) (e11, e22, e12, theta), "
                             f"got {e.shape}")
        dy, dx = pixel_size_pair(pixel_size)
        ok = valid_pixels(e, mask)
        fx, fy, okc = corner_gradient(np.where(ok, e, np.nan), (dy, dx), ok)
        grad = corners_to_pixels(np.stack([fx, fy], axis=1), okc)     # (4, 2, ny, nx), 1/nm
        grad[:, :, ~ok] = np.nan
        keep = ok & np.isfinite(grad).all(axis=(0, 1))
        grad = smooth_in_mask(grad.reshape(8, *ok.shape), keep, sigma).reshape(4, 2, *ok.shape)
        both = keep & np.isfinite(grad).all(axis=(0, 1))
        if not both.any():
            raise ValueError("no pixels with all four components finite (and neighbours) to "
                             "judge the compatibility of the map")
        self.grad = grad[:, :, both]                                  # (4, 2, n)
        self.n_pixels = int(both.sum())
        self._scans = {}

    def index(self, reading=None):
        """Compatibility index of the map read as ``reading @ e`` (dimensionless).

        Parameters
        ----------
        reading : array_like, shape (4, 4), optional
            Linear map of (e11, e22, e12, theta); default the identity.

        Returns
        -------
        float
        """
        L = np.eye(4) if reading is None else np.asarray(reading, dtype=float)
        g = np.tensordot(self._D @ L, self.grad, axes=1)              # d beta_i / d x_d
        # alpha_x = d_x beta_xy - d_y beta_xx, alpha_y = d_x beta_yy - d_y beta_yx
        ax = g[1, 0] - g[0, 1]
        ay = g[3, 0] - g[2, 1]
        # medians: the odd dislocation core (large, local Nye content) does not count
        num = np.median(ax * ax + ay * ay)
        den = np.median(np.sum(g * g, axis=(0, 1)))
        if not den > 0:
            raise ValueError("the map has no gradient to judge its compatibility by")
        return float(np.sqrt(num / den))

    def scan(self, family=None, angles=None):
        """Index of ``rotation_reading(phi) @ family`` over frame angles ``phi``.

        Parameters
        ----------
        family : array_like, shape (4, 4), optional
            Applied before the rotation (default identity).
        angles : array_like, optional
            Angles (rad); default -90 to 90 deg by 2 deg (the index has period pi).

        Returns
        -------
        angles, index : numpy.ndarray
        """
        F = np.eye(4) if family is None else np.asarray(family, dtype=float)
        if angles is None:
            key = F.tobytes()
            if key not in self._scans:
                a = np.deg2rad(np.arange(-90.0, 90.0, 2.0))
                self._scans[key] = (a, np.array([self.index(rotation_reading(t) @ F) for t in a]))
            return self._scans[key]
        a = np.asarray(angles, dtype=float)
        return a, np.array([self.index(rotation_reading(t) @ F) for t in a])

    def best_angle(self, family=None, near=None, within=np.pi / 4):
        """Frame angle (rad) of the most compatible reading of one family, refined.

        A 2 deg grid then a parabola through the three best points. ``near``
        restricts the search to ``within`` of that angle (modulo pi).

        Returns
        -------
        angle, index : float
        """
        a, c = self.scan(family)
        if near is not None:
            d = np.angle(np.exp(2j * (a - near))) / 2
            c = np.where(np.abs(d) <= within, c, np.inf)
        i = int(np.argmin(c))
        step = a[1] - a[0]
        lo, hi = c[i - 1], c[(i + 1) % len(c)]
        shift = 0.0
        denom = lo - 2 * c[i] + hi
        if np.isfinite(lo) and np.isfinite(hi) and denom > 0:
            shift = float(np.clip(0.5 * (lo - hi) / denom, -1, 1)) * step
        t = _wrap_half_turn(a[i] + shift)
        F = np.eye(4) if family is None else np.asarray(family, dtype=float)
        v = self.index(rotation_reading(t) @ F)
        if v > c[i]:
            t, v = float(a[i]), float(c[i])
        return float(t), float(v)


def _wrap_half_turn(angle):
    """An axis angle in [-pi/2, pi/2) (an axis and its opposite are one axis)."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def compatibility_index(strain, pixel_size, mask=None, sigma=3.0):
    """Typical Nye tensor over typical distortion gradient (dimensionless; 0 = compatible).

    Root-median-square of both over the particle: robust to the few pixels of
    dislocation cores.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad), image frame; NaN = no data.
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
        Where to look (default where all four components are finite).
    sigma : float
        Gaussian smoothing (px) of both maps, against noise.

    Returns
    -------
    float
    """
    return CompatibilityBasis(strain, pixel_size, mask, sigma).index()


def convention_check(strain, pixel_size, mask=None, sigma=3.0, tolerance=1.1, frames=True):
    """Compare the compatibility of a strain map under common convention corrections.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12, theta as read (image frame expected).
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
    sigma : float
        Smoothing (px), see :func:`compatibility_index`.
    tolerance : float
        The map is flagged when a correction makes it this many times more
        compatible than as given. On the authors' LFP50_P2 map read right no
        correction beats "as given"; the mildest slip there, an engineering shear,
        scores 1.16 times worse, the components left in a frame 18 deg off 1.36.
    frames : bool
        Also try each family of sign conventions (as given, shear sign, rotation
        sign, both) with the components turned by any angle: components left in
        another frame (a crystal frame, a wrong ``rot``).

    Returns
    -------
    dict
        ``index``: {correction name: compatibility index}; ``ranking``: the names
        from most to least compatible, "as given" first while it is within
        ``tolerance`` of the best (the map as given is the hypothesis a correction
        must beat); ``best``: ``ranking[0]``; ``fix``: what to do about it;
        ``matrix``: the best correction (4 x 4, applied to (e11, e22, e12, theta));
        ``ok``: whether the map as given is within ``tolerance`` of the best;
        ``message``: a sentence saying so.

    Examples
    --------
    >>> from hyperspy_chemomech.simulate.particle import make_particle
    >>> p = make_particle(shape=(60, 100), noise=1e-4, n_dislocations=0)
    >>> flipped = p.strain * np.array([1, 1, 1, -1])[:, None, None]
    >>> convention_check(flipped, p.pixel_size, mask=p.mask)["best"]
    'rotation sign flipped'
    """
    e = np.asarray(strain, dtype=float)
    if e.ndim != 3 or e.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx), got {e.shape}")
    basis = CompatibilityBasis(e, pixel_size, mask, sigma)
    index = {name: basis.index(fix.matrix) for name, fix in CORRECTIONS.items()}
    matrices = {name: fix.matrix for name, fix in CORRECTIONS.items()}
    fixes = dict(FIXES)
    if frames:
        for fam, F in FAMILIES.items():
            t, v = basis.best_angle(F)
            deg = np.rad2deg(t)
            # an angle near 0 or 90 deg is one of the named corrections
            if min(abs(deg), abs(abs(deg) - 90)) < 3:
                continue
            what = "" if fam == "as given" else f"{fam}, "
            name = f"{what}components in a frame turned by {deg:+.1f} deg"
            index[name] = v
            matrices[name] = rotation_reading(t) @ F
            fixes[name] = (("" if fam == "as given" else f"{fam.replace('flipped', 'negated')}"
                            ", then ") + f"turn the components by {deg:+.1f} deg (R E R^T), "
                           "e.g. read the file in its own frame")
    given = index["as given"]
    lowest = min(index.values())
    ok = given <= tolerance * lowest
    ranking = sorted(index, key=index.get)
    if ok:
        ranking.remove("as given")
        ranking.insert(0, "as given")
    else:
        # a named correction within 5 % of a frame-angle one is the simpler account
        named = [n for n in ranking if n in CORRECTIONS and n != "as given"]
        if named and index[named[0]] <= 1.05 * index[ranking[0]]:
            ranking.remove(named[0])
            ranking.insert(0, named[0])
    best = ranking[0]
    if ok:
        runner = ranking[1]
        message = (f"the map is compatible as given (index {given:.3g}; next: '{runner}' "
                   f"{index[runner]:.3g})")
    else:
        message = (f"the map looks like another convention: '{best}' makes it "
                   f"{given / index[best]:.1f} times more compatible "
                   f"({given:.3g} -> {index[best]:.3g}); fix: {fixes[best]}")
    return {"index": index, "ranking": ranking, "best": best, "fix": fixes[best],
            "matrix": matrices[best], "ok": bool(ok), "message": message}


def find_frame(components, pixel_size, mask=None, sigma=3.0, families=None, candidates=None,
               ambiguous_ratio=1.1):
    """The frame a map's components are in, from the compatibility of the distortion alone.

    The components are read at fixed pixel positions as ``R(phi) F e`` for each
    family ``F`` (a sign convention) and frame angle ``phi``; the reading whose
    distortion is most nearly a gradient wins. No composition and no expected
    eigenstrain enter.

    Parameters
    ----------
    components : array_like, shape (4, ny, nx)
        The map as stored (e11, e22, e12, theta in its own frame).
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    mask : array_like of bool, optional
    sigma : float
        Smoothing (px) of the gradients.
    families : dict of str -> (4, 4) array, optional
        Sign conventions tried (default :data:`FAMILIES`).
    candidates : dict of str -> (family name, angle), optional
        Score only these readings (e.g. the two senses a file's angle can have)
        instead of searching every angle.
    ambiguous_ratio : float
        The choice is ambiguous when the runner-up scores within this factor.

    Returns
    -------
    dict
        ``family``, ``angle`` (rad, the frame's first axis from +x toward +y, in
        [-pi/2, pi/2)), ``index`` of the chosen reading, ``matrix`` (4 x 4: stored
        components -> image frame), ``scores`` {candidate: index}, ``runner_up``,
        ``margin`` (runner-up index / chosen index), ``ambiguous`` (bool) and, for
        the search, ``angle_halfwidth`` (rad: how far the angle may move before
        the index rises by 2 %).
    """
    fams = FAMILIES if families is None else families
    basis = CompatibilityBasis(components, pixel_size, mask, sigma)
    scores, readings = {}, {}
    if candidates is not None:
        for name, (fam, angle) in candidates.items():
            L = rotation_reading(angle) @ np.asarray(fams[fam], float)
            scores[name] = basis.index(L)
            readings[name] = (fam, _wrap_half_turn(angle), L)
    else:
        for fam, F in fams.items():
            t, v = basis.best_angle(F)
            # the same family with the other axis as the frame's first axis
            t2, v2 = basis.best_angle(F, near=t + np.pi / 2)
            for tt, vv in ((t, v), (t2, v2)):
                name = f"{fam}, frame at {np.rad2deg(tt):+.1f} deg"
                scores[name] = vv
                readings[name] = (fam, tt, rotation_reading(tt) @ np.asarray(F, float))
    order = sorted(scores, key=scores.get)
    best, runner = order[0], (order[1] if len(order) > 1 else None)
    fam, angle, L = readings[best]
    margin = float(scores[runner] / scores[best]) if runner is not None else np.inf
    out = {"family": fam, "angle": float(angle), "index": float(scores[best]),
           "matrix": L, "scores": {k: float(scores[k]) for k in order}, "chosen": best,
           "runner_up": runner, "margin": margin, "ambiguous": bool(margin < ambiguous_ratio)}
    if candidates is None:
        # refine the winner on a 0.5 deg grid, and say how sharply the data fix it
        a, c = basis.scan(fams[fam], np.arange(-20.0, 20.25, 0.5) * np.pi / 180 + angle)
        i = int(np.argmin(c))
        if c[i] < out["index"]:
            out["angle"] = _wrap_half_turn(a[i])
            out["index"] = float(c[i])
            out["matrix"] = rotation_reading(a[i]) @ np.asarray(fams[fam], float)
            if runner is not None:
                out["margin"] = float(scores[runner] / c[i])
                out["ambiguous"] = bool(out["margin"] < ambiguous_ratio)
        inside = a[c <= 1.02 * c[i]]
        out["angle_halfwidth"] = float((inside.max() - inside.min()) / 2)
    return out
