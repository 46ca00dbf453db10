"""Run every benchmark of the book and print its ratios (``make bench``).

Usage: python tests/benchmarks/run.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the benchmarks run")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    with threadpool_limits(limits=args.threads):
        for path in sorted(HERE.glob("bench_*.py")):
            module = importlib.import_module(path.stem)
            print(f"== {path.stem}: {module.__doc__.strip().splitlines()[0]}")
            for line in module.main(quick=args.quick):
                print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
