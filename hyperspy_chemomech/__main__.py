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
    args = parser.parse_args(argv)

    if args.command == "demo":
        from ._demo import run_demo

        summary = run_demo(out=args.out, seed=args.seed, size=args.size, verbose=True)
        print(f"report written to {summary['report']}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
