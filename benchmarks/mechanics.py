"""Benchmark of the mechanics engine: one factorisation, many eigenstrain fields.

For fully-masked square grids (128^2 ... 1024^2 px) it times ParticleElasticity's
assembly, factorisation and 30 right-hand sides (solve plus the strain and rotation maps),
records each size's peak memory (every size runs in its own process), and compares with
the naive route, a fresh ``scipy.sparse.linalg.spsolve`` of the same reduced system per
right-hand side (timed on 3 and reported per right-hand side; skipped where its factor
would not fit in memory). The last line printed is JSON with all figures.

Usage::

    python benchmarks/mechanics.py            # 128, 256, 512, 1024
    python benchmarks/mechanics.py --quick    # 64, 128
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

N_RHS = 30
BATCH = 10
N_NAIVE = 3
NAIVE_MAX = 512  # spsolve's COLAMD factor of 1024^2 needs > 10 GB


def _peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB (Linux)


def _fields(n, n_rhs, seed=0):
    """Smooth random eigenstrain fields (3 components) like composition-law basis maps."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    out = np.empty((n_rhs, 3, n, n))
    for k in range(n_rhs):
        for c in range(3):
            kx, ky, ph = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.3)
            out[k, c] = 0.01 * np.sin(2 * np.pi * (kx * x + ky * y) + ph)
    return out


def _solver(n, precision="auto"):
    from hyperspy_chemomech.mechanics import ParticleElasticity, get_material, plane_stiffness

    q = plane_stiffness(get_material("LiFePO4").stiffness)
    return ParticleElasticity(np.ones((n, n), bool), pixel_size=1.0, stiffness=q,
                              crystal_angle=0.3, precision=precision)


def worker_engine(n, precision="auto"):
    # import outside the timing (the package's names load lazily, on first use)
    from hyperspy_chemomech.mechanics import ParticleElasticity  # noqa: F401

    t0 = time.perf_counter()
    s = _solver(n, precision)
    t1 = time.perf_counter()
    s.factorize()  # assembly (into the elimination order) + ordering + factorisation
    t2 = time.perf_counter()
    # the 30 fields come in batches, as a caller building them would pass them; the
    # factor is reused across the calls and every strain and rotation map is kept
    solve_s, strain, rotation = 0.0, [], []
    for b in range(0, N_RHS, BATCH):
        eps = _fields(n, min(BATCH, N_RHS - b), seed=b)
        t = time.perf_counter()
        sol = s.solve(eps, show_progressbar=False)
        strain.append(sol.strain)
        rotation.append(sol.rotation)
        solve_s += time.perf_counter() - t
        del sol, eps
    assert all(np.isfinite(a).all() for a in strain + rotation)
    return {"n": n, "n_dof": s.n_dof, "setup_s": t1 - t0, "factor_s": t2 - t1,
            "solve30_s": solve_s, "total_s": t2 - t0 + solve_s, "batch": BATCH,
            "precision": s._factor.precision, "factor_nnz": s._factor.nnz,
            "peak_gb": _peak_gb(), "cg_iterations": s._factor.iterations}


def worker_naive(n):
    import scipy.sparse.linalg as spla

    eps = _fields(n, N_NAIVE)
    s = _solver(n)
    free, _ = s._free_dofs()
    kff = s.K[free][:, free].tocsc()
    f = s.force(eps)[:, free]
    t0 = time.perf_counter()
    for k in range(N_NAIVE):
        spla.spsolve(kff, f[k])
    t1 = time.perf_counter()
    return {"n": n, "naive_per_rhs_s": (t1 - t0) / N_NAIVE, "naive_peak_gb": _peak_gb()}


def _run(kind, n, precision="auto"):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, __file__, "--worker", kind, str(n), precision],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{kind} {n}: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (64, 128)")
    ap.add_argument("--sizes", type=int, nargs="+", help="grid sizes (px per side)")
    ap.add_argument("--precision", default="auto", choices=["auto", "double", "mixed"],
                    help="ParticleElasticity's factorisation precision")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind, n, prec = a.worker[0], int(a.worker[1]), a.worker[2]
        print(json.dumps(worker_engine(n, prec) if kind == "engine" else worker_naive(n)))
        return
    sizes = a.sizes or ([64, 128] if a.quick else [128, 256, 512, 1024])
    rows = []
    print(f"ParticleElasticity, full square grids, LiFePO4 plane stress, {N_RHS} right-hand "
          f"sides (in calls of {BATCH}, one factorisation); baseline: scipy spsolve per "
          f"right-hand side ({N_NAIVE} timed)")
    hdr = (f"{'size':>6} {'dofs':>9} {'prec':>6} {'setup':>9} {'factor':>8} "
           f"{'30 RHS':>8} {'total':>8} {'peak GB':>8} {'naive/RHS':>10} {'naive x30':>10} "
           f"{'ratio':>7}")
    print(hdr)
    print("-" * len(hdr))
    for n in sizes:
        row = _run("engine", n, a.precision)
        if n <= NAIVE_MAX:
            row.update(_run("naive", n))
            row["naive_30_s"] = row["naive_per_rhs_s"] * N_RHS
            row["ratio"] = row["naive_30_s"] / row["total_s"]
        else:
            row["naive_per_rhs_s"] = row["naive_30_s"] = row["ratio"] = None
        rows.append(row)

        def fmt(v, f="{:10.2f}"):
            return f.format(v) if v is not None else f"{'skipped':>10}"

        print(f"{n:>4}^2 {row['n_dof']:>9} {row['precision']:>6} {row['setup_s']:9.2f} "
              f"{row['factor_s']:8.2f} {row['solve30_s']:8.2f} {row['total_s']:8.2f} "
              f"{row['peak_gb']:8.2f} {fmt(row['naive_per_rhs_s'])} {fmt(row['naive_30_s'])} "
              f"{fmt(row['ratio'], '{:7.1f}')}")
    growth = None
    by = {r["n"]: r for r in rows}
    if 256 in by and 1024 in by:
        growth = float(np.log(by[1024]["total_s"] / by[256]["total_s"]) / np.log(16))
        print(f"\ngrowth 256^2 -> 1024^2: time ~ N^{growth:.2f} (N = pixels; target <= 1.5)")
    if NAIVE_MAX < max(sizes):
        print(f"naive route skipped above {NAIVE_MAX}^2: its COLAMD LU would need > 10 GB")
    print("seconds are wall time; 'setup' = mesh and stiffness checks, 'factor' = assembly in "
          "nested-dissection order + SuperLU factorisation, '30 RHS' = forces, solves and the "
          "strain and rotation maps; 'total' = all three; 'ratio' = naive x30 / total")
    print(json.dumps({"benchmark": "mechanics", "n_rhs": N_RHS, "baseline": "scipy spsolve per "
                      "right-hand side", "growth_exponent_256_1024": growth, "sizes": rows}))


if __name__ == "__main__":
    main()
