"""``register``: automatic correlative registration of two images of one particle."""

import numpy as np

from .._utils import progressbar
from ._landmarks import check_landmarks
from ._pipeline import register_arrays
from ._signals import grid_of, image_data, mask_data
from ._transform import CorrelativeTransform, warn

#: score (entropy correlation / |r|) below which the result is flagged. Mutual information:
#: derived on the measured P1 pair (correct solutions, published and under random warps,
#: 0.267-0.30; wrong ones refined from a 180-degree, mirrored or 90-degree start <= 0.190;
#: another particle <= 0.18: midpoint 0.23), checked on LFP50_P2's HAADF against FP + LFP
#: (correct 0.33-0.41, wrong <= 0.19, another particle 0.19-0.22); synthetic pairs 0.37-0.5
LOW_SCORE = {"mutual_information": 0.23, "correlation": 0.5}
#: intersection over union of the two particle outlines (on the coarser grid) below which
#: the result is flagged: derived on P1 (correct >= 0.942, wrong <= 0.920: midpoint 0.93),
#: checked on LFP50_P2 (correct >= 0.979, wrong <= 0.900). Contrast-free, so it holds
#: whatever the two instruments see inside; a particle only ~15 coarse pixels across
#: scores lower for its staircase (synthetic, 5-6x coarser: 0.86-0.91)
MIN_OUTLINE_IOU = 0.93
#: relative score margin below which the mirror choice is flagged as ambiguous
MIRROR_MARGIN = 0.03


def register(moving, fixed, model="similarity", allow_reflection=True,
             metric="mutual_information", moving_mask="auto", fixed_mask="auto",
             initial=None, landmarks=None, show_progressbar=None, landmarks_only=False,
             landmark_tolerance=None):
    """Find the map from the moving image's frame to the fixed image's frame.

    Made for two images of one particle from different instruments: e.g. an
    X-ray (STXM, ptychography) thickness or optical-density image (moving:
    coarse pixels, any rotation, possibly mirrored, any contrast) and a 4D-STEM
    virtual dark-field image (fixed: fine pixels, dark diffraction blobs). The
    particle is found in each image (sign-agnostic threshold), its shape
    moments give the centroid, scale and long-axis direction; both mirror
    hypotheses, both 180-degree choices and a coarse search over all
    rotations are scored with a multimodal metric, and the best of each mirror
    hypothesis is refined over a multiscale pyramid.

    Parameters
    ----------
    moving, fixed : hyperspy.signals.Signal2D
        Single images with calibrated axes (nm, µm, Å or m; pixel sizes and
        offsets may differ). Must be finite (no NaN). The comparison runs at the
        coarser image's pixels, whichever of the two it is (the map returned is
        always moving -> fixed).
    model : {"similarity", "affine"}
        Rotation + isotropic scale + shift (+ mirror), or a general affine map.
    allow_reflection : bool
        Consider mirrored solutions (scan/stage conventions often mirror one image).
    metric : {"mutual_information", "correlation"}
        Normalised mutual information (entropy correlation coefficient, any
        monotonic or non-monotonic contrast) or absolute Pearson correlation
        (linear contrast of either sign). Both are sign-agnostic.
    moving_mask, fixed_mask : "auto", None or bool array / Signal2D
        Pixels of the particle; "auto" detects it, None uses the whole image.
        Everything farther than a margin from the mask (detector artefacts, other
        particles) is ignored.
    initial : CorrelativeTransform or array_like (3, 3), optional
        Start from this map (skips the global search; its mirror is kept).
    landmarks : (array_like (N, 2), array_like (N, 2)) or dict, optional
        Pairs of corresponding points, (x, y) in nm of the moving and of the
        fixed frame (``{"moving": ..., "fixed": ...}`` also accepted). They
        initialise the fit and hold it near them (soft constraint of width
        ``landmark_tolerance``), or with ``landmarks_only=True`` are the whole fit.
    show_progressbar : bool, optional
        Default: HyperSpy's preference.
    landmarks_only : bool
        Return the least-squares landmark fit without image refinement.
    landmark_tolerance : float, optional
        Expected landmark accuracy (nm); default one pixel of the coarser image.

    Returns
    -------
    CorrelativeTransform
        Moving (x, y) nm -> fixed (x, y) nm, with ``score``, ``log``, and
        :meth:`~CorrelativeTransform.plot` for an overlay check.

    Warns
    -----
    RegistrationWarning
        When the score is low (below 0.23 for mutual information, 0.5 for
        correlation), when the two particle outlines overlap poorly (intersection
        over union below 0.93 on the coarser grid), or when the two mirror
        hypotheses score within 3 % of each other. The first two thresholds come
        from a measured pair (P1: X-ray thickness against 4D-STEM dark field with
        bend contours; correct solutions: mutual information 0.267-0.30, outline
        overlap >= 0.942; wrong ones <= 0.19 and <= 0.92; another particle
        <= 0.18) and were checked on another (LFP50_P2, HAADF against FP + LFP);
        synthetic pairs score 0.37-0.5.

    Raises
    ------
    ValueError
        Missing calibration, NaN in an image, no particle found, no overlap.
    TypeError
        Inputs that are not HyperSpy signals, non-boolean masks.

    Examples
    --------
    >>> import hyperspy_chemomech as hcm
    >>> pair = hcm.simulate.correlative_image_pair(seed=1, shape=(90, 180))
    >>> tr = hcm.register(pair.moving, pair.fixed)
    >>> tr.reflection == pair.transform.reflection
    True
    >>> comp_on_stem = tr.apply(pair.composition, onto=pair.fixed)
    """
    if model not in ("similarity", "affine"):
        raise ValueError(f"unknown model {model!r}; use 'similarity' or 'affine'")
    if metric not in LOW_SCORE:
        raise ValueError(f"unknown metric {metric!r}; use 'mutual_information' or 'correlation'")
    mov = image_data(moving, "moving image")
    fix = image_data(fixed, "fixed image")
    g_m, g_f = grid_of(moving, "moving image"), grid_of(fixed, "fixed image")
    m_mask = mask_data(moving_mask, moving, "moving_mask")
    f_mask = mask_data(fixed_mask, fixed, "fixed_mask")
    if initial is not None:
        initial = initial.matrix if isinstance(initial, CorrelativeTransform) else np.array(initial, dtype=float)
        if initial.shape != (3, 3) or not np.isfinite(initial).all():
            raise ValueError(f"initial must be a CorrelativeTransform or a finite 3x3 matrix, got shape {initial.shape}")
        if not allow_reflection and np.linalg.det(initial[:2, :2]) < 0:
            raise ValueError("initial is mirrored but allow_reflection=False")
    if landmarks is not None:
        landmarks = check_landmarks(landmarks)
    elif landmarks_only:
        raise ValueError("landmarks_only=True needs landmarks")

    # progress ticks: global search and multiscale refinement per mirror hypothesis, affine, polish
    searched = initial is None and landmarks is None
    n_mirror = 2 if (allow_reflection and searched) else 1
    n_stages = 0 if landmarks_only else (n_mirror if searched else 0) + n_mirror + (model == "affine") + 1
    with progressbar(total=n_stages, show_progressbar=show_progressbar, desc="register") as pbar:
        out = register_arrays(mov, g_m, fix, g_f, moving_mask=m_mask, fixed_mask=f_mask,
                              model=model, allow_reflection=allow_reflection, metric=metric,
                              initial=initial, landmarks=landmarks, landmarks_only=landmarks_only,
                              landmark_tolerance=landmark_tolerance,
                              progress=lambda: pbar.update(1))
    tr = CorrelativeTransform(out["matrix"], model=model, score=out["score"], metric=metric,
                              log=out["log"])
    tr._images = (moving, fixed)

    if out["score"] < LOW_SCORE[metric]:
        warn(f"low registration score {out['score']:.3f} (< {LOW_SCORE[metric]} for {metric}); "
             "check the overlay with tr.plot()")
    iou = out["outline_iou"]
    if iou < MIN_OUTLINE_IOU:
        warn(f"the particle outlines overlap poorly: intersection over union {iou:.3f} "
             f"(< {MIN_OUTLINE_IOU}); different particles or a wrong solution? check with tr.plot()")
    ms = out["mirror_scores"]
    if len(ms) == 2:
        best, other = max(ms.values()), min(ms.values())
        if best - other < MIRROR_MARGIN * best:
            warn(f"ambiguous mirror: mirrored scores {ms[True]:.4f}, not mirrored {ms[False]:.4f} "
                 f"(margin {100 * (best - other) / best:.1f} % < {100 * MIRROR_MARGIN:.0f} %); "
                 "check with tr.plot() or give landmarks")
    return tr
