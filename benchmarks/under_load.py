"""The demo on a quiet machine and next to busy processes: time of each step, and ratio.

Users run the chain next to other work (and collections run it inside dask workers):
with more runnable threads than cores, OpenBLAS's worker threads spin-wait for each
other, and small BLAS/LAPACK calls become orders of magnitude slower. The package
limits BLAS to one thread where the work is small or already parallel
(:func:`hyperspy_chemomech._utils.one_blas_thread`). This benchmark measures what is
left of the collapse.

Each demo (``python -m hyperspy_chemomech demo``, its steps in ``_demo_steps.py``) runs
in a fresh process, so that the BLAS thread pool starts as a user's would: by default
the benchmark removes ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` /
``MKL_NUM_THREADS`` from the children's environment (OpenBLAS then starts one thread
per core), ``--keep-env`` keeps them. It runs the demo quietly, then starts
``--spinners`` processes that each spin one core in pure Python, runs it again, and
reports each step's wall time, its process CPU time and the loaded / quiet ratios
(the composition step's ``align_energies`` too). The CPU-time ratio tells a collapse
from a fair share: a step that only waits for the cores keeps its CPU time, threads
that spin-wait burn more. ``--compare`` adds the same two runs with the package's BLAS
thread control switched off (the controller replaced by a no-op in the child), the
"before" of the same run.

The machine's load (``os.getloadavg()``, 1 minute) is recorded beside every figure:
"quiet" only means no spinners of ours; on a shared machine other work also counts.

Usage::

    python benchmarks/under_load.py                  # 6 spinners, demo size 60
    python benchmarks/under_load.py --compare        # also without BLAS control
    python benchmarks/under_load.py --size 150 --spinners 6 --repeat 2

Prints a table and ends with one line of JSON holding the figures.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _spin():  # pragma: no cover - runs in the spinner processes
    """Keep one core busy in pure Python (no BLAS, no I/O)."""
    x = 0
    while True:
        x += 1


class _NoLimit:
    """A stand-in for threadpoolctl's controller whose ``limit`` does nothing."""

    def limit(self, *args, **kwargs):
        return contextlib.nullcontext()


def _timed(func, name, cpu):
    """``func`` recording its process CPU time (all threads) under ``cpu[name]``."""

    def wrapper(*args, **kwargs):
        c0 = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            cpu[name] = round(cpu.get(name, 0.0) + time.process_time() - c0, 3)

    return wrapper


def _worker(control, size, seed):
    """Run the demo once in this process; print its timings as one JSON line.

    Besides the wall time of each step (the demo's own ``timings_s``), the process
    CPU time of each step (all its threads) is recorded: a step that is only
    starved of the cores keeps its CPU time, one whose threads spin-wait burns more.
    """
    import hyperspy_chemomech._demo as demo
    import hyperspy_chemomech._utils as u
    from hyperspy_chemomech._demo import run_demo
    from hyperspy_chemomech.signals.xray_absorption import XrayAbsorptionSpectrum

    cpu = {}
    steps_of = demo._steps
    demo._steps = lambda: [(n, _timed(f, n, cpu)) for n, f in steps_of()]
    XrayAbsorptionSpectrum.align_energies = _timed(XrayAbsorptionSpectrum.align_energies,
                                                   "composition.align_energies", cpu)

    import numpy  # noqa: F401  (loads the BLAS, so that threadpoolctl can see it)

    if not control:
        u._CONTROLLER = _NoLimit()
    try:
        from threadpoolctl import threadpool_info

        blas = [{"api": i["internal_api"], "threads": i["num_threads"]}
                for i in threadpool_info() if i["user_api"] == "blas"]
    except Exception:  # pragma: no cover
        blas = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = run_demo(out=out, seed=seed, size=size, verbose=False)
        total = time.perf_counter() - t0
    steps = dict(summary["timings_s"])
    inner = summary["steps"]["composition"].get("timings_s", {})
    if "align_energies" in inner:
        steps["composition.align_energies"] = inner["align_energies"]
    print(json.dumps({"steps": steps, "cpu_s": cpu, "total_s": round(total, 3), "blas": blas,
                      "load_start": round(load0, 2),
                      "load_end": round(os.getloadavg()[0], 2)}))


def _run_child(control, size, seed, keep_env):
    env = dict(os.environ)
    if not keep_env:
        for k in BLAS_ENV:
            env.pop(k, None)
    env.setdefault("MPLBACKEND", "Agg")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker",
           "--control", "on" if control else "off", "--size", str(size), "--seed", str(seed)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"demo child failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _best(runs):
    """Per-step best (smallest) wall time over repeats, its CPU time and the run's load."""
    out = {}
    for r in runs:
        for step, t in r["steps"].items():
            if step not in out or t < out[step]["s"]:
                out[step] = {"s": t, "cpu": r["cpu_s"].get(step, float("nan")),
                             "load": r["load_end"]}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spinners", type=int, default=6, help="busy processes (default 6)")
    parser.add_argument("--size", type=int, default=60,
                        help="demo strain grid's short side, px (default 60; the CLI's 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="demo runs per condition")
    parser.add_argument("--compare", action="store_true",
                        help="also run with the package's BLAS thread control off")
    parser.add_argument("--keep-env", action="store_true",
                        help="keep OMP/OPENBLAS/MKL_NUM_THREADS for the demo processes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--control", default="on", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.control == "on", args.size, args.seed)
        return

    modes = [True, False] if args.compare else [True]
    quiet, loaded = {}, {}
    for control in modes:
        quiet[control] = [_run_child(control, args.size, args.seed, args.keep_env)
                          for _ in range(args.repeat)]
    ctx = multiprocessing.get_context("spawn")
    spinners = [ctx.Process(target=_spin, daemon=True) for _ in range(args.spinners)]
    for p in spinners:
        p.start()
    try:
        time.sleep(2.0)  # let the spinners take their cores
        for control in modes:
            loaded[control] = [_run_child(control, args.size, args.seed, args.keep_env)
                               for _ in range(args.repeat)]
    finally:
        for p in spinners:
            p.terminate()
        for p in spinners:
            p.join()

    figures = {"spinners": args.spinners, "size": args.size, "seed": args.seed,
               "repeat": args.repeat, "cpu_count": os.cpu_count(),
               "blas": quiet[True][0]["blas"], "kept_env": bool(args.keep_env),
               "env": {k: os.environ.get(k) for k in BLAS_ENV}}
    print(f"\nDemo (size {args.size}, seed {args.seed}) quiet and with {args.spinners} "
          f"spinning processes on {os.cpu_count()} cores; BLAS "
          f"{figures['blas']}; best of {args.repeat}; load = 1-min load average "
          "at the end of the run\n")
    for control in modes:
        q, lo = _best(quiet[control]), _best(loaded[control])
        label = "BLAS control on (the package)" if control else "BLAS control off (before)"
        rows = {}
        print(label)
        hdr = (f"{'step':<28}{'quiet (s)':>10}{'cpu':>8}{'load':>6}{'loaded (s)':>12}"
               f"{'cpu':>8}{'load':>6}{'ratio':>8}{'cpu ratio':>10}")
        print(hdr)
        print("-" * len(hdr))
        for step in q:
            ratio = lo[step]["s"] / max(q[step]["s"], 1e-9)
            cpu_ratio = lo[step]["cpu"] / max(q[step]["cpu"], 1e-9)
            rows[step] = {"quiet_s": q[step]["s"], "quiet_cpu_s": q[step]["cpu"],
                          "quiet_load": q[step]["load"], "loaded_s": lo[step]["s"],
                          "loaded_cpu_s": lo[step]["cpu"], "loaded_load": lo[step]["load"],
                          "ratio": round(ratio, 2), "cpu_ratio": round(cpu_ratio, 2)}
            print(f"{step:<28}{q[step]['s']:>10.3f}{q[step]['cpu']:>8.2f}{q[step]['load']:>6.1f}"
                  f"{lo[step]['s']:>12.3f}{lo[step]['cpu']:>8.2f}{lo[step]['load']:>6.1f}"
                  f"{ratio:>7.1f}x{cpu_ratio:>9.1f}x")
        worst = max(rows, key=lambda s: rows[s]["ratio"])
        print(f"worst: {worst} {rows[worst]['ratio']:.1f}x\n")
        figures["control_on" if control else "control_off"] = {
            "steps": rows, "worst_step": worst, "worst_ratio": rows[worst]["ratio"],
            "quiet_total_s": min(r["total_s"] for r in quiet[control]),
            "loaded_total_s": min(r["total_s"] for r in loaded[control])}
    print(json.dumps({"benchmark": "under_load", **figures}))


if __name__ == "__main__":
    main()
