# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The paper's comparison: logistic regression on w8a-, rcv1- and news20-shaped data
#
# The paper compares Krylov CRN ($m = 10$) with full CRN and with SSCN, the stochastic subspace
# cubic Newton method of {cite}`hanzely2020sscn`, which takes its $m$-dimensional subspace from
# random coordinates, on logistic regression over three LIBSVM datasets: w8a ($d = 300$), rcv1
# ($d = 47{,}236$) and news20 ($d = 1{,}355{,}191$). Those files cannot be downloaded here, so
# `reprobook.secondorder.problems` generates sparse data with the same numbers of samples and
# features and similar densities (binary features for w8a; TF-IDF-like rows for the text sets).
# The curves therefore test the *claims*, not the paper's exact numbers.
#
# As in the authors' code: unregularized logistic loss, $x_0 = 0.5\cdot\mathbf 1$, initial
# $M = 10^{-3}$ with the adaptive line search (halve $M$, then double it until the step decreases
# $f$ by at least the model's decrease), and $f^*$ the best value of a benchmark Krylov CRN run
# with $m = 20$. With $n < d$ the rcv1- and news20-like data are linearly separable: the loss has
# no minimizer and $f^* = 0$ is approached, not attained, so there $f - f^*$ is the loss itself
# (the benchmark ends below $10^{-8}$, far below the target $10^{-6}$). The paper caps full CRN in
# time; this book caps every method in iterations, so that the runs, and their printed numbers,
# do not depend on the machine's speed.
#
# The paper's claim about cost is judged by the Hessian-vector products each method needs to
# reach the same gap, $f - f^* \le 10^{-6}$. Full CRN is run twice over: with the authors'
# tolerances, and tuned, since conjugate gradients to $10^{-10}$ make any method look expensive.

# %% tags=["parameters"]
profile = "book"
seed = 0
datasets = ["w8a", "rcv1", "news20"]
scale = 1.0
news20_scale = 0.25
iterations = 40
krylov_dimension = 10
sscn_dimensions = [10, 100]
accuracy = 1e-6
crn_iterations = 10
crn_cg_tolerances = [0.5, 0.1, 0.01]
crn_secular_tolerance = 0.1
trust_iterations = 200
reference_iterations = 40

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.plotting import book_style
from reprobook.secondorder import (
    crn,
    krylov_crn,
    news20_like,
    rcv1_like,
    sscn,
    trust_krylov,
    w8a_like,
)

run = start_notebook("02_paper_comparison", globals())
book_style()
ledger = ClaimsLedger.for_notebook("02_paper_comparison", profile=run.profile)
generators = {"w8a": w8a_like, "rcv1": rcv1_like, "news20": news20_like}

# %%
problems = {
    name: generators[name](scale=news20_scale if name == "news20" else scale, seed=seed)
    for name in datasets
}
for problem in problems.values():
    print(
        f"{problem.name:12s} n = {problem.n:6d}  d = {problem.d:8d}  "
        f"non-zeros per row {problem.A.nnz / problem.n:6.1f}  "
        f"positive labels {problem.positive_fraction:.3f}"
    )

# %% [markdown]
# ## The runs
#
# $f^*$ is the best value of a benchmark run, Krylov CRN with $m = 20$, as in the authors' code.
# Every other run stops once $f - f^* \le 10^{-6}$ or at its iteration budget, and the
# comparison counts what each method spent to get there:
#
# - **Krylov CRN**, $m = 10$, and **SSCN** with $m = 10$ and $m = 100$ random coordinates;
# - **CRN as the authors run it**: conjugate gradients to a relative residual of $10^{-10}$ and
#   the secular equation to $10^{-10}$, for 10 iterations only (each costs one to two hundred
#   products on these data);
# - **CRN, tuned**: the same method with loose tolerances, as an inexact Newton method would use
#   them: CG relative residual 0.5, 0.1 or 0.01 and the secular equation to 10 %, so that each
#   iteration costs a few to a few tens of products. The comparison takes the best of the three
#   on each problem, which favours CRN;
# - **trust-krylov** (SciPy, its default settings), a trust-region Newton method whose Lanczos
#   subproblem solver grows its Krylov space until the step is accurate enough.

# %%
traces, f_stars = {}, {}
for name, problem in problems.items():
    oracle = problem.oracle()
    x0 = np.full(problem.d, 0.5)
    m_reference = min(2 * krylov_dimension, problem.d)
    reference = krylov_crn(
        oracle, x0, m=m_reference, iterations=reference_iterations, tolerance=0.0
    )
    f_star = reference.objective.min()
    # every run stops at the target gap or at its budget (no gradient tolerance)
    stop = {"tolerance": 0.0, "f_target": f_star + accuracy}
    runs = {
        f"Krylov CRN, m={krylov_dimension}": krylov_crn(
            oracle, x0, m=krylov_dimension, iterations=iterations, **stop
        )
    }
    for size in sscn_dimensions:
        if size <= problem.d:
            runs[f"SSCN, m={size}"] = sscn(
                oracle,
                x0,
                m=size,
                seed=seed,
                iterations=iterations,
                monitor=False,
                **stop,
            )
    runs["CRN (CG, authors' tolerances)"] = crn(
        oracle, x0, iterations=crn_iterations, solver="cg", **stop
    )
    for tolerance in crn_cg_tolerances:
        runs[f"CRN (CG, tuned: {tolerance:g})"] = crn(
            oracle,
            x0,
            iterations=iterations,
            solver="cg",
            cg_tolerance=tolerance,
            secular_tolerance=crn_secular_tolerance,
            **stop,
        )
    runs["trust-krylov"] = trust_krylov(oracle, x0, iterations=trust_iterations, **stop)
    traces[name], f_stars[name] = runs, f_star
    print(
        f"{problem.name:12s} f* = {f_star:.3e} (benchmark: m = {m_reference}, "
        f"{len(reference.objective) - 1} iterations, {reference.stop_reason})"
    )

# %%
fig, axes = plt.subplots(
    3, len(problems), figsize=(5 * len(problems), 11), squeeze=False
)
for column, (name, runs) in enumerate(traces.items()):
    for label, trace in runs.items():
        gap = np.maximum(trace.gap(f_stars[name]), 1e-16)
        style = {"K": "-", "S": "--", "C": ":", "t": "-."}[label[0]]
        axes[0, column].semilogy(trace.iterations, gap, style, label=label)
        axes[1, column].loglog(np.maximum(trace.hvps, 1), gap, style, label=label)
        axes[2, column].semilogy(trace.time, gap, style, label=label)
    axes[0, column].set_title(f"{problems[name].name}: d = {problems[name].d:,}")
    for row, xlabel in enumerate(["iteration", "Hessian-vector products", "seconds"]):
        axes[row, column].set_xlabel(xlabel)
        axes[row, column].set_ylabel(r"$f(x_k) - f^*$")
axes[0, 0].legend(fontsize="small")
fig.tight_layout()
plt.show()

# %%
rows = []
for name, runs in traces.items():
    for label, trace in runs.items():
        done = len(trace.objective) - 1
        rows.append(
            {
                "data": name,
                "method": label,
                "iterations": done,
                "stopped by": trace.stop_reason,
                "gap at the end": trace.gap(f_stars[name])[-1],
                f"iterations to {accuracy:g}": trace.iterations_to(
                    f_stars[name], accuracy
                ),
                f"HVPs to {accuracy:g}": trace.hvps_to(f_stars[name], accuracy),
                "HVPs per iteration": trace.hvps[-1] / max(done, 1),
                "seconds per iteration": trace.time[-1] / max(done, 1),
            }
        )
summary = pd.DataFrame(rows).set_index(["data", "method"])
print_table(summary)

# %% [markdown]
# What the runs show:
#
# - At equal subspace size $m = 10$, Krylov CRN is far ahead of SSCN on every dataset: it gets
#   in one to three iterations to where SSCN is after forty. Ten random coordinates out of tens
#   or hundreds of thousands carry almost none of the gradient, while the Krylov subspace starts
#   *at* the gradient. SSCN with $m = 100$ does not match ten Krylov directions either.
# - CRN as the authors run it spends about 90 to 220 Hessian-vector products per iteration (two
#   conjugate-gradient solves to $10^{-10}$ for every Newton step on the secular equation) and
#   does not reach the target in its 10 iterations: that is the comparison behind the paper's
#   cost argument, and against it Krylov CRN needs at least 3 to 16 times fewer products.
# - Tuned, CRN needs about as many iterations as Krylov CRN, each for 5 to 70 products. On the
#   w8a-like data Krylov CRN still needs the fewest products of the two. On the separable rcv1-
#   and news20-like data every method needs about the same number of iterations, set by the line
#   search on $M$ while $\|x\|$ grows, so the cheapest iteration wins: CRN with a CG tolerance
#   of 0.5 (5 to 9 products per iteration against Krylov CRN's 10) needs *fewer* products in
#   total. The paper's claim holds against the authors' baseline, not against a tuned one.
# - SciPy's trust-krylov, outside the paper, reaches the target on the w8a-like data with
#   slightly fewer products than Krylov CRN (about 120 against 140). On the separable data, where
#   $\|x\|$ must grow without bound, it does poorly (a larger maximal trust radius did not help
#   when we tried it): it either stops within about 20 iterations, far from the target, when its model
#   predicts no decrease (its arithmetic overflows on the way), or (on
#   the news20-like data) keeps going and needs about 120 iterations and 530 products, almost
#   twice Krylov CRN's. Which of these happens can change from run to run: SciPy's trust-krylov
#   is not bit-reproducible (`reprobook.secondorder.trust_krylov` says why), so its numbers are
#   an indication and enter no claim.

# %% [markdown]
# ## Exercise
#
# ```{exercise} Why the cheapest iteration wins on separable data
# :label: krylov-crn-ex-separable
#
# The rcv1- and news20-like problems have $n < d$. Show that their unregularized logistic loss
# has no minimizer. Then explain why Krylov CRN and the tuned CRN runs need about the same number
# of iterations to reach $f \le 10^{-6}$ there, whatever their subspaces. Hint: bound the length
# of a cubic-regularized step by $\|\nabla f\|$ and $M$, and recall how fast the line search can
# decrease $M$.
# ```

# %% [markdown] tags=["solution"]
# ````{solution-start} krylov-crn-ex-separable
# :class: dropdown
# ````

# %% [markdown] tags=["solution"]
# With $n < d$ and rows in general position, $A$ has full row rank, so some $w$ solves
# $Aw = y$ (the labels as $\pm 1$): every margin $y_i a_i^\top w = 1$ is positive. Then
# $f(tw) = \frac1n\sum_i \log(1 + e^{-t}) \to 0$ as $t \to \infty$, while $f > 0$ everywhere: the
# infimum 0 is not attained, and reaching $f \le \varepsilon$ needs every margin to be at least
# about $\log(1/(n\varepsilon))$, so $\|x\|$ must keep growing.
#
# A step minimizes $g^\top s + \frac12 s^\top H s + \frac M3\|s\|^3$ with $H \succeq 0$, so its
# model value is at most 0 and $\frac M3\|s\|^3 \le \|g\|\,\|s\|$, that is
# $\|s\| \le \sqrt{3\|g\|/M}$, whatever the subspace. On separable data $\|g\|$ shrinks with
# $f$ (each row's weight $\sigma(-y_i a_i^\top x)$ is below its loss term when the margin is
# positive), so the length of the steps is set by $M$, which the line search can at most halve once per
# iteration. Every method is held to about the same pace in iterations, and the one with the
# cheapest iteration spends the fewest products; a trust-region method is held back the same way
# by its radius.

# %% [markdown] tags=["solution"]
# ````{solution-end}
# ````

# %% [markdown]
# ## The claims
#
# - **beats-sscn**: on each dataset, the iterations Krylov CRN needs to reach the gap SSCN
#   ($m = 10$) has after its whole budget, divided by that budget (both count $m$ products per
#   iteration); the claim's value is the largest over the datasets. A ratio of iteration
#   counts is exact, and both gaps are far above round-off.
# - **fewer-hvps-than-crn**: on each dataset, the Hessian-vector products Krylov CRN needs to
#   reach $f - f^* \le 10^{-6}$ divided by those of the best tuned CRN (the products it spent,
#   where it never gets there, which favours CRN); the largest over the datasets.

# %%
krylov_label, sscn_label = (
    f"Krylov CRN, m={krylov_dimension}",
    f"SSCN, m={krylov_dimension}",
)
sscn_ratios = {}
for name, runs in traces.items():
    sscn_gap = runs[sscn_label].gap(f_stars[name])[-1]
    catch_up = runs[krylov_label].iterations_to(f_stars[name], sscn_gap)
    sscn_ratios[name] = np.inf if catch_up is None else catch_up / iterations
    print(
        f"{name}: SSCN's gap after {iterations} iterations {sscn_gap:.2e}, "
        f"reached by Krylov CRN after {catch_up} iterations"
    )
ledger.record("beats-sscn", max(sscn_ratios.values()))

# %%
product_rows = []
for name, runs in traces.items():
    hvps = {
        label: trace.hvps_to(f_stars[name], accuracy, lower_bound=True)
        for label, trace in runs.items()
    }
    krylov = hvps[krylov_label]
    tuned = {label: value for label, value in hvps.items() if "tuned" in label}
    best = min(tuned, key=tuned.get)
    product_rows.append(
        {
            "data": name,
            "Krylov CRN HVPs": krylov,
            "best tuned CRN": best,
            "its HVPs": tuned[best],
            "Krylov / tuned CRN": krylov / tuned[best],
            "Krylov / authors' CRN (at most)": krylov
            / hvps["CRN (CG, authors' tolerances)"],
            "Krylov / trust-krylov": krylov / hvps["trust-krylov"],
        }
    )
products = pd.DataFrame(product_rows).set_index("data")
print_table(products)
ledger.record("fewer-hvps-than-crn", products["Krylov / tuned CRN"].max())

# %% tags=["nbval-check-output"]
ledger.report()
