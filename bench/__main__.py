"""`python -m bench [--quick] [--only wake,ack]` runs the suite; `python -m bench peers`
compares resume latency with awaithumans and a polling client. Both print a table and write
results.json and a PNG next to this file (or to `--out`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.output import DEFAULT_DIR
from bench.report import report
from bench.rig import run as run_loop
from bench.sizes import FULL, QUICK
from bench.suite import MEASURES, run_peers, run_suite


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("command", nargs="?", choices=("suite", "peers"), default="suite")
    parser.add_argument("--quick", action="store_true", help="tiny numbers, a few seconds")
    parser.add_argument(
        "--only",
        default=",".join(MEASURES),
        help=f"comma-separated measures of the suite (default: {','.join(MEASURES)})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="where to write results")
    parser.add_argument(
        "--awaithumans",
        default=None,
        help="the `awaithumans` script of an environment with awaithumans[server]==0.1.12",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = QUICK if args.quick else FULL
    if args.command == "peers":
        run = run_loop(run_peers(sizes, args.out, args.awaithumans))
        print(report(run.results, ("peers",)))
    else:
        only = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = set(only) - set(MEASURES)
        if unknown:
            raise SystemExit(f"unknown measures: {', '.join(sorted(unknown))}")
        run = run_loop(run_suite(sizes, args.out, only))
        print(report(run.results, only))
    print("\nwrote " + ", ".join(str(path) for path in run.written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
