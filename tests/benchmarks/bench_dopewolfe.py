"""DopeWolfe's time per Frank-Wolfe iteration as N grows, against Dope over all C(N, K) lists and enumeration.

Three ways to take a Frank-Wolfe step over all K-subsets of N items (K = 3, d = 10):
DopeWolfe (R random subsets scored from the memoized G, rank-K Woodbury update), exact
Frank-Wolfe scoring every subset from the same memo (enumeration), and Dope run on the
C(N, K) subsets given as lists (every gain from V's Cholesky factor, no memo). Each time is
the median over a few iterations, one thread; the log-log slope of each against N is the
empirical order of growth, and the last line the ratios at the largest common N.
"""

from __future__ import annotations

import time

import numpy as np

from reprobook.design import all_subsets, dope, dopewolfe, loglog_slope, universe_items

K, D = 3, 10


def _per_iteration(seconds) -> float:
    return float(np.median(np.diff(seconds)))


def timings(sizes, samples, iterations):
    wolfe, enumeration, listed = [], [], []
    for n in sizes:
        items = universe_items(n, D, np.random.default_rng(0))
        wolfe.append(_per_iteration(dopewolfe(items, K, samples=samples, iterations=iterations).seconds))
        enumeration.append(_per_iteration(dopewolfe(items, K, samples=None, iterations=iterations).seconds))
        lists = items[all_subsets(n, K)]
        clock = time.perf_counter()
        result = dope(lists, step="exact", max_iterations=iterations, tolerance=0.0)
        listed.append((time.perf_counter() - clock) / result.iterations)
    return wolfe, enumeration, listed


def main(quick: bool = False) -> list[str]:
    sizes = [12, 16, 20] if quick else [20, 30, 40, 60]
    samples, iterations = (50, 3) if quick else (1000, 10)
    wolfe, enumeration, listed = timings(sizes, samples, iterations)
    lines = [
        f"N = {n:4d}: DopeWolfe {w * 1e3:8.2f} ms, enumeration {e * 1e3:8.2f} ms, "
        f"Dope over C(N, K) lists {d * 1e3:8.2f} ms"
        for n, w, e, d in zip(sizes, wolfe, enumeration, listed)
    ]
    lines.append(
        f"log-log slopes against N: DopeWolfe {loglog_slope(sizes, wolfe):.2f}, "
        f"enumeration {loglog_slope(sizes, enumeration):.2f}, Dope over lists {loglog_slope(sizes, listed):.2f}"
    )
    lines.append(
        f"at N = {sizes[-1]}: enumeration/DopeWolfe {enumeration[-1] / wolfe[-1]:6.2f}x, "
        f"Dope over lists/DopeWolfe {listed[-1] / wolfe[-1]:6.2f}x"
    )
    return lines
