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
# # The paper's Section 6.1: Anthropic and Nectar
#
# The experiment the authors released {cite}`thekumparampil2025dopewolfe` is Dope's setting
# {cite}`mukherjee2024dope`: a **given** set of $L$ lists, each a question with $K$ answers
# whose features were precomputed, and a design over the lists. The two feature files are
# the authors' (MIT licence); the book reads them from a data folder and checks their sha256
# (`reprobook.design.load_features`; without them it runs on synthetic features of the
# same shapes and says so below):
#
# | data | lists $L$ | answers $K$ | $d$ | ranking loss at most |
# |---|---|---|---|---|
# | Anthropic (helpfulness questions) | 2000 | 2 | 36 | 1 |
# | Nectar | 500 | 4 | 16 | 6 |
#
# The protocol is the official notebook's. Per run, $\theta_* \sim \mathcal N(0, I_d)$.
# Three designs: **Uniform** over the lists; **Dope**, Frank-Wolfe with every list's gain at
# every iteration; **DopeWolfe**, the gains of $R = L/10$ random lists only. Both start
# from the uniform design, step by a golden-section search of 20 rounds (two objective values
# each) on $\log\det(V + 10^{-6} I)$, and stop after 100 iterations or when the objective stalls (for
# DopeWolfe, over $L/R$ iterations). Each design logs 1000 lists i.i.d.; the person ranks
# them under Plackett-Luce; for each budget $T$ the ridge MLE ($\lambda = 10^{-3}$) on the
# first $T$ is scored by the **ranking loss**, the mis-ordered answer pairs per list,
#
# $$
# \frac1L \sum_{i=1}^{L} \sum_{j<j'} \mathbb 1\big[\operatorname{sign}((z_{ij} -
# z_{ij'})^\top\theta_*) \ne \operatorname{sign}((z_{ij} - z_{ij'})^\top\hat\theta)\big].
# $$

# %% tags=["parameters"]
profile = "book"
seed = 0
runs = 20
budgets = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
sample_fraction = 0.1
timing_iterations = 100
data_dir = ""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.design import dope, load_features, mean_and_error, section61_experiment
from reprobook.plotting import book_style

run = start_notebook("02_section61", globals())
book_style()
ledger = ClaimsLedger.for_notebook("02_section61", profile=run.profile)
features = {
    name: load_features(name, data_dir or None) for name in ("anthropic", "nectar")
}
for loaded in features.values():
    print(loaded.notice)

# %% [markdown]
# ## Ranking loss against the number of queries
#
# The markers are the values read by eye from the figures embedded in the official notebook
# (to about $\pm 0.01$ on Anthropic and $\pm 0.05$ on Nectar); the bands are one standard
# error of the book's mean over its runs.

# %%
# read from the official notebook's figures Results/anthropic.pdf and nectar.pdf
FIGURE = {
    "anthropic": {
        "Uniform": {100: 0.335, 500: 0.220, 1000: 0.190},
        "Dope": {100: 0.285, 500: 0.165, 1000: 0.13},
        "DopeWolfe": {100: 0.285, 500: 0.160, 1000: 0.12},
    },
    "nectar": {
        "Uniform": {100: 1.90, 500: 1.20, 1000: 1.03},
        "Dope": {100: 0.93, 500: 0.43, 1000: 0.33},
        "DopeWolfe": {100: 0.97, 500: 0.43, 1000: 0.30},
    },
}
READING = {"anthropic": 0.01, "nectar": 0.05}
summaries, design_times, losses_by_data = {}, {}, {}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for ax, (name, loaded) in zip(axes, features.items()):
    samples = max(1, int(sample_fraction * len(loaded.lists)))
    losses, times = section61_experiment(
        loaded.lists, runs=runs, budgets=budgets, samples=samples, seed=seed
    )
    summary = mean_and_error(losses, "ranking_loss", ["design", "queries"])
    summaries[name], design_times[name], losses_by_data[name] = summary, times, losses
    for i, (design, group) in enumerate(summary.groupby("design", sort=False)):
        ax.plot(group.queries, group["mean"], color=f"C{i}", label=design)
        ax.fill_between(
            group.queries,
            group["mean"] - group.se,
            group["mean"] + group.se,
            color=f"C{i}",
            alpha=0.2,
        )
        read = FIGURE[name][design]
        ax.plot(list(read), list(read.values()), "x", color=f"C{i}", ms=9)
    ax.plot([], [], "kx", label="paper's figure")
    ax.set(xlabel="queries T", ylabel="ranking loss", title=f"{name}, {runs} runs")
    ax.legend()
fig.tight_layout()
plt.show()

# %%
rows = []
for name, summary in summaries.items():
    for design, read in FIGURE[name].items():
        for queries, paper in read.items():
            mine = summary[(summary.design == design) & (summary.queries == queries)]
            if mine.empty:  # a budget this profile does not run
                continue
            rows.append(
                {
                    "data": name,
                    "design": design,
                    "T": queries,
                    "paper (figure)": paper,
                    "book": float(mine["mean"].iloc[0]),
                    "s.e.": float(mine.se.iloc[0]),
                }
            )
beside = pd.DataFrame(rows)
# the distance to the figure, in units of what it may differ by: the reading tolerance
# plus two standard errors of the book's mean
beside["deviation"] = (beside["book"] - beside["paper (figure)"]).abs() / (
    beside.data.map(READING) + 2 * beside["s.e."]
)
print_table(beside.round(3).set_index(["data", "design", "T"]))

# %% [markdown]
# A deviation below 1 means the book's mean is within the figure's reading tolerance plus
# two of this run's standard errors of the figure's value. The claims below judge the
# book's means at $T = 1000$ against a fixed allowance instead: the reading tolerance plus
# two standard errors of a 20-run mean as the dossier's 50-run re-run measured them.


# %%
def at(name, design, queries=budgets[-1]):
    summary = summaries[name]
    return summary[(summary.design == design) & (summary.queries == queries)].iloc[0]


design_ratio = {
    name: max(at(name, "Dope")["mean"], at(name, "DopeWolfe")["mean"])
    / at(name, "Uniform")["mean"]
    for name in features
}
# The two designs are scored on the same θ* in each run, so their losses are paired: the
# difference is judged against the standard error of the per-run differences.
paired = []
for name, losses in losses_by_data.items():
    by_run = losses.pivot_table(
        index=["queries", "run"], columns="design", values="ranking_loss"
    )
    difference = (by_run["DopeWolfe"] - by_run["Dope"]).groupby(level="queries")
    paired.append(
        pd.DataFrame(
            {
                "data": name,
                "DopeWolfe - Dope": difference.mean(),
                "paired s.e.": difference.std() / np.sqrt(difference.count()),
            }
        )
    )
paired = pd.concat(paired).reset_index()
paired["z"] = paired["DopeWolfe - Dope"] / paired["paired s.e."]
print_table(
    paired.round({"DopeWolfe - Dope": 3, "paired s.e.": 3, "z": 1}).set_index(
        ["data", "queries"]
    )
)
separation = float(paired.z.abs().max())
for name, value in design_ratio.items():
    print(
        f"{name}: the worse design's loss over Uniform's at T = {budgets[-1]}: "
        f"{value:.2f}"
    )
print(
    "largest |DopeWolfe - Dope| over every T, in paired standard errors: "
    f"{separation:.1f}"
)

# %% [markdown]
# ## How long a design takes, and why the answer depends on the code
#
# The paper reports DopeWolfe 3.3 times faster than Dope on Anthropic (6.2 s against
# 20.1 s) and 2.3 times on Nectar, on a 64-CPU machine. Where does the time go? The official
# notebook computes each list's gain as the trace of a $d \times d$ product $V^{-1}A_i$,
# $O(d^3)$ per list, and evaluates the objective by rebuilding $\sum_i \pi_i A_i$,
# $O(L d^2)$, 44 times per iteration: in the gradient, at both ends of the segment (values it
# never reads), twice in each of the line search's 20 rounds, and at the new design.
# Randomization cuts only the gains. The book's `implementation="official"` makes the same
# calls and counts them; `implementation="efficient"` computes a gain as
# $\sum_k \|b_k\|^2_{V^{-1}}$ over the factor $A_i = B_iB_i^\top$, $O(Kd^2)$, and the line
# search from $d\times d$ matrices: the same designs (a test checks that both take the same
# path), at a fraction of the cost. Each design is timed once on this machine, one thread,
# for at most `timing_iterations` iterations (100 at the book profile, the protocol's); the
# ledger judges the counted multiplications, which are the same on every machine. Three
# ratios of Dope's work to DopeWolfe's: over the whole runs (what the paper's times
# compare), per iteration, and at equal objective (Dope's work until it first reaches the
# $\log\det$ where DopeWolfe stopped).

# %%
timing, runs_by_key = [], {}
for name, loaded in features.items():
    samples = max(1, int(sample_fraction * len(loaded.lists)))
    for implementation in ("official", "efficient"):
        for method, sampled in (("Dope", None), ("DopeWolfe", samples)):
            clock = time.perf_counter()
            result = dope(
                loaded.lists,
                samples=sampled,
                implementation=implementation,
                max_iterations=timing_iterations,
                rng=np.random.default_rng(seed),
            )
            runs_by_key[name, implementation, method] = result
            timing.append(
                {
                    "data": name,
                    "implementation": implementation,
                    "method": method,
                    "seconds": time.perf_counter() - clock,
                    "iterations": result.iterations,
                    "evaluations / iteration": result.evaluations / result.iterations,
                    "multiplications": result.multiplications,
                    "log det": result.objective[-1],
                }
            )
timing = pd.DataFrame(timing)
print_table(timing.round({"seconds": 2, "evaluations / iteration": 1, "log det": 2}))


def work_to_reach(result, level):
    """The multiplications a run had done when its objective first reached ``level``."""
    reached = np.flatnonzero(result.objective >= level)
    return result.work[reached[0]] if len(reached) else np.nan


speedups = []
for (name, implementation), group in timing.groupby(
    ["data", "implementation"], sort=False
):
    full = runs_by_key[name, implementation, "Dope"]
    sampled = runs_by_key[name, implementation, "DopeWolfe"]
    rows = group.set_index("method")
    speedups.append(
        {
            "data": name,
            "implementation": implementation,
            "in time": rows.seconds["Dope"] / rows.seconds["DopeWolfe"],
            "in work": full.multiplications / sampled.multiplications,
            "in work per iteration": (full.multiplications / full.iterations)
            / (sampled.multiplications / sampled.iterations),
            "in work at equal log det": work_to_reach(full, sampled.objective[-1])
            / sampled.multiplications,
        }
    )
speedups = pd.DataFrame(speedups).set_index(["data", "implementation"])
print_table(speedups.round(2))
work = speedups["in work"]

# %% [markdown]
# With the official code's costs, DopeWolfe saves most of the gain computations but none of
# the 44 evaluations of the objective, which then dominate its iterations: per iteration it
# does less than twice less work than Dope on Nectar, and more of the whole run's saving
# comes from its stopping rule, which can end the run earlier and lower (the columns per
# iteration and at equal objective separate the two). On one thread of this machine the
# speed-up in time differs again (the printed times vary from run to run); the paper's 3.3
# and 2.3 come from a 64-CPU machine, where the products parallelize differently. With the
# efficient gains and line search, both methods are an order of magnitude faster than with
# the official code, and what is left scales with the number of lists scored, while in time
# Python's per-iteration overhead takes much of it back at these sizes. DopeWolfe also ends
# lower in $\log\det$: it samples away some of the best lists; the ranking losses above do not
# show the difference.

# %% [markdown]
# ## The claims

# %%
ledger.record("nectar-designs-halve-uniform", design_ratio["nectar"])
ledger.record("anthropic-designs-beat-uniform", design_ratio["anthropic"])
ledger.record("dopewolfe-matches-dope", separation)


def book_at_1000(name, design):
    row = beside[
        (beside.data == name) & (beside.design == design) & (beside["T"] == 1000)
    ]
    return row["book"].iloc[0] if len(row) else float("nan")


ledger.record("figure-anthropic-uniform", book_at_1000("anthropic", "Uniform"))
ledger.record("figure-anthropic-dope", book_at_1000("anthropic", "Dope"))
ledger.record("figure-anthropic-dopewolfe", book_at_1000("anthropic", "DopeWolfe"))
ledger.record("figure-nectar-uniform", book_at_1000("nectar", "Uniform"))
ledger.record("figure-nectar-dope", book_at_1000("nectar", "Dope"))
ledger.record("figure-nectar-dopewolfe", book_at_1000("nectar", "DopeWolfe"))
ledger.record("speedup-official-anthropic", work[("anthropic", "official")])
ledger.record("speedup-official-nectar", work[("nectar", "official")])
ledger.record("speedup-efficient-anthropic", work[("anthropic", "efficient")])

# %% tags=["nbval-check-output"]
ledger.report()
