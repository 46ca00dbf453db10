"""``make portability``: the checked outputs and the tests' assertions may not depend on the CPU.

A reader reruns the book on a CPU whose kernels round differently from the machine that
wrote the committed outputs. This script reruns the notebooks (nbval compares every
checked output exactly) and the tests of kernels and threads once per *variant*: the same
machine made to use the kernels another CPU would use, through the switches each library
offers. Every variant must pass.

- PyTorch's SIMD level, ``ATEN_CPU_CAPABILITY``: ``default`` (no vector kernels), ``avx2``
  (what a CPU without AVX-512 runs), and ``avx512`` where the CPU has it but PyTorch does not
  pick it by itself (where it does, ``make test`` has just run with it);
- MKL, PyTorch's BLAS on x86: its instruction set (``MKL_ENABLE_INSTRUCTIONS``) and its
  conditional-reproducibility mode (``MKL_CBWR``), which fixes the code path it takes;
- NumPy's dispatched SIMD loops (``NPY_DISABLE_CPU_FEATURES``);
- oneDNN's instruction set (``ONEDNN_MAX_CPU_ISA``), which PyTorch uses for some element-wise
  functions, such as GELU, and for convolutions;
- a second thread count for the BLAS and OpenMP pools, which every notebook and test
  should pin to one thread (code that does not would change its results here); the
  ``no-simd`` variant runs with two threads.

NumPy's and SciPy's OpenBLAS kernels are chosen by ``OPENBLAS_CORETYPE``, which this
check never sets: some machines set it themselves to get correct results. The book
instead keeps OpenBLAS's rounding out of every printed digit (the claims ledger's
rule in ``reprobook.book.claims``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a variant reruns: the tests marked `portability`, whose results depend on the kernels or
# the thread count: every notebook under nbval (tests/conftest.py marks them), the checks of the
# kernels chosen, and the comparisons of runs in worker processes with runs in the test process.
# The other library tests assert nothing that rounding decides (known answers within a tolerance,
# bounds, brute force, identities); the README's "The same numbers on every CPU" says how this
# was measured.
TARGETS = ["chapters", "tests", "-m", "portability"]


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not list them)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith(("flags", "Features")) for flag in line.split()}


def numpy_features(keep) -> str:
    """NumPy's dispatched (non-baseline) SIMD features to switch off: those ``keep`` rejects."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return " ".join(name for name in __cpu_dispatch__ if __cpu_features__.get(name) and not keep(name))


def variants() -> dict[str, dict[str, str]]:
    """The kernel variants this machine allows."""
    x86 = platform.machine() in ("x86_64", "AMD64")
    without_avx512 = numpy_features(lambda name: "512" not in name and name != "X86_V4")
    found = {
        "no-simd": {
            "ATEN_CPU_CAPABILITY": "default",
            "NPY_DISABLE_CPU_FEATURES": numpy_features(lambda name: False),
            "ONEDNN_MAX_CPU_ISA": "SSE41",
            "OMP_NUM_THREADS": "2",
            "OPENBLAS_NUM_THREADS": "2",
            "MKL_NUM_THREADS": "2",
            **({"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "MKL_CBWR": "COMPATIBLE"} if x86 else {}),
        },
    }
    if x86 and "avx2" in cpu_flags():
        found["avx2"] = {
            "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "MKL_CBWR": "AVX2",
            "NPY_DISABLE_CPU_FEATURES": without_avx512,
            "ONEDNN_MAX_CPU_ISA": "AVX2",
        }
    if x86 and "avx512f" in cpu_flags() and native_capability() != "AVX512":
        found["avx512"] = {
            "ATEN_CPU_CAPABILITY": "avx512",
            "MKL_ENABLE_INSTRUCTIONS": "AVX512",
            "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        }
    return found


def native_capability() -> str:
    """The SIMD level PyTorch picks on this machine (``make test`` already runs with it)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", help="run only these variants (default: all)")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (default 2)")
    parser.add_argument("pytest_args", nargs="*", help="what to rerun (default: notebooks and library tests)")
    args = parser.parse_args()
    available = variants()
    unknown = sorted(set(args.variant or []) - set(available))
    if unknown:
        parser.error(f"--variant must be one of {sorted(available)} on this machine, got {unknown}")
    chosen = {name: env for name, env in available.items() if not args.variant or name in args.variant}
    results = {}
    for name, env in chosen.items():
        print(f"\n=== variant {name}: " + " ".join(f"{k}={v!r}" for k, v in env.items()), flush=True)
        start = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            args.workers,
            "--dist",
            "loadscope",
            "--no-loadscope-reorder",
            "-q",
        ]
        command += args.pytest_args or TARGETS
        code = subprocess.call(command, cwd=ROOT, env={**os.environ, **env})
        results[name] = (code, time.perf_counter() - start)
    print("\nportability:")
    for name, (code, seconds) in results.items():
        print(f"  {name:20s} {'passed' if code == 0 else 'FAILED'} in {seconds / 60:.1f} min")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
