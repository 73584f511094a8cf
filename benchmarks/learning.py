"""Benchmark of learning the eigenstrain law against the mechanics floor.

For a synthetic LiFePO4 platelet (Vegard law, 4x coarser composition, strain noise
2e-3, five edge dislocations) on each grid it times ``learn_law`` with default
settings (resolution estimated, degree by blocked cross-validation, dislocations
fitted) and, in the same process, the floor every such method pays: one
factorisation of the particle's stiffness plus the same number of forward solves.
The ratio learn / floor is the overhead of everything that is not mechanics.
Each is the best of three runs (alternating), after a warm-up run that pays the
one-time imports.

``--coverage N`` also runs N seeds of the 150 x 250 px Vegard case and prints how
often the 95 % intervals and bands cover the truth (:func:`coverage_study`, also run by
``tests/test_learning_coverage.py``).

Usage::

    python benchmarks/learning.py              # 225x125 and 512x512
    python benchmarks/learning.py --quick      # 225x125 only
    python benchmarks/learning.py --coverage 50
"""

import argparse
import json
import resource
import time

import numpy as np


def _peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def time_case(shape, seed=0, repeat=3):
    from hyperspy_chemomech import mechanics
    from hyperspy_chemomech.learning import LawBasis, learn_law
    from hyperspy_chemomech.learning._design import eigenstrain_fields
    from hyperspy_chemomech.mechanics import ParticleElasticity, resolve_stiffness
    from hyperspy_chemomech.simulate.particle import make_particle

    q = resolve_stiffness("LiFePO4")
    p = make_particle(shape=shape, pixel_size=5.0, noise=2e-3, n_dislocations=5,
                      blur_factor=4, seed=seed, material="LiFePO4")
    n_rhs = 2 * 6  # two components, legendre up to degree 6
    t_learn, t_floor = np.inf, np.inf
    for _ in range(repeat):  # best of `repeat`, alternating: the machine is shared
        mechanics.clear_solver_cache()
        t0 = time.perf_counter()
        fit = learn_law(p.strain, p.X_observed, p.pixel_size, q, show_progressbar=False)
        t_learn = min(t_learn, time.perf_counter() - t0)
        t0 = time.perf_counter()
        # the right-hand sides (basis eigenstrains), one factorisation, the solves
        eig = eigenstrain_fields(LawBasis("legendre", 6), p.X_observed, p.mask, 2, 0.0)
        s = ParticleElasticity(p.mask, pixel_size=p.pixel_size, stiffness=q)
        s.factorize()
        s.solve(eig, show_progressbar=False)
        t_floor = min(t_floor, time.perf_counter() - t0)
        del s
    err = fit.vegard["slopes"] / p.law.slopes - 1
    return {"shape": list(shape), "pixels_in_particle": int(p.mask.sum()), "n_rhs": n_rhs,
            "learn_s": t_learn, "floor_s": t_floor, "ratio": t_learn / t_floor,
            "slope_rel_err": err.tolist(), "sigma_px": fit.sigma_px, "degree": fit.basis.degree,
            "stages_s": fit.selection["timings_s"],
            "peak_gb": _peak_gb()}


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
    from hyperspy_chemomech.learning import learn_law
    from hyperspy_chemomech.mechanics import resolve_stiffness
    from hyperspy_chemomech.simulate.particle import make_particle

    settings = dict(noise=2e-3, n_dislocations=5, blur_factor=4, material="LiFePO4")
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the 225x125 grid only")
    ap.add_argument("--coverage", type=int, default=0, help="seeds for the coverage study")
    a = ap.parse_args()
    shapes = [(125, 225)] if a.quick else [(125, 225), (512, 512)]
    print("learn_law (default settings) vs the mechanics floor (factorisation + same solves)")
    print(f"{'grid':>9} {'pixels':>8} {'RHS':>4} {'learn s':>8} {'floor s':>8} {'ratio':>6} "
          f"{'sigma':>6} {'deg':>4} {'slope err %':>16}")
    # one-time costs (imports of scipy.signal, the progress bar...) are not the method's
    time_case((60, 100), repeat=1)
    rows = []
    for shp in shapes:
        r = time_case(shp)
        rows.append(r)
        print(f"{shp[1]:>4}x{shp[0]:<4} {r['pixels_in_particle']:>8} {r['n_rhs']:>4} "
              f"{r['learn_s']:8.2f} {r['floor_s']:8.2f} {r['ratio']:6.2f} {r['sigma_px']:6.2f} "
              f"{r['degree']:>4} {np.round(100 * np.array(r['slope_rel_err']), 2)}")
        print("          stages (s): " + ", ".join(f"{k} {v:.3f}" for k, v in r["stages_s"].items()))
    out = {"benchmark": "learning",
           "baseline": "the right-hand sides, one factorisation and the same forward solves",
           "cases": rows}
    if a.coverage:
        print(f"\ncoverage over {a.coverage} seeds (150 x 250 px Vegard case):")
        c = coverage_study(a.coverage, verbose=True)
        print(f"95 % slope intervals cover the truth: {c['slope_coverage']} ([100], [001]); "
              f"bands cover everywhere: {c['band_coverage']}; pointwise: "
              f"{c['pointwise_band_coverage']}")
        out["coverage"] = c
    print(json.dumps(out))


if __name__ == "__main__":
    main()
