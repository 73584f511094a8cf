"""Command line: ``python -m hyperspy_chemomech demo|run ...``."""

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line (no usage block) and exit with code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _one_line(err):
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}" if isinstance(err, (KeyError, IndexError)) else text


def main(argv=None):
    """Run the command line; returns the exit code (0, or 2 on any failure).

    A failure prints one line naming the problem on stderr, no traceback (set the
    environment variable ``CHEMOMECH_TRACEBACK=1`` to see it).
    """
    import os

    try:
        return _main(argv)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - the CLI reports every failure in one line
        if os.environ.get("CHEMOMECH_TRACEBACK"):
            raise
        print(f"python -m hyperspy_chemomech: error: {_one_line(err)}", file=sys.stderr)
        return 2


def _main(argv=None):
    parser = _Parser(
        prog="python -m hyperspy_chemomech",
        description="Correlative chemo-mechanics: composition + strain -> eigenstrain law.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
