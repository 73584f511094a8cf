"""Decomposition after learning: reusing the learning's factorisation vs a fresh one.

A synthetic particle (known Vegard law, five edge dislocations, noise 1e-3) is
learned with ``StrainField.learn_eigenstrain``, which factorises the particle's
stiffness once and caches the solver. Then ``StrainField.decompose`` is timed

- ours:     reusing that cached factorisation (what a session does), and
- baseline: after clearing the solver cache, so the decomposition assembles and
            factorises the stiffness again (the named baseline, same data, same process).

Both give the same maps (checked). The residual's Nye map and ``find_dislocations``
are timed too.

Usage::

    python benchmarks/decomposition.py           # 300 x 500 px strain grid
    python benchmarks/decomposition.py --quick   # 100 x 150 px

Prints a table and ends with one line of JSON holding the figures.
"""

import argparse
import json
import time
import tracemalloc

import numpy as np


def _best(fn, repeat):
    best, out = np.inf, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _peak(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid (100 x 150 px)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best of)")
    args = parser.parse_args(argv)

    from hyperspy.defaults_parser import preferences

    from hyperspy_chemomech import mechanics
    from hyperspy_chemomech.simulate.particle import make_particle

    preferences.General.show_progressbar = False
    shape = (100, 150) if args.quick else (300, 500)
    p = make_particle(shape=shape, pixel_size=5.0, noise=1e-3, n_dislocations=5, seed=0)
    strain, comp = p.strain_field(), p.composition_map()
    n_px = int(p.mask.sum())

    mechanics.clear_solver_cache()
    t0 = time.perf_counter()
    law = strain.learn_eigenstrain(comp, degree=1)
    t_learn = time.perf_counter() - t0

    t_reuse, ours = _best(lambda: strain.decompose(comp, law), args.repeat)
    peak_reuse = _peak(lambda: strain.decompose(comp, law))

    def fresh():
        mechanics.clear_solver_cache()
        return strain.decompose(comp, law)

    t_fresh, theirs = _best(fresh, args.repeat)
    peak_fresh = _peak(fresh)
    same = float(np.nanmax(np.abs(ours.residual.data - theirs.residual.data)))

    t_nye, _ = _best(lambda: ours.residual.dislocation_density(), args.repeat)
    t_find, found = _best(lambda: ours.residual.find_dislocations(), args.repeat)

    mb = 2 ** 20
    print(f"\nDecomposition of a {shape[0]} x {shape[1]} px strain field ({n_px} px in the "
          f"particle), after learn_eigenstrain ({t_learn:.2f} s)")
    print("baseline: decompose after clearing the solver cache (assemble + factorise again)")
    print("ours:     decompose reusing the factorisation cached by learning\n")
    hdr = f"{'step':<34}{'seconds':>10}{'peak MiB':>11}{'ratio':>9}"
    print(hdr)
    print("-" * len(hdr))
    print(f"{'decompose, fresh factorisation':<34}{t_fresh:>10.3f}{peak_fresh / mb:>11.1f}"
          f"{'1.0x':>9}")
    print(f"{'decompose, reused (ours)':<34}{t_reuse:>10.3f}{peak_reuse / mb:>11.1f}"
          f"{t_fresh / t_reuse:>8.1f}x")
    print(f"{'Nye map of the residual':<34}{t_nye:>10.3f}{'':>11}{'':>9}")
    print(f"{'find_dislocations':<34}{t_find:>10.3f}{'':>11}{'':>9}")
    print(f"\nmax |residual(ours) - residual(baseline)| = {same:.1e}; "
          f"{len(found)} dislocations found (5 injected)\n")
    print(json.dumps({
        "benchmark": "decomposition", "shape": list(shape), "particle_pixels": n_px,
        "learn_s": round(t_learn, 3), "decompose_fresh_s": round(t_fresh, 4),
        "decompose_reused_s": round(t_reuse, 4), "ratio": round(t_fresh / t_reuse, 2),
        "peak_memory_fresh_bytes": int(peak_fresh), "peak_memory_reused_bytes": int(peak_reuse),
        "nye_map_s": round(t_nye, 4), "find_dislocations_s": round(t_find, 4),
        "n_found": int(len(found)), "max_abs_difference": same,
    }))


if __name__ == "__main__":
    main()
