"""A correlative synthetic data set: one particle seen by X-rays and by 4D-STEM.

The same particle (composition, law, dislocations) gives

- the strain and rotation maps on the fine 4D-STEM grid (:mod:`.particle`),
- a virtual dark-field image on that grid (thickness with dark diffraction blobs),
- an X-ray spectral stack (Fe L-edge, counts) on a grid several times coarser,
  rotated and possibly mirrored, each X-ray pixel averaging thickness and
  composition over its area, with drift between energies and Poisson noise,

plus the true map between the two grids. The demo and the end-to-end tests run
the whole chain on it and compare with the truth.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .._utils import with_one_blas_thread


@dataclass
class CorrelativeParticle:
    """Everything :func:`correlative_particle` makes (observations and truth)."""

    particle: object          #: SyntheticParticle (strain grid, law, dislocations, truth)
    stack: object             #: XrayAbsorptionSpectrum, counts on the X-ray grid
    references: tuple         #: (FePO4, LiFePO4) attenuation spectra, Signal1D (1/nm)
    stem_image: object        #: Signal2D, virtual dark field on the strain grid
    transform: object         #: CorrelativeTransform, true map X-ray (moving) -> STEM (fixed)
    xray_pixel_size: float    #: nm
    thickness: np.ndarray     #: (ny, nx) nm on the strain grid
    drift: np.ndarray         #: (n_energies, 2) px drift of each X-ray frame
    xray_composition: np.ndarray  #: (my, mx) true X seen by each X-ray pixel (NaN outside)
    xray_thickness: np.ndarray    #: (my, mx) nm, area- and beam-averaged thickness


# small BLAS work: one thread (spin-waiting BLAS threads: ~11x slower under load, #16)
@with_one_blas_thread
def correlative_particle(shape=(150, 250), pixel_size=5.0, xray_factor=4.0, rotation_deg=None,
                         mirror=None, law="vegard", noise=2e-3, n_dislocations=5,
                         n_energies=60, i0=1e4, max_drift=2.0, beam_sigma=0.5, seed=0,
                         **particle_kwargs):
    """Simulate one particle imaged by X-ray spectro-microscopy and by 4D-STEM.

    Parameters
    ----------
    shape : (int, int)
        Strain (4D-STEM) grid (ny, nx) in px.
    pixel_size : float
        Strain-grid pixel size (nm).
    xray_factor : float
        X-ray pixel size / strain pixel size.
    rotation_deg : float, optional
        Rotation of the X-ray frame (deg); default random in [0, 360).
    mirror : bool, optional
        Mirror between the frames; default random.
    law : "vegard", "nonlinear" or callable
        Truth eps0(X) - eps0(0) (crystal frame).
    noise : float
        Strain noise (standard deviation).
    n_dislocations : int
        Edge dislocations in the strain map.
    n_energies : int
        Energies of the X-ray stack (non-uniform, fine across the edges).
    i0 : float
        Incident counts per pixel and energy.
    max_drift : float
        Largest drift between X-ray frames (X-ray px).
    beam_sigma : float
        Gaussian blur of the X-ray beam (X-ray px).
    seed : int
    **particle_kwargs
        Passed to :func:`~hyperspy_chemomech.simulate.particle.make_particle`.

    Returns
    -------
    CorrelativeParticle
    """
    from ..registration import CorrelativeTransform, Grid, resample, similarity_linear
    from ..signals import make_stack
    from .images import _blobs, _image_signal, _particle, _thickness
    from .particle import make_particle
    from .xray_stack import (
        _fe_l_edge_mu,
        _smooth_drift,
        edge_energies,
        fe_l_edge_references,
    )

    if xray_factor < 1:
        raise ValueError(f"xray_factor must be >= 1, got {xray_factor}")
    rng = np.random.default_rng(seed)
    rotation_deg = rng.uniform(0, 360) if rotation_deg is None else float(rotation_deg)
    mirror = bool(rng.integers(2)) if mirror is None else bool(mirror)
    # an irregular platelet with an uneven thickness: real particles are not
    # symmetric, and that is what lets a registration tell mirror and rotation apart
    outline = _particle(tuple(shape), "hexagon", rng)
    p = make_particle(shape=shape, pixel_size=pixel_size, law=law, noise=noise,
                      n_dislocations=n_dislocations, blur_factor=1, seed=seed, mask=outline,
                      **particle_kwargs)
    mask = p.mask
    t = _thickness(mask, rng)
    t = np.where(mask, 100.0 * t / t[mask].max(), 0.0)  # nm

    g_f = Grid(tuple(shape), (pixel_size, pixel_size), (0.0, 0.0))
    ys, xs = np.nonzero(mask)
    c_f = np.array([xs.mean(), ys.mean()]) * pixel_size
    radius = np.sqrt(((xs * pixel_size - c_f[0]) ** 2 + (ys * pixel_size - c_f[1]) ** 2).max())
    p_m = xray_factor * pixel_size
    n_m = int(np.ceil(2.4 * radius / p_m))
    g_m = Grid((n_m, n_m), (p_m, p_m), (0.0, 0.0))
    c_m = np.array([p_m * (n_m - 1) / 2, p_m * (n_m - 1) / 2])
    lin = similarity_linear(np.deg2rad(rotation_deg), 1.0, mirror)
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = c_f + rng.uniform(-0.05, 0.05, 2) * radius - lin @ c_m
    truth = CorrelativeTransform(m)

    # each X-ray pixel averages thickness and Li content over its area
    inv = np.linalg.inv(m)
    t_m = np.nan_to_num(resample(t, g_f, g_m, inv, order=1, area_average=True))
    tx_m = np.nan_to_num(resample(t * np.nan_to_num(p.X_true), g_f, g_m, inv, order=1,
                                  area_average=True))
    # the X-ray beam (zone-plate focus) blurs by about half a pixel
    t_m = ndimage.gaussian_filter(t_m, beam_sigma)
    tx_m = ndimage.gaussian_filter(tx_m, beam_sigma)
    e = edge_energies(n_energies)
    mu_fp, mu_lfp = _fe_l_edge_mu(e, "FePO4"), _fe_l_edge_mu(e, "LiFePO4")
    od = t_m[..., None] * mu_fp + tx_m[..., None] * (mu_lfp - mu_fp)
    drift = _smooth_drift(e.size, float(max_drift), rng)
    counts = np.empty_like(od)
    for k in range(e.size):
        counts[..., k] = i0 * np.exp(-ndimage.shift(od[..., k], drift[k], order=3,
                                                    mode="nearest"))
    stack = make_stack(rng.poisson(counts).astype(float), e, pixel_size=p_m, units="nm",
                       title="Synthetic Fe L-edge stack (correlative)",
                       quantity="Intensity (counts)")

    df = t / t.max() * (1.0 - _blobs(tuple(shape), mask, rng, 8))
    df = 0.02 + df + 0.03 * rng.standard_normal(df.shape)
    stem = _image_signal(df, pixel_size, (0.0, 0.0), "4D-STEM virtual dark field (simulated)")
    return CorrelativeParticle(particle=p, stack=stack, references=fe_l_edge_references(e),
                               stem_image=stem, transform=truth, xray_pixel_size=float(p_m),
                               thickness=t, drift=drift,
                               xray_composition=np.where(t_m > 0.05 * t.max(),
                                                         tx_m / np.maximum(t_m, 1e-12), np.nan),
                               xray_thickness=t_m)
