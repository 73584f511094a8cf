"""Validation of the learner on synthetic particles with known truth (tests, benchmarks)."""

import numpy as np


def coverage_study(n_seeds=50, seed0=1000, shape=(150, 250), verbose=False, **particle_kwargs):
    """How often the 95 % intervals and bands of :func:`learn_law` cover the truth.

    Parameters
    ----------
    n_seeds : int
        Number of synthetic particles (Vegard law, 4x coarser composition, strain
        noise 2e-3, five edge dislocations unless overridden).
    seed0 : int
        First seed.
    shape : (int, int)
        Strain grid (px).
    verbose : bool
        Print one line per seed.
    **particle_kwargs
        Override :func:`~hyperspy_chemomech.simulate.particle.make_particle` settings.

    Returns
    -------
    dict
        ``slope_coverage`` and ``pointwise_band_coverage`` (per component),
        ``band_coverage`` (the band covers the whole observed range at once), and
        the median / largest absolute relative slope error and median half-width.
    """
    from ..mechanics import resolve_stiffness
    from ..simulate.particle import make_particle
    from ._learn import learn_law

    settings = dict(noise=2e-3, n_dislocations=5, blur_factor=4)
    settings.update(particle_kwargs)
    q = resolve_stiffness("LiFePO4")
    slope_in, band_in, point_in, errs, widths = [], [], [], [], []
    for seed in range(seed0, seed0 + n_seeds):
        p = make_particle(shape=shape, seed=seed, **settings)
        fit = learn_law(p.strain, p.X_observed, p.pixel_size, q, show_progressbar=False)
        ci, truth = fit.vegard["ci95"], p.law.slopes
        slope_in.append((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
        g = np.linspace(*fit.x_range, 41)
        inside = np.abs(fit.evaluate(g) - p.law(g)) <= fit.band(g)
        band_in.append(np.all(inside, axis=1))
        point_in.append(np.mean(inside, axis=1))
        errs.append(fit.vegard["slopes"] / truth - 1)
        widths.append((ci[:, 1] - ci[:, 0]) / 2 / np.abs(truth))
        if verbose:
            print(f"  seed {seed}: slope error {np.round(100 * errs[-1], 2)} %, 95 % half-width "
                  f"{np.round(100 * widths[-1], 2)} %, covered {slope_in[-1]}", flush=True)
    return {"n_seeds": int(n_seeds),
            "slope_coverage": np.mean(slope_in, axis=0).tolist(),
            "pointwise_band_coverage": np.mean(point_in, axis=0).tolist(),
            "band_coverage": np.mean(band_in, axis=0).tolist(),
            "median_abs_slope_err": np.median(np.abs(errs), axis=0).tolist(),
            "max_abs_slope_err": np.max(np.abs(errs), axis=0).tolist(),
            "median_half_width": np.median(widths, axis=0).tolist()}
