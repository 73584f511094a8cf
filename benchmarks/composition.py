"""Composition maps: our vectorised unmixing against HyperSpy's own Model route.

Baseline (named, same process, same data): a HyperSpy ``Model1D`` with two
``ScalableFixedPattern`` components (the FePO4 and LiFePO4 references on the data's
energy axis, non-linear ``xscale``/``shift`` fixed) fitted with
``multifit(optimizer="lstsq")`` (and ``optimizer="nnls"``). Ours:
``XrayAbsorptionSpectrum.get_composition_map`` with ``method="lstsq"`` / ``"nnls"``,
which also computes X, its Poisson uncertainty, the residual and the particle mask.

Note on the baseline: HyperSpy 2 notices that this model is linear with fixed
non-linear parameters and solves ``optimizer="lstsq"`` for all pixels in one
vectorised least-squares call, so on the ``lstsq`` rows both sides do the same
memory-bound work and the ratio is small; ``optimizer="nnls"`` is solved pixel by
pixel there, against our vectorised exact NNLS. The JSON reports every row.

Usage::

    python benchmarks/composition.py           # 256 x 256 px x 120 energies
    python benchmarks/composition.py --quick   # 64 x 64 px x 60 energies

Prints a table and ends with one line of JSON holding the figures.
"""

import argparse
import json
import time
import tracemalloc

import numpy as np


def _hyperspy_route(od, refs, optimizer, **kwargs):
    """Coefficients (ny, nx, 2) from HyperSpy's Model + ScalableFixedPattern."""
    import hyperspy.api as hs

    m = od.create_model()
    comps = [hs.model.components1D.ScalableFixedPattern(r) for r in refs]
    m.extend(comps)
    m.set_parameters_not_free(only_nonlinear=True)
    t0 = time.perf_counter()
    m.multifit(optimizer=optimizer, show_progressbar=False, **kwargs)
    dt = time.perf_counter() - t0
    coef = np.stack([c.yscale.map["values"] for c in comps], axis=-1)
    return coef, dt


def _ours(od, refs, method, **kwargs):
    t0 = time.perf_counter()
    comp = od.get_composition_map(refs, method=method, show_progressbar=False, **kwargs)
    dt = time.perf_counter() - t0
    coef = np.asarray(comp.metadata.Chemomech.composition_maps.coefficients)
    return coef, dt


def _ours_peak_memory(od, refs, method):
    """Peak of the memory allocated during the call (tracemalloc; a separate run,
    since tracing slows the allocations down)."""
    tracemalloc.start()
    od.get_composition_map(refs, method=method, show_progressbar=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def _relative_difference(a, b):
    """max |a - b| / max |b| over all pixels (coefficients of one reference scale)."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small stack (64 x 64 x 60)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (best of)")
    args = parser.parse_args(argv)

    from hyperspy.defaults_parser import preferences

    from hyperspy_chemomech.simulate import synthetic_xray_stack

    preferences.General.show_progressbar = False
    shape, ne = ((64, 64), 60) if args.quick else ((256, 256), 120)
    # uniform energies: HyperSpy's ScalableFixedPattern then needs no resampling
    stack, truth = synthetic_xray_stack(shape=shape, n_energies=ne, i0=1e4, max_drift=0.0,
                                        spacing="uniform", seed=0)
    od = stack.to_optical_density()
    refs = list(truth["references"])
    stack_bytes = od.data.nbytes

    rows, figures = [], {"shape": list(shape), "n_energies": ne, "stack_bytes": stack_bytes}
    cases = [
        # name, HyperSpy optimizer + options, our method + options
        ("lstsq", ("lstsq", {}), ("lstsq", {})),
        ("lstsq+errors", ("lstsq", {"calculate_errors": True}), ("lstsq", {"noise": "residual"})),
        ("nnls", ("nnls", {}), ("nnls", {})),
    ]
    for name, (opt, hs_kw), (method, our_kw) in cases:
        # best of several runs on both sides (the slow per-pixel NNLS baseline once)
        t_hs = np.inf
        for _ in range(max(1, args.repeat if opt == "lstsq" else 1)):
            theirs, dt = _hyperspy_route(od, refs, opt, **hs_kw)
            t_hs = min(t_hs, dt)
        best = np.inf
        for _ in range(max(1, args.repeat)):
            ours, dt = _ours(od, refs, method, **our_kw)
            best = min(best, dt)
        peak = _ours_peak_memory(od, refs, method)
        rel = _relative_difference(ours, theirs)
        rows.append((name, t_hs, best, t_hs / best, rel, peak / stack_bytes))
        figures[name] = {
            "hyperspy_multifit_s": round(t_hs, 4), "ours_s": round(best, 4),
            "ratio": round(t_hs / best, 2), "max_relative_coefficient_difference": rel,
            "ours_peak_memory_bytes": int(peak),
            "peak_memory_over_stack": round(peak / stack_bytes, 3),
        }

    print(f"\nComposition map of a {shape[0]} x {shape[1]} px x {ne} energies OD stack "
          f"({stack_bytes / 2**20:.0f} MiB float64)")
    print("baseline: HyperSpy Model1D + 2 ScalableFixedPattern, multifit(optimizer=...)")
    print("ours:     XrayAbsorptionSpectrum.get_composition_map(method=...) incl. X, "
          "uncertainty (Poisson;\n          residual-based for lstsq+errors, as HyperSpy's "
          "calculate_errors), residual, mask\n")
    hdr = (f"{'method':<13}{'HyperSpy (s)':>14}{'ours (s)':>11}{'ratio':>9}"
           f"{'max rel. diff':>15}{'peak mem / stack':>18}")
    print(hdr)
    print("-" * len(hdr))
    for method, t_hs, t_us, ratio, rel, mem in rows:
        print(f"{method:<13}{t_hs:>14.3f}{t_us:>11.4f}{ratio:>8.1f}x{rel:>15.2e}{mem:>18.3f}")
    print()
    print(json.dumps({"benchmark": "composition", **figures}))


if __name__ == "__main__":
    main()
