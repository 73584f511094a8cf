"""Command line: ``python -m hyperspy_chemomech demo|run ...``.

Every failure of ``run`` or ``demo`` is one line on stderr naming the problem, exit code 2.
"""

import argparse
import sys
import warnings


class _Usage(Exception):
    """A command-line mistake (argparse's error, made one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Usage(message)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"warning: {str(message).splitlines()[0] if str(message) else category.__name__}\n"


def _parser():
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
    run = sub.add_parser(
        "run", help="run the chain on your own files",
        description="Either --mat FILE (a correlative .mat: strain and composition on one "
                    "grid, e.g. the authors' LFP50_P2.mat) or --xray, --references, --strain "
                    "and --stem (an X-ray stack registered onto a strain map).")
    run.add_argument("--mat", default=None,
                     help="correlative MATLAB file: strain (exx, eyy, exy, theta) and FP/LFP "
                          "maps on one grid")
    run.add_argument("--pixel-size", type=float, default=None, metavar="NM",
                     help="pixel size (nm) of a .mat file that holds none")
    run.add_argument("--xray", default=None,
                     help="X-ray stack: .hspy/.zspy (counts, energy in eV) or NeXus NXstxm .h5/.nxs")
    run.add_argument("--references", default=None, nargs="+",
                     help="reference spectra files, delithiated first, lithiated last")
    run.add_argument("--strain", default=None,
                     help="strain field: .hspy/.zspy (strain_field) or MATLAB .mat")
    run.add_argument("--stem", default=None,
                     help="an image on the strain grid to register onto (e.g. virtual dark field)")
    run.add_argument("--out", default="chemomech_run", help="report folder (default: %(default)s)")
    run.add_argument("--material", default="LixFePO4",
                     help="material (default: %(default)s, C(X) between FePO4 and LiFePO4)")
    run.add_argument("--crystal-angle", type=float, default=None,
                     help="angle from +x to [100], rad (default: the frame stored with the strain "
                          "field, e.g. found by the .mat reader; else 0)")
    run.add_argument("--plane", choices=("stress", "strain"), default="stress",
                     help="plane stress (thin platelet) or plane strain (default: %(default)s)")
    run.add_argument("--boundary", choices=("free", "dirichlet"), default="free",
                     help="free: the whole particle is in the strain map; dirichlet: the map "
                          "cuts the particle, its edge is held at the measured displacement "
                          "(default: %(default)s)")
    return parser


def _run(args):
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise _Usage(f"--pixel-size must be a positive number of nm, got {args.pixel_size}")
    chain = {"--xray": args.xray, "--references": args.references, "--strain": args.strain,
             "--stem": args.stem}
    common = dict(out=args.out, material=args.material, crystal_angle=args.crystal_angle,
                  plane=args.plane, boundary=args.boundary)
    if args.mat is not None:
        given = [k for k, v in chain.items() if v is not None]
        if given:
            raise _Usage(f"--mat holds strain and composition on one grid: drop {', '.join(given)}")
        from ._demo import run_mat

        return run_mat(args.mat, pixel_size=args.pixel_size, **common)
    missing = [k for k, v in chain.items() if v is None]
    if missing:
        raise _Usage(f"give --mat FILE, or all of --xray, --references, --strain and --stem "
                     f"(missing {', '.join(missing)})")
    from ._demo import run_files

    return run_files(args.xray, args.references, args.strain, args.stem,
                     pixel_size=args.pixel_size, **common)


def main(argv=None):
    """Entry point; returns the exit code (0 success, 2 a failure, said in one line)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _Usage as e:
        print(f"error: {e} (python -m hyperspy_chemomech --help)", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")   # the command line only writes figures to files

    if args.command in ("demo", "run"):
        # a failure is one line naming the problem, never a traceback
        previous = warnings.formatwarning
        warnings.formatwarning = _one_line_warning
        try:
            if args.command == "demo":
                from ._demo import run_demo

                summary = run_demo(out=args.out, seed=args.seed, size=args.size, verbose=True)
            else:
                summary = _run(args)
        except _Usage as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # noqa: BLE001 - any failure: one line, no traceback
            where = f"{type(e).__name__}: " if not isinstance(e, (ValueError, OSError)) else ""
            text = " ".join(str(e).split()) or type(e).__name__
            print(f"error: {where}{text}", file=sys.stderr)
            return 2
        finally:
            warnings.formatwarning = previous
        print(f"report written to {summary['report']}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
