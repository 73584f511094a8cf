"""The registration pipeline on plain arrays: masks, global search, multiscale refinement.

Kept free of HyperSpy: it takes images with their calibrated grids and returns
a 3x3 matrix (moving nm -> fixed nm), a score and a log.
"""

import time

import numpy as np
from scipy import ndimage

from .._utils import with_one_blas_thread
from ._grid import apply_matrix
from ._initialise import mask_moments, moment_angles, pick_peaks, similarity_linear
from ._landmarks import fit_landmarks, landmark_residuals
from ._mask import background_level, particle_mask
from ._polish import polish
from ._refine import Pose, build_levels, refine
from ._resample import resample

#: coarse rotation search step (deg)
SEARCH_STEP_DEG = 10.0
#: the images swap roles internally when the moving pixels are this much finer
SWAP_RATIO = 1.2
#: moving pixels inside the particle outline used by the sub-pixel polish
EDGE_BAND_PX = 2
#: fraction of the polish band its robust fit may discard for its result to be taken
MAX_POLISH_DISCARDED = 0.4
#: robust R^2 the polish's intensity model must reach on the kept samples for its result to be taken
MIN_POLISH_R2 = 0.85
#: a mirror hypothesis scoring below this fraction of the other on a coarser level is not
#: refined further (measured and synthetic pairs: the wrong mirror scores 0.4-0.7 of the right)
MIRROR_DROP = 0.8
#: score poses by the outline overlap as well as by the intensity metric (see _refine.Level)
USE_OUTLINE = True
#: fraction of the moving particle that must land on the fixed particle
MIN_PARTICLE_OVERLAP = 0.05


def resolve_mask(mask, image, what):
    """'auto' -> detected particle; None -> whole image; array -> validated copy."""
    if isinstance(mask, str):
        if mask != "auto":
            raise ValueError(f"{what} mask must be 'auto', None or a boolean array, got {mask!r}")
        return particle_mask(image, what=what)
    if mask is None:
        return np.ones(image.shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != image.shape:
        raise ValueError(f"{what} mask has shape {mask.shape}, the image {image.shape}")
    if mask.dtype != bool:
        raise TypeError(f"{what} mask must be boolean, got dtype {mask.dtype}")
    if not mask.any():
        raise ValueError(f"{what} mask selects no pixel")
    return mask.copy()


def particle_overlap(matrix, moving_mask, moving_grid, fixed_mask, fixed_grid):
    """Fraction of moving-particle pixels that land on the fixed particle."""
    p = apply_matrix(matrix, moving_grid.centres_xy(moving_mask))
    rows, cols = fixed_grid.to_pixel(p[:, 0], p[:, 1])
    inside = fixed_grid.inside(rows, cols)
    r = np.clip(np.rint(rows[inside]), 0, fixed_grid.shape[0] - 1).astype(int)
    c = np.clip(np.rint(cols[inside]), 0, fixed_grid.shape[1] - 1).astype(int)
    return float(fixed_mask[r, c].sum()) / max(len(p), 1)


def outline_iou(matrix, moving_mask, moving_grid, fixed_mask, fixed_grid):
    """Intersection over union of the moving particle and the fixed particle mapped onto it.

    Contrast-free: the two instruments see unrelated contrast inside a particle
    (diffraction, chemistry) but the same outline. Compared on the moving
    (coarser) grid, the fixed mask area-averaged onto it, so that the coarse
    pixels' staircase does not lower the overlap of a right solution.
    """
    frac = resample(fixed_mask.astype(float), fixed_grid, moving_grid, np.linalg.inv(matrix))
    mapped = np.nan_to_num(frac) > 0.5
    union = (mapped | moving_mask).sum()
    return float((mapped & moving_mask).sum() / union) if union else 0.0


def _clean(image, mask, margin):
    """Set everything farther than ``margin`` px from the mask to the background level."""
    bg, _ = background_level(image)
    region = ndimage.binary_dilation(mask, iterations=max(1, int(margin)))
    return np.where(region, image, bg), region


# small BLAS work: one thread (spin-waiting BLAS threads: ~11x slower under load, #16)
@with_one_blas_thread
def register_arrays(moving, moving_grid, fixed, fixed_grid, moving_mask="auto",
                    fixed_mask="auto", model="similarity", allow_reflection=True,
                    metric="mutual_information", initial=None, landmarks=None,
                    landmarks_only=False, landmark_tolerance=None, progress=None):
    """Register ``moving`` onto ``fixed`` (plain arrays on calibrated grids).

    The images are compared at the coarser image's pixels (see ``_refine``): when
    the moving image is the finer one, the roles are swapped internally and the
    result inverted, so either order gives the same map.

    Parameters
    ----------
    moving, fixed : ndarray (ny, nx)
        Finite images.
    moving_grid, fixed_grid : Grid
        Their calibrated grids (nm).
    moving_mask, fixed_mask : "auto", None or ndarray of bool
    model : {"similarity", "affine"}
    allow_reflection : bool
    metric : {"mutual_information", "correlation"}
    initial : ndarray (3, 3), optional
        Start here instead of the global search (mirror taken from it).
    landmarks : (ndarray (N, 2), ndarray (N, 2)), optional
        Moving and fixed (x, y) nm pairs: initialise from them and keep the fit
        close to them (soft constraint of width ``landmark_tolerance`` nm).
    landmarks_only : bool
        Return the landmark fit itself.
    landmark_tolerance : float, optional
        nm; default one moving pixel.
    progress : callable, optional
        Called with no argument after each optimisation stage.

    Returns
    -------
    dict
        ``matrix`` (3, 3), ``score``, ``outline_iou`` (intersection over union of the
        two particle masks at the result), ``mirror_scores`` ({False: s, True: s} or {}),
        ``log`` (list of dicts), ``masks`` (moving, fixed).
    """
    if model not in ("similarity", "affine"):
        raise ValueError(f"unknown model {model!r}; use 'similarity' or 'affine'")
    if moving_grid.pixel_size < fixed_grid.pixel_size / SWAP_RATIO:
        out = register_arrays(
            fixed, fixed_grid, moving, moving_grid, fixed_mask, moving_mask, model,
            allow_reflection, metric,
            None if initial is None else np.linalg.inv(initial),
            None if landmarks is None else (landmarks[1], landmarks[0]),
            landmarks_only, landmark_tolerance, progress)
        out["matrix"] = np.linalg.inv(out["matrix"])
        out["masks"] = out["masks"][::-1]
        out["log"].insert(0, {"stage": "roles swapped",
                              "reason": "the moving image has the finer pixels"})
        return out
    tick = progress or (lambda: None)
    log = []
    mask_m = resolve_mask(moving_mask, moving, "moving image")
    mask_f = resolve_mask(fixed_mask, fixed, "fixed image")
    mom_m = mask_moments(mask_m, moving_grid)
    mom_f = mask_moments(mask_f, fixed_grid)
    s0 = float(np.sqrt(mom_f.area / mom_m.area))
    radius = mom_m.radius
    log.append({"stage": "masks", "moving_area_nm2": mom_m.area, "fixed_area_nm2": mom_f.area,
                "scale_from_areas": s0, "moving_anisotropy": mom_m.anisotropy,
                "fixed_anisotropy": mom_f.anisotropy})

    margin_m = max(2.0, 0.15 * np.sqrt(mask_m.sum()))
    mov_c, region_m = _clean(moving, mask_m, margin_m)
    margin_f = 1.5 * margin_m * moving_grid.pixel_size * s0 / fixed_grid.pixel_size + 3
    fix_c, region_f = _clean(fixed, mask_f, margin_f)
    levels = build_levels(mov_c, moving_grid, region_m, fix_c, fixed_grid, region_f, s0, metric,
                          masks=(mask_m, mask_f) if USE_OUTLINE else None)
    finest = levels[-1]

    penalty = None
    if landmarks is not None:
        lm_m, lm_f = landmarks
        fit_model = model if (model == "similarity" or len(lm_m) >= 3) else "similarity"
        lm_matrix = fit_landmarks(lm_m, lm_f, fit_model, allow_reflection)
        res = landmark_residuals(lm_matrix, lm_m, lm_f)
        log.append({"stage": "landmark fit", "rms_residual_nm": float(np.sqrt(np.mean(res ** 2))),
                    "n_landmarks": int(len(lm_m))})
        if landmarks_only:
            return {"matrix": lm_matrix, "score": float(finest.score(lm_matrix, outline=False)),
                    "outline_iou": outline_iou(lm_matrix, mask_m, moving_grid, mask_f, fixed_grid),
                    "mirror_scores": {}, "log": log, "masks": (mask_m, mask_f)}
        initial = lm_matrix
        tol = moving_grid.pixel_size if landmark_tolerance is None else float(landmark_tolerance)

        def penalty(m):
            # one tolerance of rms residual costs 0.01 of metric (metric scores lie in [0, 1])
            return 0.01 * np.mean(landmark_residuals(m, lm_m, lm_f) ** 2) / tol ** 2

    candidates = {}
    if initial is not None:
        initial = np.asarray(initial, dtype=float)
        ov = particle_overlap(initial, mask_m, moving_grid, mask_f, fixed_grid)
        if ov < MIN_PARTICLE_OVERLAP:
            raise ValueError(
                f"no overlap: the initial transform puts {100 * ov:.1f} % of the moving particle "
                "on the fixed particle; check the initial transform or the calibrations"
            )
        mirror = bool(np.linalg.det(initial[:2, :2]) < 0)
        pose = Pose.from_matrix(initial, mom_m.centroid, mom_f.centroid)
        candidates[mirror] = (pose, levels[0].score(pose.matrix()))
        log.append({"stage": "initial", "mirror": mirror, "score": candidates[mirror][1]})
    else:
        coarse = levels[0]
        angles = np.deg2rad(np.arange(0.0, 360.0, SEARCH_STEP_DEG))
        for mirror in ([False, True] if allow_reflection else [False]):
            t0 = time.perf_counter()
            scores = [coarse.score(Pose(similarity_linear(a, s0, mirror), np.zeros(2),
                                        mom_m.centroid, mom_f.centroid).matrix())
                      for a in angles]
            from_shape = moment_angles(mom_m, mom_f, mirror)
            starts = from_shape + pick_peaks(angles, np.array(scores), exclude=from_shape, n=2)
            log.append({"stage": "rotation search", "mirror": mirror,
                        "best_search_deg": float(np.rad2deg(angles[int(np.argmax(scores))])),
                        "best_search_score": float(np.max(scores)),
                        "starts_deg": [float(np.rad2deg(a)) for a in starts],
                        "seconds": float(time.perf_counter() - t0)})
            best = None
            for a in starts:
                pose = Pose(similarity_linear(a, s0, mirror), np.zeros(2),
                            mom_m.centroid, mom_f.centroid)
                pose, sc, entry = refine(coarse, pose, radius, maxfev=200, xtol=0.05)
                entry.update(stage="hypothesis", mirror=mirror, start_deg=float(np.rad2deg(a)))
                log.append(entry)
                if best is None or sc > best[1]:
                    best = (pose, sc)
            candidates[mirror] = best
            tick()

    # multiscale refinement of the best pose of each mirror hypothesis
    start_level = 0 if initial is not None else 1
    results = dict(candidates)
    active = sorted(candidates)
    for lev in levels[start_level:]:
        if len(active) == 2 and lev is finest and lev is not levels[start_level]:
            # the finest level costs most: a hypothesis already far behind on the measure
            # the choice is made by (finest level, intensity metric) is not refined there
            pre = {m: float(finest.score(results[m][0].matrix(), outline=False)) for m in active}
            lead, lag = sorted(active, key=pre.get, reverse=True)
            if pre[lag] < MIRROR_DROP * pre[lead]:
                active = [lead]
                log.append({"stage": "mirror dropped", "mirror": lag, "level_factor": int(lev.factor),
                            "score": pre[lag], "leader_score": pre[lead], "before_refinement": True})
        for mirror in active:
            pose, sc, entry = refine(lev, results[mirror][0], radius, penalty=penalty)
            entry.update(stage="refine", mirror=mirror, model="similarity")
            log.append(entry)
            results[mirror] = (pose, sc)
        if len(active) == 2 and lev is not finest:
            # a mirror hypothesis far behind on a fine level stays behind on the finest
            # (which costs most): refine only the leader from here on
            lead, lag = sorted(active, key=lambda m: results[m][1], reverse=True)
            if results[lag][1] < MIRROR_DROP * results[lead][1]:
                active = [lead]
                log.append({"stage": "mirror dropped", "mirror": lag, "level_factor": int(lev.factor),
                            "score": float(results[lag][1]), "leader_score": float(results[lead][1])})
    for _ in candidates:
        tick()
    mirror_scores = {m: float(finest.score(p.matrix(), outline=False)) for m, (p, _) in results.items()}
    best_mirror = max(mirror_scores, key=mirror_scores.get)
    pose = results[best_mirror][0]

    if model == "affine":
        pose = Pose(pose.linear, pose.shift, pose.c_m, pose.c_f, "affine")
        for lev in levels[-2:]:
            pose, sc, entry = refine(lev, pose, radius, penalty=penalty)
            entry.update(stage="refine", mirror=best_mirror, model="affine")
            log.append(entry)
        tick()

    # sub-pixel polish with an explicit, robust intensity model (see _polish), on the
    # band around the outline: the edge carries the position, the interior mostly
    # what one modality sees and the other does not (diffraction blobs, chemistry)
    band = region_m & ~ndimage.binary_erosion(mask_m, iterations=EDGE_BAND_PX)
    if band.sum() < 0.2 * region_m.sum() and mask_m.mean() > 0.9:
        band = region_m  # the mask is the whole image (mask=None): no outline to focus on
    polished, entry = polish(pose, band, moving_grid.centres_xy(band), mov_c[band], fix_c,
                             fixed_grid, moving_grid.scale, moving_grid.pixel_size, radius,
                             penalty=penalty, max_discarded=MAX_POLISH_DISCARDED,
                             min_r2=MIN_POLISH_R2)
    # the polish's model (moving = smooth function of the fixed image) must explain most
    # of the band; where it had to discard much of it, or fits the rest poorly, the
    # contrasts are unrelated there (measured pairs, dark-field bend contours against
    # X-ray thickness: 46-63 % discarded or R^2 0.42-0.76, and the polish drifted
    # 1-7 px; synthetic pairs: 7-23 %, R^2 >= 0.95) and its least-squares optimum is
    # no better founded than the metric's: keep the metric's solution
    entry["accepted"] = bool(entry["downweighted_fraction"] <= MAX_POLISH_DISCARDED
                             and entry["robust_r2"] >= MIN_POLISH_R2)
    if entry["accepted"]:
        pose = polished
    log.append(entry)
    tick()

    matrix = pose.matrix()
    ov = particle_overlap(matrix, mask_m, moving_grid, mask_f, fixed_grid)
    if ov < MIN_PARTICLE_OVERLAP:
        raise ValueError(
            f"no overlap: at the best transform found only {100 * ov:.1f} % of the moving "
            "particle lies on the fixed particle; the images may not show the same particle"
        )
    score = float(finest.score(matrix, outline=False))
    iou = outline_iou(matrix, mask_m, moving_grid, mask_f, fixed_grid)
    log.append({"stage": "result", "score": score, "particle_overlap": ov, "outline_iou": iou,
                "mirror_scores": {str(k): v for k, v in mirror_scores.items()}})
    return {"matrix": matrix, "score": score, "outline_iou": iou,
            "mirror_scores": mirror_scores,
            "log": log,
            "masks": (mask_m, mask_f)}
