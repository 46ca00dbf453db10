"""Cost per iteration of FBi-PG against baselines measured in the same run.

Baselines: Bi-PG (the same step without momentum) and a bare NumPy FISTA loop on
the inner problem alone, with no trace recorded: the ratio FBi-PG / bare FISTA
is the overhead of the library's shared loop and its per-iteration trace. The
problems are the chapter's: the two sparse linear inverse problems (Gaussian and
ill-conditioned, 200 × 500) and the breast-cancer logistic problem.
"""

from __future__ import annotations

import time

import numpy as np

from reprobook.optim import bipg, breast_cancer_logistic_l1, fbipg, sparse_linear_inverse


def bare_fista(problem, iterations: int, a: float = 3.0) -> np.ndarray:
    step = 1.0 / problem.inner_lipschitz
    x = x_previous = np.zeros(problem.dim)
    for k in range(iterations):
        y = x + k / (k + a + 1) * (x - x_previous)
        x, x_previous = y - step * problem.inner_grad(y), x
    return x


def seconds_per_iteration(run, iterations: int, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run(iterations)
        best = min(best, time.perf_counter() - start)
    return best / iterations


def main(quick: bool = False) -> list[str]:
    iterations, repeats = (50, 1) if quick else (1000, 3)
    lines = []
    problems = (
        sparse_linear_inverse(m=200, n=500),
        sparse_linear_inverse(m=200, n=500, condition_number=1000.0),
        breast_cancer_logistic_l1(),
    )
    for problem in problems:
        fast = seconds_per_iteration(lambda k: fbipg(problem, iterations=k, gamma=1.0), iterations, repeats)
        plain = seconds_per_iteration(lambda k: bipg(problem, iterations=k, gamma=1.0), iterations, repeats)
        bare = seconds_per_iteration(lambda k: bare_fista(problem, k), iterations, repeats)
        lines.append(
            f"{problem.name:46s} d={problem.dim:5d}  FBi-PG {fast * 1e6:8.1f} us/it  "
            f"FBi-PG/Bi-PG {fast / plain:5.2f}x  FBi-PG/bare FISTA {fast / bare:5.2f}x"
        )
    return lines
