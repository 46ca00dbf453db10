"""Exact, lazy and stochastic greedy log-det selection (FisherSFT) as the pool of sentences grows.

Each pool holds N synthetic sentences of M = 10 token embeddings (d = 10) living in random
low-dimensional subspaces; each method selects n = 50. Printed: wall time and gain
evaluations per method, in one run, and lazy's evaluations as a share of exact greedy's.
"""

from __future__ import annotations

import time

import numpy as np

from reprobook.design import greedy_logdet, subspace_sentences

TOKENS, D, BUDGET = 10, 10, 50


def main(quick: bool = False) -> list[str]:
    sizes = [100, 200] if quick else [250, 500, 1000, 2000, 4000]
    budget = 10 if quick else BUDGET
    lines = []
    for n_sentences in sizes:
        blocks = subspace_sentences(n_sentences, TOKENS, D, np.random.default_rng(0))
        measured = {}
        for mode in ("exact", "lazy", "stochastic"):
            clock = time.perf_counter()
            selection = greedy_logdet(blocks, budget, mode=mode, rng=np.random.default_rng(0))
            measured[mode] = (time.perf_counter() - clock, selection.evaluations, selection.objective[-1])
        share = measured["lazy"][1] / measured["exact"][1]
        lines.append(
            f"N = {n_sentences:5d}: "
            + ", ".join(f"{mode} {s * 1e3:7.1f} ms / {e:6d} gains (F {f:.2f})" for mode, (s, e, f) in measured.items())
            + f"; lazy/exact gains {share:.3f}"
        )
    return lines
