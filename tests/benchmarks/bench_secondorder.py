"""Krylov CRN against full CRN and SciPy's trust-krylov, and the speed of Hessian-vector products.

For each problem: the wall time and Hessian-vector products each method needs to reach
f - f* <= 1e-6 (f* the best value any of them found; full CRN capped in time), as ratios
to Krylov CRN measured in the same run. Full CRN runs twice: with the authors' tolerances
(CG and secular equation to 1e-10) and tuned (CG to 0.5, secular equation to 10 %). SciPy's
trust-krylov is not bit-reproducible (see ``reprobook.secondorder.trust_krylov``): its
ratios vary a little from run to run. Then HVPs per second of the closed-form logistic
oracle against the generic torch.func path on the same data.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from reprobook.secondorder import (
    TorchOracle,
    crn,
    krylov_crn,
    news20_like,
    rcv1_like,
    shakespeare_ngram_logistic,
    trust_krylov,
    w8a_like,
)


def _cost_to(trace, f_star, accuracy=1e-6):
    """(seconds, HVPs, reached) at the first gap <= accuracy, or what the whole run spent."""
    reached = trace.iterations_to(f_star, accuracy)
    k = -1 if reached is None else reached
    return trace.time[k], trace.hvps[k], reached is not None


def solver_ratios(problem, crn_time_limit):
    oracle = problem.oracle(l2=1e-6)
    x0 = np.full(problem.d, 0.5)
    start = time.perf_counter()
    runs = {"Krylov CRN": krylov_crn(oracle, x0, m=10, iterations=200, tolerance=1e-9)}
    runs["CRN"] = crn(oracle, x0, iterations=200, solver="cg", tolerance=1e-9, time_limit=crn_time_limit)
    runs["tuned CRN"] = crn(
        oracle,
        x0,
        iterations=200,
        solver="cg",
        tolerance=1e-9,
        time_limit=crn_time_limit,
        cg_tolerance=0.5,
        secular_tolerance=0.1,
    )
    runs["trust-krylov"] = trust_krylov(oracle, x0, iterations=200, tolerance=1e-8)
    f_star = min(trace.objective.min() for trace in runs.values())
    k_time, k_hvps, _ = _cost_to(runs["Krylov CRN"], f_star)
    parts = [f"{problem.name:12s} d={problem.d:8d}  Krylov CRN {k_time:6.2f} s {k_hvps:6d} HVPs"]
    for name in ("CRN", "tuned CRN", "trust-krylov"):
        seconds, hvps, reached = _cost_to(runs[name], f_star)
        bound = "  " if reached else ">="  # a run that never reached 1e-6: what it spent, a lower bound
        parts.append(f"{name}/Krylov time {bound}{seconds / k_time:6.2f}x HVPs {bound}{hvps / k_hvps:6.2f}x")
    return "  ".join(parts) + f"  ({time.perf_counter() - start:.0f} s)"


def hvp_throughput(problem, repeats):
    oracle = problem.oracle()
    A = torch.tensor(problem.A.toarray()) if problem.d * problem.n <= 5e7 else None
    x, v = np.full(problem.d, 0.1), np.ones(problem.d)
    start = time.perf_counter()
    for _ in range(repeats):
        oracle.hvp(x, v)
    closed = repeats / (time.perf_counter() - start)
    if A is None:
        return f"{problem.name:12s} closed form {closed:9.1f} HVP/s  (torch.func: dense design too large)"
    y = torch.tensor(2.0 * problem.b - 1.0)
    generic = TorchOracle(lambda w: torch.nn.functional.softplus(-y * (A @ w)).mean(), problem.d)
    xt, vt = torch.tensor(x), torch.tensor(v)
    start = time.perf_counter()
    for _ in range(repeats):
        generic.hvp(xt, vt)
    automatic = repeats / (time.perf_counter() - start)
    return (
        f"{problem.name:12s} closed form {closed:9.1f} HVP/s  torch.func (dense) {automatic:9.1f} HVP/s  "
        f"closed/torch.func {closed / automatic:6.2f}x"
    )


def main(quick: bool = False) -> list[str]:
    if quick:
        problems = [w8a_like(scale=0.05), rcv1_like(scale=0.02)]
        return [solver_ratios(p, 2.0) for p in problems] + [hvp_throughput(problems[0], 5)]
    problems = [w8a_like(), rcv1_like(), news20_like(), shakespeare_ngram_logistic()]
    return [solver_ratios(p, 60.0) for p in problems] + [hvp_throughput(w8a_like(scale=0.2), 20)]
