"""Krylov CRN against SciPy's trust-krylov and full CRN, and the speed of Hessian-vector products.

For each problem: the wall time and Hessian-vector products each method needs to reach
f - f* <= 1e-6 (f* the best value any of them found; full CRN capped in time), as ratios
to Krylov CRN measured in the same run. Then HVPs per second of the closed-form logistic
oracle against the generic torch.func path on the same data.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.optimize import minimize

from reprobook.secondorder import (
    TorchOracle, crn, krylov_crn, news20_like, rcv1_like, shakespeare_ngram_logistic, w8a_like,
)


def _time_to(trace, f_star, accuracy=1e-6):
    reached = trace.iterations_to(f_star, accuracy)
    return (np.inf, trace.hvps[-1]) if reached is None else (trace.time[reached], trace.hvps[reached])


def _trust_krylov(oracle, x0, f_star_guess):
    oracle.reset_counts()
    start = time.perf_counter()
    result = minimize(oracle.value, x0, jac=oracle.gradient, hessp=oracle.hvp, method="trust-krylov",
                      options={"gtol": 1e-8, "maxiter": 200})
    return time.perf_counter() - start, oracle.hvps, result.fun


def solver_ratios(problem, crn_time_limit):
    oracle = problem.oracle(l2=1e-6)
    x0 = np.full(problem.d, 0.5)
    krylov = krylov_crn(oracle, x0, m=10, iterations=200, tolerance=1e-9)
    full = crn(oracle, x0, iterations=200, solver="cg", tolerance=1e-9, time_limit=crn_time_limit)
    trust_seconds, trust_hvps, trust_value = _trust_krylov(oracle, x0, krylov.objective.min())
    f_star = min(krylov.objective.min(), full.objective.min(), trust_value)
    k_time, k_hvps = _time_to(krylov, f_star)
    c_time, c_hvps = _time_to(full, f_star)
    bound = "  " if np.isfinite(c_time) else ">="
    c_time = c_time if np.isfinite(c_time) else full.time[-1]
    reached = "" if bound == "  " else " (CRN did not reach 1e-6 in its time cap: lower bounds)"
    trust_note = "" if trust_value - f_star <= 1e-6 else " (trust-krylov did not reach 1e-6)"
    return (f"{problem.name:12s} d={problem.d:8d}  Krylov CRN {k_time:6.2f} s {k_hvps:6d} HVPs  "
            f"CRN/Krylov time {bound}{c_time / k_time:7.2f}x HVPs {bound}{c_hvps / k_hvps:7.2f}x{reached}  "
            f"trust-krylov/Krylov time {trust_seconds / k_time:5.2f}x HVPs {trust_hvps / k_hvps:5.2f}x{trust_note}")


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
    return (f"{problem.name:12s} closed form {closed:9.1f} HVP/s  torch.func (dense) {automatic:9.1f} HVP/s  "
            f"closed/torch.func {closed / automatic:6.2f}x")


def main(quick: bool = False) -> list[str]:
    if quick:
        problems = [w8a_like(scale=0.05), rcv1_like(scale=0.02)]
        return [solver_ratios(p, 2.0) for p in problems] + [hvp_throughput(problems[0], 5)]
    problems = [w8a_like(), rcv1_like(), news20_like(), shakespeare_ngram_logistic()]
    return [solver_ratios(p, 60.0) for p in problems] + [hvp_throughput(w8a_like(scale=0.2), 20)]
