"""Synthetic correlative .mat files written the way the authors' files are.

What the authors' own LFP50_P2.mat taught (Deng et al. 2022, public repository
dhtdean/correlative-image-learning), so that tests on synthetic data meet it too:

- the strain components are stored along crystal axes a = [100], c = [001] that
  are a *mirror image* of the image axes, with the authors' rotation sign
  (``du_a/dc = exy + theta``, ``du_c/da = exy - theta``): in the image frame the
  map is ``R(phi) (exx, eyy, -exy, theta) R(phi)^T`` with [100] at ``phi``;
- ``rot`` relates the two: on LFP50_P2 the data put [100] at ``rot - pi/2``,
  where the authors' code (``DFromExperiment.m``) reads ``pi/2 - rot``; a file
  can be written either way (``sense``) so that a reader must let the data decide;
- failed fits are not NaN but ``exx = eyy = 1`` (to 1e-16), ``exy = 0`` and
  ``theta = 0``, outside the particle too; the ``mask`` is soft (between 0 and 1
  at the edge); composition comes as phase amounts ``FP``, ``LFP``, not a fraction;
  no pixel size is stored.
"""

import numpy as np


def authors_components(strain, crystal_angle):
    """Image-frame (e11, e22, e12, theta) -> the authors' stored (exx, eyy, exy, theta).

    Parameters
    ----------
    strain : array_like, shape (4, ...)
        Our components in the image frame (tensor shear, theta from +x toward +y).
    crystal_angle : float
        Angle (rad) from +x to [100], toward +y.

    Returns
    -------
    numpy.ndarray, shape (4, ...)
        ``(exx, eyy, exy, theta)`` along mirrored crystal axes, authors' signs.
    """
    from ..decomposition import SHEAR_FLIP, rotation_reading

    # stored -> image is R(phi) @ SHEAR_FLIP; its inverse is SHEAR_FLIP @ R(-phi)
    L = SHEAR_FLIP @ rotation_reading(-float(crystal_angle))
    return np.einsum("ij,j...->i...", L, np.asarray(strain, dtype=float))


def write_authors_mat(particle, path, sense="data", include_rot=True, failed_fraction=0.01,
                      thickness_nm=60.0, seed=0):
    """Write a synthetic particle as the authors' correlative .mat files are written.

    Parameters
    ----------
    particle : SyntheticParticle
        From :func:`~hyperspy_chemomech.simulate.make_particle` (its strain, observed
        composition, mask and crystal angle are used).
    path : str or path-like
        The .mat file (MATLAB v5).
    sense : {"data", "code"}
        How ``rot`` relates to [100]: ``"data"``, [100] at ``rot - pi/2`` (what
        LFP50_P2's data say), or ``"code"``, at ``pi/2 - rot`` (how the authors'
        code reads it).
    include_rot : bool
        Store ``rot`` (False: the reader has to find the frame from the data alone).
    failed_fraction : float
        Fraction of the particle's pixels written as failed fits (fill values).
    thickness_nm : float
        Particle thickness that scales ``FP`` and ``LFP`` (phase amounts).
    seed : int

    Returns
    -------
    dict
        What was written, and the truth: ``crystal_angle`` (rad), ``rot`` (rad),
        ``failed`` (bool map of the fill pixels inside the particle).
    """
    from scipy.io import savemat
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    if sense not in ("data", "code"):
        raise ValueError(f"sense must be 'data' or 'code', got {sense!r}")
    rng = np.random.default_rng(seed)
    mask = np.asarray(particle.mask, bool)
    phi = float(particle.crystal_angle)
    rot = phi + np.pi / 2 if sense == "data" else np.pi / 2 - phi
    stored = authors_components(particle.strain, phi)
    inside = mask & np.isfinite(stored).all(axis=0)
    failed = inside & (rng.random(mask.shape) < failed_fraction)
    fill = ~inside | failed
    one = np.nextafter(1.0, 0.0)            # the authors' fills: 1 - 1e-16
    exx, eyy, exy, theta = (np.where(fill, v, a) for a, v in zip(stored, (one, one, 0.0, 0.0)))
    # phase amounts: thickness times fraction, thinning toward the edge; the mask soft
    t = thickness_nm * gaussian_filter(mask.astype(float), 1.0) * mask
    # the X-ray map sees the particle's own composition out to its thin rim
    known = mask & np.isfinite(particle.X_observed)
    nearest = distance_transform_edt(~known, return_distances=False, return_indices=True)
    X = np.asarray(particle.X_observed, float)[tuple(nearest)]
    variables = dict(exx=exx, eyy=eyy, exy=exy, theta=theta, FP=t * (1 - X), LFP=t * X,
                     mask=np.clip(gaussian_filter(mask.astype(float), 0.7), 0, 1) * (t > 0),
                     VADF=np.round(1000 * t / thickness_nm).astype(np.int32),
                     filename=np.array(["synthetic.mat"]))
    if include_rot:
        variables["rot"] = np.array([[rot]])
    savemat(str(path), variables)
    return {"path": str(path), "crystal_angle": phi, "rot": rot, "sense": sense,
            "failed": failed, "include_rot": bool(include_rot)}
