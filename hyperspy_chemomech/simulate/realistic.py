"""A second synthetic generator that differs from :mod:`.particle` the way real data does.

:func:`~hyperspy_chemomech.simulate.make_particle` solves the forward strain with the
package's solver on the data's own grid, adds white noise and blurs the composition
with the block mean that learning models. Real maps are none of that. Here

- the particle, its composition and its dislocations live on a grid ``refine``
  times finer than the data; the forward strain is solved there and each data pixel
  is the mean of its ``refine x refine`` block (a 4D-STEM probe averages what it
  crosses), so the data are not the package's discrete solution at the data's grid;
- noise is added on the fine grid, spread by a Gaussian probe and then
  block-averaged: it is spatially correlated on the data grid, as a real map's is;
- the X-ray composition is a block mean over the X-ray pixel, a zone-plate (Airy)
  point-spread function, then bilinear resampling onto the data grid (what a
  registration does);
- about 5 % of the strain pixels are failed fits, NaN, in clusters;
- the Burgers vectors are lattice translations of the material, [100] or [001]
  (crystal frame, lattice constants from :mod:`hyperspy_chemomech.mechanics`,
  interpolated at the core's composition), with cores off the pixel centres;
- the stiffness follows the composition, C(X) between FePO4 and LiFePO4, by default.

Tests use it to check that what works on :mod:`.particle` is not tuned to it.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from ..fields import dislocation_strain, masked_gaussian, pool
from .composition_fields import composition_field
from .particle import SyntheticParticle, crystal_to_image_eigenstrain, resolve_law
from .shapes import platelet_mask


@dataclass
class RealisticParticle(SyntheticParticle):
    """A :class:`SyntheticParticle` from :func:`realistic_particle`, with its extra truth.

    Positions are on the data grid (pixel centres at integers), as for
    :class:`SyntheticParticle`.
    """

    holes: np.ndarray = None          #: (ny, nx) bool, failed fits (NaN in ``strain``)
    refine: int = 2                   #: fine grid / data grid
    burgers_axes: tuple = ()          #: per core, "[100]" or "[001]"
    lattice_nm: np.ndarray = None     #: (n, 3) lattice a, b, c (nm) at each core


def airy_psf(first_zero, size=None):
    """Normalised Airy intensity pattern (a zone plate's focus) on a pixel grid.

    Parameters
    ----------
    first_zero : float
        Radius of the first dark ring (px); the Rayleigh resolution.
    size : int, optional
        Half width of the kernel (px); default ``ceil(4 first_zero)``.

    Returns
    -------
    numpy.ndarray, shape (2 size + 1, 2 size + 1)
        Sums to 1. Not a Gaussian: its tails fall as r^-3.
    """
    r0 = float(first_zero)
    if not r0 > 0:
        raise ValueError(f"first_zero must be a positive number of pixels, got {first_zero!r}")
    h = int(np.ceil(4 * r0)) if size is None else int(size)
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    v = 3.8317 * np.hypot(yy, xx) / r0
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(v > 0, (2 * special.j1(v) / np.where(v > 0, v, 1.0)) ** 2, 1.0)
    return k / k.sum()


def _clustered_holes(mask, fraction, rng, keep_clear, cluster_px=1.5):
    """Failed fits: ``fraction`` of ``mask`` in clusters (a level set of a smooth field)."""
    if fraction <= 0:
        return np.zeros_like(mask)
    field = ndimage.gaussian_filter(rng.standard_normal(mask.shape), cluster_px)
    allowed = mask & ~keep_clear
    level = np.quantile(field[allowed], 1 - fraction * mask.sum() / max(allowed.sum(), 1))
    return allowed & (field > level)


def _off_centre(rng, n):
    """Sub-pixel offsets in +-[0.2, 0.5] px: never on a pixel centre."""
    return rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.2, 0.5, size=n)


def realistic_particle(shape=(150, 250), pixel_size=5.0, kind="hexagon",
                       composition="two_phase", interface_width=6.0, law="vegard",
                       stiffness="composition", material="LiFePO4", crystal_angle=0.0,
                       plane="stress", n_dislocations=0, noise=1e-3, xray_factor=4,
                       psf_first_zero=1.0, probe_sigma=1.0, hole_fraction=0.05,
                       reference=(1e-3, -5e-4, 2e-4, 3e-3), refine=2, seed=0, fill=0.85):
    """A synthetic particle made the way real data are (see the module's notes).

    Parameters
    ----------
    shape : (int, int)
        Data (strain) grid (ny, nx) in px.
    pixel_size : float
        Data pixel size (nm).
    kind, composition : str
        Outline (:func:`platelet_mask`) and composition field
        (:func:`composition_field`), drawn on the fine grid.
    interface_width : float
        10-90 % width of the phase boundaries (data px).
    law : "vegard", "nonlinear" or callable
        Truth eps0(X) - eps0(0), crystal frame ([100], [001] (, shear)).
    stiffness : {"composition", "homogeneous"}
        C(X) linear between FePO4 (X = 0) and LiFePO4 (X = 1) (default), or the
        homogeneous stiffness of ``material``.
    material : str
        The homogeneous material (``stiffness="homogeneous"``).
    crystal_angle : float
        Angle from +x to [100] (rad).
    plane : {"stress", "strain"}
    n_dislocations : int
        Edge dislocations (lines along the beam, [010]); each Burgers vector is
        +-[100] or +-[001] of the local lattice, cores at least 12 px apart, 8 px
        inside the edge, never on a pixel centre.
    noise : float
        Standard deviation of the strain noise on the data grid (each component;
        rotation in rad), spatially correlated (see ``probe_sigma``).
    xray_factor : int
        X-ray pixel size / data pixel size.
    psf_first_zero : float
        First dark ring of the X-ray Airy PSF (X-ray px).
    probe_sigma : float
        Gaussian probe (fine px) that spreads the fine-grid noise (and the signal)
        before the block mean; 0 gives block-white noise.
    hole_fraction : float
        Fraction of the data pixels that are failed fits (NaN), in clusters, kept
        4 px away from the cores.
    reference : (4,) floats
        Constant reference strain e11, e22, e12 and rotation offset added.
    refine : int
        Fine grid / data grid (>= 2).
    seed : int
    fill : float
        Fraction of the grid the particle spans.

    Returns
    -------
    RealisticParticle
        ``X_true`` is the block mean of the fine composition (what each data pixel
        holds), ``X_observed`` the X-ray map on the data grid; ``strain_clean`` the
        block-averaged chemistry strain, ``strain_noise_free`` with dislocations and
        reference, ``strain`` with noise and holes. ``mask`` is the data pixels
        wholly inside the particle; ``strain`` is NaN outside it and in ``holes``.
    """
    from ..mechanics import ParticleElasticity, get_material, resolve_stiffness

    refine = int(refine)
    if refine < 2:
        raise ValueError(f"refine must be an integer >= 2 (the fine grid), got {refine}")
    f = refine
    xf = int(xray_factor)
    if xf < 1 or xf != xray_factor:
        raise ValueError(f"xray_factor must be a positive integer, got {xray_factor!r}")
    if not 0 <= hole_fraction < 0.5:
        raise ValueError(f"hole_fraction must lie in [0, 0.5), got {hole_fraction!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    ny, nx = (int(s) for s in shape)
    fine_shape = (ny * f, nx * f)
    ps_f = float(pixel_size) / f

    # -- the particle on the fine grid ------------------------------------------------
    mask_f = platelet_mask(fine_shape, kind=kind, fill=fill)
    X_f = composition_field(mask_f, kind=composition, interface_width=interface_width * f,
                            seed=rng)
    X_f0 = np.where(mask_f, X_f, 0.0)
    law = resolve_law(law)
    if stiffness == "composition":
        Q = resolve_stiffness("LixFePO4", plane)
    elif stiffness == "homogeneous":
        Q = resolve_stiffness(material, plane)
    else:
        raise ValueError(f"stiffness must be 'composition' or 'homogeneous', got {stiffness!r}")
    solver = ParticleElasticity(mask_f, pixel_size=ps_f, stiffness=Q, composition=X_f0,
                                crystal_angle=crystal_angle)
    sol = solver.solve(crystal_to_image_eigenstrain(law(X_f0), crystal_angle),
                       show_progressbar=False)
    clean_f = np.concatenate([sol.strain, sol.rotation[None]], axis=0)
    clean_f = np.where(mask_f, clean_f, 0.0)

    # -- data grid: pixels wholly inside; a data pixel i is fine pixels f i .. f i + f - 1
    _, inside, _ = pool(np.zeros(fine_shape), mask_f, f)     # particle fraction per pixel
    mask = inside > 1 - 1e-9
    X_true = np.where(mask, pool(X_f0, mask_f, f)[0], np.nan)

    # -- dislocations: lattice translations, cores off pixel centres -------------------
    pos, bur, axes_b, lat = np.zeros((0, 2)), np.zeros((0, 2)), [], np.zeros((0, 3))
    disl_f = 0.0
    if n_dislocations:
        a_fp, a_lfp = get_material("FePO4").lattice / 10, get_material("LiFePO4").lattice / 10
        cand = np.argwhere(ndimage.binary_erosion(mask, iterations=8))
        if len(cand) == 0:
            raise ValueError("the particle is too small for dislocations 8 px inside its edge")
        pos = []
        for _ in range(10000):
            if len(pos) == n_dislocations:
                break
            p = cand[rng.integers(len(cand))] + _off_centre(rng, 2)
            if all(np.hypot(*(p - q)) > 12 for q in pos):
                pos.append(p)
        if len(pos) < n_dislocations:
            raise ValueError(f"cannot place {n_dislocations} dislocations 12 px apart")
        pos = np.array(pos)
        c, s = np.cos(crystal_angle), np.sin(crystal_angle)
        bur, lat = [], []
        for p in pos:
            Xc = float(X_true[round(p[0]), round(p[1])])
            abc = a_fp + Xc * (a_lfp - a_fp)        # Vegard lattice at the core (nm)
            axis = "[100]" if rng.random() < 0.5 else "[001]"
            length = abc[0] if axis == "[100]" else abc[2]
            sign = rng.choice([-1.0, 1.0])
            # crystal [100] is at crystal_angle from +x, [001] 90 degrees further
            d = np.array([c, s]) if axis == "[100]" else np.array([-s, c])
            bur.append(sign * length * d)
            axes_b.append(axis)
            lat.append(abc)
        bur, lat = np.array(bur), np.array(lat)
        # data position y -> fine coordinate f y + (f - 1) / 2
        disl_f = dislocation_strain(fine_shape, pos * f + (f - 1) / 2, bur, pixel_size=ps_f)
    ref = np.asarray(reference, dtype=float)

    # -- what the probe sees: signal + fine noise, spread by the probe, block mean ----
    def probe(field):
        # the probe averages material only (vacuum diffracts nothing)
        return masked_gaussian(field, mask_f, probe_sigma) if probe_sigma > 0 else field

    def to_data(field_f):
        return np.where(mask, pool(field_f, mask_f, f)[0], np.nan)

    strain_clean = to_data(probe(clean_f))
    noise_free = to_data(probe(clean_f + disl_f)) + ref[:, None, None]
    noise_free = np.where(mask, noise_free, np.nan)
    raw = to_data(probe(rng.standard_normal((4,) + fine_shape)))
    sd = np.std(raw[:, mask], axis=1, keepdims=True)
    measured_noise = noise * raw / sd[..., None]    # exactly ``noise`` per component
    keep_clear = np.zeros(mask.shape, bool)
    if len(pos):
        yy, xx = np.mgrid[0:ny, 0:nx]
        for p in pos:
            keep_clear |= np.hypot(yy - p[0], xx - p[1]) < 4
    holes = _clustered_holes(mask, hole_fraction, rng, keep_clear)
    strain = np.where(mask & ~holes, noise_free + measured_noise, np.nan)

    # -- the X-ray map: block mean over its pixel, Airy PSF, bilinear onto the data grid
    fx = f * xf                                       # fine px per X-ray px
    my, mx = -(-fine_shape[0] // fx), -(-fine_shape[1] // fx)
    padX = np.zeros((my * fx, mx * fx))
    padW = np.zeros_like(padX)
    padX[:fine_shape[0], :fine_shape[1]] = X_f0 * mask_f
    padW[:fine_shape[0], :fine_shape[1]] = mask_f
    Xt = padX.reshape(my, fx, mx, fx).mean(axis=(1, 3))   # X * thickness fraction
    t = padW.reshape(my, fx, mx, fx).mean(axis=(1, 3))
    k = airy_psf(psf_first_zero)
    # the absorption of each member is blurred, so X is a ratio of blurred amounts
    Xt_b, t_b = (ndimage.convolve(a, k, mode="constant") for a in (Xt, t))
    with np.errstate(invalid="ignore", divide="ignore"):
        X_xray = np.where(t_b > 0.25, Xt_b / t_b, np.nan)
    # data pixel centre i sits at X-ray coordinate (i + 0.5) / xf - 0.5
    cy = (np.arange(ny) + 0.5) / xf - 0.5
    cx = (np.arange(nx) + 0.5) / xf - 0.5
    coords = np.meshgrid(cy, cx, indexing="ij")
    valid = np.isfinite(X_xray)
    num = ndimage.map_coordinates(np.where(valid, X_xray, 0.0), coords, order=1, mode="nearest")
    den = ndimage.map_coordinates(valid.astype(float), coords, order=1, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        X_obs = np.where(den > 0.5, num / den, np.nan)
    if (mask & ~np.isfinite(X_obs)).any():
        idx = ndimage.distance_transform_edt(~np.isfinite(X_obs), return_distances=False,
                                             return_indices=True)
        X_obs = X_obs[tuple(idx)]
    X_obs = np.where(mask, np.clip(X_obs, 0.0, 1.0), np.nan)

    return RealisticParticle(
        mask=mask, pixel_size=float(pixel_size), X_true=X_true, X_observed=X_obs, law=law,
        crystal_angle=float(crystal_angle), strain_clean=strain_clean, strain=strain,
        reference=ref, dislocation_positions=pos, burgers=bur, noise=float(noise),
        blur_factor=xf,
        settings={"generator": "realistic_particle", "stiffness": stiffness,
                  "material": "LixFePO4" if stiffness == "composition" else material,
                  "plane": plane, "kind": kind, "composition": composition, "seed": seed,
                  "refine": f, "probe_sigma": probe_sigma, "psf": "airy",
                  "psf_first_zero": psf_first_zero,
                  "hole_fraction": float(holes.sum() / mask.sum())},
        strain_noise_free=noise_free, holes=holes, refine=f, burgers_axes=tuple(axes_b),
        lattice_nm=lat,
    )
