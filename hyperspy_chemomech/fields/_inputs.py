"""Input checks shared by every engine that fits or splits strain on a composition map."""

import logging
import warnings

import numpy as np
from scipy import ndimage

#: Largest |strain| (dimensionless) or |rotation| (rad) taken as a measurement: a
#: crystal strained by 50 % is no longer the crystal, so such values are failed fits.
MAX_ABS_STRAIN = 0.5
#: Fewest pixels of a body the finite-element mechanics and the fits are run on.
MIN_BODY_PIXELS = 16
#: Share of the body in composition holes above which filling them is also a warning
#: (below, a few failed pixels: recorded in the report and logged only).
HOLE_WARNING_FRACTION = 0.005
#: Fraction of the composition's finite pixels lying outside the strain's particle
#: above which the composition is taken as zero-filled vacuum, not as the body.
VACUUM_FRACTION = 0.25


def require_real(a, name):
    """``a`` as a real (non-complex) numeric NumPy array, else a ``TypeError`` naming it.

    NumPy would keep only the real part of complex data (with a ``ComplexWarning``);
    strain, composition and optical density are real, so complex input is a mistake.
    A dask array is checked by its dtype and returned as it is (reading it would load
    a lazy signal's whole data).
    """
    data = getattr(a, "data", a) if hasattr(a, "axes_manager") else a
    arr = data if hasattr(data, "dask") else np.asarray(data)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} is complex ({arr.dtype}); strain, composition "
                        "and optical density are real: pass the real part (or the modulus) "
                        "explicitly")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def _strain_particle(strain):
    """Where the strain map sees the particle: finite pixels, interior holes filled."""
    seen = np.isfinite(strain).any(axis=0)
    return ndimage.binary_fill_holes(seen), seen


def _harmonic_fill(X, holes):
    """Values for the ``holes`` of ``X``: the harmonic (Laplace) interpolation of their rim.

    The smoothest field that meets the known composition around each hole (a
    composition map is blurred by the X-ray optics, so it varies smoothly); one
    sparse solve. A hole pixel's neighbours are other hole pixels or known values
    (a hole lies inside the outline); the frame's edge is a free (zero-flux) side.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    ny, nx = X.shape
    ys, xs = np.nonzero(holes)
    index = -np.ones(X.shape, dtype=int)
    index[ys, xs] = np.arange(ys.size)
    rows, cols, vals = [], [], []
    rhs = np.zeros(ys.size)
    diag = np.zeros(ys.size)
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        y2, x2 = ys + dy, xs + dx
        inside = (y2 >= 0) & (y2 < ny) & (x2 >= 0) & (x2 < nx)
        k = np.flatnonzero(inside)
        j = index[y2[k], x2[k]]
        unknown = j >= 0
        known = ~unknown & np.isfinite(X[y2[k], x2[k]])
        diag[k[unknown | known]] += 1.0
        rows.append(k[unknown])
        cols.append(j[unknown])
        vals.append(-np.ones(int(unknown.sum())))
        np.add.at(rhs, k[known], X[y2[k[known]], x2[k[known]]])
    rows.append(np.arange(ys.size))
    cols.append(np.arange(ys.size))
    vals.append(np.maximum(diag, 1.0))
    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                   shape=(ys.size, ys.size)).tocsc()
    return np.clip(spsolve(A, rhs), 0.0, 1.0)


def validate_strain_composition(strain, X, mask, pixel_size, report=None):
    """Check a strain map, a composition map and the body for a mechanics fit.

    The same checks serve learning and decomposition, so both fail (and complete
    the body) alike:

    - without ``mask``, a composition finite far beyond the pixels where the strain
      is finite (more than 25 % of its pixels; e.g. X = 0 in the vacuum, an
      integer map) is zero-filled vacuum, not the body: the body is then the
      strain's particle (holes filled), with a warning;
    - a NaN hole in the composition inside the particle's outline, where the
      strain is finite, is missing data: it stays in the body, filled by harmonic
      interpolation of the composition around it, and its strain is left out of
      the misfit and the residual (NaN in the returned strain); it is recorded in
      ``report`` and logged, with a warning when the holes exceed 0.5 % of the
      body (vacuum is outside the outline, or what ``mask`` excludes);
    - strain values beyond +-0.5 (50 %, or 0.5 rad) are failed fits: they become
      NaN (missing), with a warning.

    Parameters
    ----------
    strain : array_like, shape (4, ny, nx)
        e11, e22, e12 (tensor shear), theta (rad); NaN = missing, never infinite.
    X : array_like, shape (ny, nx)
        Composition (fraction in [0, 1]) inside the body, NaN outside.
    mask : array_like of bool or None
        The body; default where ``X`` is finite. ``X`` must be finite inside it.
    pixel_size : float or (float, float)
        (dy, dx) in nm, positive.
    report : dict, optional
        Filled with what was done: ``n_holes_filled``, ``vacuum_excluded`` (bool),
        ``n_vacuum_pixels``, ``n_outliers``.

    Returns
    -------
    strain, X : numpy.ndarray
        As new float arrays (the caller's arrays are never modified).
    mask : numpy.ndarray of bool

    Raises
    ------
    ValueError
        Naming the problem: shapes, grids, an empty or tiny body, X outside [0, 1],
        infinite strain or no finite strain in the body, a non-positive pixel size.
    TypeError
        Complex or non-numeric input.
    """
    strain = np.array(require_real(strain, "strain"), dtype=float)   # a copy: never the caller's
    X = np.array(require_real(X, "composition"), dtype=float)
    if report is None:
        report = {}
    report.update(n_holes_filled=0, vacuum_excluded=False, n_vacuum_pixels=0, n_outliers=0)
    if strain.ndim != 3 or strain.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, ny, nx) (e11, e22, e12, theta), got {strain.shape}")
    if X.shape != strain.shape[1:]:
        raise ValueError(
            f"composition grid {X.shape} differs from the strain grid {strain.shape[1:]}; "
            "resample it first (e.g. CorrelativeTransform.apply(comp, onto=strain))"
        )
    ps = float(np.mean(np.broadcast_to(np.asarray(pixel_size, float), (2,))))
    if not np.isfinite(ps) or ps <= 0:
        raise ValueError(f"pixel size must be positive, got {pixel_size}")
    if np.isinf(strain).any():
        raise ValueError("strain holds infinite values; use NaN for failed fits")
    with np.errstate(invalid="ignore"):
        wild = np.abs(strain) > MAX_ABS_STRAIN
    if wild.any():
        report["n_outliers"] = int(wild.sum())
        warnings.warn(f"strain: {int(wild.sum())} value(s) beyond +-{MAX_ABS_STRAIN} (up to "
                      f"{np.nanmax(np.abs(strain)):.3g}) are no lattice strain: treated as "
                      "failed fits (NaN)", RuntimeWarning, stacklevel=3)
        strain[wild] = np.nan
    particle, _ = _strain_particle(strain)
    if mask is None:
        have = np.isfinite(X)
        if not particle.any():
            raise ValueError("strain has no finite value: no particle to fit")
        beyond = have & ~ndimage.binary_dilation(particle, iterations=2)
        if beyond.sum() > VACUUM_FRACTION * have.sum():
            report.update(vacuum_excluded=True, n_vacuum_pixels=int(beyond.sum()))
            warnings.warn(
                f"composition: finite at {int(beyond.sum())} of its {int(have.sum())} pixels "
                "where the strain sees no particle (X = 0 or an integer map in the vacuum?); "
                "the body is taken from the strain's particle; pass mask= to choose it",
                RuntimeWarning, stacklevel=3)
            X[~particle] = np.nan
            have = np.isfinite(X)
        outline = ndimage.binary_fill_holes(have)
        holes = outline & ~have & np.isfinite(strain).any(axis=0)
        if holes.any():
            # the body keeps them (mechanics needs the material there); the fill is a guess,
            # so their strain is left out of every misfit and residual
            X[holes] = _harmonic_fill(X, holes)
            strain[:, holes] = np.nan
            report["n_holes_filled"] = int(holes.sum())
            note = (f"composition: NaN at {int(holes.sum())} pixel(s) inside the particle's "
                    "outline where the strain is finite: missing data, filled smoothly from "
                    "the composition around them (for the mechanics; their strain is left out "
                    "of the fit and the residual)")
            # always recorded (report, the law's metadata) and logged; a warning only when
            # the holes are a visible part of the particle, not a few failed pixels
            logging.getLogger(__name__).info(note)
            if holes.sum() > HOLE_WARNING_FRACTION * (have | holes).sum():
                warnings.warn(note, RuntimeWarning, stacklevel=3)
        mask = np.isfinite(X)
    else:
        mask = np.asarray(mask)
        if mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all():
            mask = mask.astype(bool)
        if mask.dtype != bool:
            raise TypeError(f"mask must be boolean, got dtype {mask.dtype}")
        if mask.shape != X.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the grid {X.shape}")
        holes = mask & ~np.isfinite(X)
        if holes.any():
            raise ValueError(f"composition is NaN at {int(holes.sum())} pixel(s) inside the mask")
    if not mask.any():
        raise ValueError("the particle is empty: no finite composition (or empty mask)")
    if mask.sum() < MIN_BODY_PIXELS:
        raise ValueError(f"the particle has {int(mask.sum())} pixel(s); the mechanics needs at "
                         f"least {MIN_BODY_PIXELS}")
    if not np.isfinite(strain[:, mask]).any():
        raise ValueError("strain has no finite value inside the particle (all NaN)")
    xin = X[mask]
    bad = (xin < 0) | (xin > 1)
    if bad.any():
        raise ValueError(
            f"composition outside [0, 1] at {int(bad.sum())} pixel(s) "
            f"(min {xin.min():.3g}, max {xin.max():.3g}); X is a fraction, fix the unmixing "
            "rather than clipping"
        )
    return strain, X, mask
