"""Command line: ``python -m hyperspy_chemomech demo|run ...``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hyperspy_chemomech",
        description="Correlative chemo-mechanics: composition + strain -> eigenstrain law.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole chain on a built-in synthetic particle")
    demo.add_argument("--out", default="chemomech_demo", help="report folder (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data")
    demo.add_argument("--size", type=int, default=None,
                      help="grid size in px of the synthetic data (smaller is faster)")
    run = sub.add_parser("run", help="run the chain on your own files")
    run.add_argument("--xray", required=True,
                     help="X-ray stack: .hspy/.zspy (counts, energy in eV) or NeXus NXstxm .h5/.nxs")
    run.add_argument("--references", required=True, nargs="+",
                     help="reference spectra files, delithiated first, lithiated last")
    run.add_argument("--strain", required=True,
                     help="strain field: .hspy/.zspy (strain_field) or MATLAB .mat")
    run.add_argument("--stem", required=True,
                     help="an image on the strain grid to register onto (e.g. virtual dark field)")
    run.add_argument("--out", default="chemomech_run", help="report folder (default: %(default)s)")
    run.add_argument("--material", default="LiFePO4", help="material (default: %(default)s)")
    run.add_argument("--crystal-angle", type=float, default=0.0,
                     help="angle from +x to [100], rad (default: %(default)s)")
    run.add_argument("--plane", choices=("stress", "strain"), default="stress",
                     help="plane stress (thin platelet) or plane strain (default: %(default)s)")
    run.add_argument("--boundary", choices=("free", "dirichlet"), default="free",
                     help="free: the whole particle is in the strain map; dirichlet: the map "
                          "cuts the particle, its edge is held at the measured displacement "
                          "(default: %(default)s)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")   # the command line only writes figures to files

    if args.command == "demo":
        from ._demo import run_demo

        summary = run_demo(out=args.out, seed=args.seed, size=args.size, verbose=True)
        print(f"report written to {summary['report']}")
        return 0
    if args.command == "run":
        from ._demo import run_files

        summary = run_files(args.xray, args.references, args.strain, args.stem, out=args.out,
                            material=args.material, crystal_angle=args.crystal_angle,
                            plane=args.plane, boundary=args.boundary)
        print(f"report written to {summary['report']}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
