"""4D-STEM strain: our one-pass route against pyxem's plain strain workflow.

Baseline (named, same process, same lazy dataset): pyxem 0.21's documented strain
workflow on ``pyxem.data.simulated_strain(lazy=True)``::

    tm = s.template_match_disk(disk_r=R, subtract_min=False)
    v = tm.get_diffraction_vectors(threshold_abs=0.4, min_distance=5)
    v = v.filter_magnitude(0.1, 2)
    strain = v.get_strain_maps(unstrained_vectors=v.inav[0, 0])

Ours: ``strain_from_diffraction(s, reference=((0, 1), (0, 1)), disk_radius=R)``,
which also refines disk centres to sub-pixel precision, fits each pattern's beam
position, weights disks by intensity and returns per-pixel variances. Both are
scored against the strain the generator imposed (``simulated_strain_truth``).

Usage::

    python benchmarks/diffraction.py           # 32 x 32 scan, 256 x 256 detector
    python benchmarks/diffraction.py --quick   # 12 x 12 scan, 256 x 256 detector

Prints a table and ends with one line of JSON holding the figures.
"""

import argparse
import json
import threading
import time

import numpy as np


class _PeakRSS:
    """Peak resident memory above the starting level, sampled every 10 ms."""

    def __init__(self):
        import psutil

        self._proc = psutil.Process()
        self.peak = 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss - self._base)
            time.sleep(0.01)

    def __enter__(self):
        self._base = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _pyxem_route(s, disk_r):
    from hyperspy_chemomech.diffraction import from_pyxem

    t0 = time.perf_counter()
    tm = s.template_match_disk(disk_r=disk_r, subtract_min=False)
    v = tm.get_diffraction_vectors(threshold_abs=0.4, min_distance=5)
    v = v.filter_magnitude(0.1, 2)
    strain = v.get_strain_maps(unstrained_vectors=v.inav[0, 0])
    dt = time.perf_counter() - t0
    return from_pyxem(strain).data, dt


def _our_route(s, disk_r):
    from hyperspy_chemomech.diffraction import strain_from_diffraction

    t0 = time.perf_counter()
    sf = strain_from_diffraction(s, reference=((0, 1), (0, 1)), disk_radius=disk_r,
                                 show_progressbar=False)
    return sf.data, time.perf_counter() - t0


def _rms(got, truth):
    return [float(np.sqrt(np.nanmean((got[i] - truth[i]) ** 2))) for i in range(4)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 x 12 scan")
    args = parser.parse_args(argv)

    import warnings

    from hyperspy.defaults_parser import preferences

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    from pyxem.data import simulated_strain

    from hyperspy_chemomech.diffraction import simulated_strain_truth

    t_import = time.perf_counter() - t0
    preferences.General.show_progressbar = False
    nav = (12, 12) if args.quick else (32, 32)
    det, disk_r = (256, 256), 6
    strain_matrix = np.array([[0.01, 0.005, 0], [0.015, 0.02, 0], [0, 0, 1]])
    s = simulated_strain(navigation_shape=nav, signal_shape=det, disk_radius=disk_r,
                         num_electrons=None, strain_matrix=strain_matrix, lazy=True)
    truth = simulated_strain_truth(strain_matrix, nav, reference=(0, 0))
    n = nav[0] * nav[1]

    # warm both routes up on a 2 x 2 corner (first-call costs: imports, numba),
    # then one timed run of each on the same lazy dataset
    corner = s.inav[:2, :2]
    _our_route(corner, disk_r)
    _pyxem_route(corner, disk_r)
    with _PeakRSS() as mem_ours:
        ours, t_ours = _our_route(s, disk_r)
    with _PeakRSS() as mem_pyxem:
        theirs, t_pyxem = _pyxem_route(s, disk_r)
    ratio = t_ours / t_pyxem
    rms_ours, rms_pyxem = _rms(ours, truth), _rms(theirs, truth)

    print(f"\nStrain from {n} patterns ({nav[0]} x {nav[1]} scan, {det[0]} x {det[1]} "
          f"detector, lazy, {s.data.nbytes / 2**20:.0f} MiB), pyxem import {t_import:.1f} s")
    print("baseline: pyxem template_match_disk -> get_diffraction_vectors -> "
          "filter_magnitude -> get_strain_maps")
    print("ours:     strain_from_diffraction (one dask pass; sub-pixel, beam fit, variances)\n")
    hdr = (f"{'route':<8}{'seconds':>10}{'patterns/s':>12}{'peak RSS MiB':>14}"
           f"{'RMS err e11':>13}{'e22':>10}{'e12':>10}{'theta':>10}")
    print(hdr)
    print("-" * len(hdr))
    for name, t, mem, rms in (("pyxem", t_pyxem, mem_pyxem.peak, rms_pyxem),
                              ("ours", t_ours, mem_ours.peak, rms_ours)):
        print(f"{name:<8}{t:>10.2f}{n / t:>12.1f}{mem / 2**20:>14.0f}"
              + "".join(f"{r:>{13 if i == 0 else 10}.2e}" for i, r in enumerate(rms)))
    print(f"\ntime ours / pyxem = {ratio:.2f}  (overhead {100 * (ratio - 1):+.0f} %; "
          "the target is <= +10 %)")
    print(json.dumps({
        "benchmark": "diffraction", "scan_shape": list(nav), "detector_shape": list(det),
        "patterns": n, "pyxem_s": round(t_pyxem, 3), "ours_s": round(t_ours, 3),
        "pyxem_patterns_per_s": round(n / t_pyxem, 1), "ours_patterns_per_s": round(n / t_ours, 1),
        "ratio_ours_over_pyxem": round(ratio, 3), "overhead_percent": round(100 * (ratio - 1), 1),
        "pyxem_peak_rss_bytes": int(mem_pyxem.peak), "ours_peak_rss_bytes": int(mem_ours.peak),
        "rms_error_ours": rms_ours, "rms_error_pyxem": rms_pyxem,
    }))


if __name__ == "__main__":
    main()
