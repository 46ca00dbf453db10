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
# # Toy layers: the prox method against the optimal mask
#
# Pruning a layer $y = Wx$ well means keeping its outputs on real inputs. With calibration inputs
# $X$ (one row per token) and $H = X^\top X / n$, the **local loss** of a pruned weight $W$ is
#
# $$
# L(W) = \tfrac12 \operatorname{tr}\bigl((W - W_0) H (W - W_0)^\top\bigr),
# $$
#
# half the mean squared change of the outputs. Each row of $W$ is an independent problem, so a
# small layer can be solved *exactly*: for every row, try all $6^{d/4}$ ways of keeping two entries
# per group, fit the kept weights by least squares, and keep the best.
#
# The methods compared:
#
# * **magnitude**: keep the two largest $|W_{ij}|$ of each group, no update;
# * **Wanda** {cite}`sun2024wanda`: keep the two largest $|W_{ij}|\,\|X_j\|$, no update. It uses
#   only the diagonal of $H$;
# * **SparseGPT** {cite}`frantar2023sparsegpt`: visit the columns left to right; at each group
#   choose the mask from $w^2/[H^{-1}]_{jj}$ and correct the columns not yet visited by the
#   optimal-brain-surgeon update {cite}`hassibi1993obs`; it uses all of $H$, but greedily;
# * **prox** (the paper's Algorithm 2, as reconstructed here): proximal gradient on
#   $L(W) + \lambda R(W)$,
#
# $$
# W \leftarrow \operatorname{prox}_{\eta\lambda R}\bigl(W - \eta (W - W_0) H\bigr), \qquad \eta = 1/\lambda_{\max}(H),
# $$
#
#   with $\lambda$ multiplied by a growth factor every few iterations until every group is 2:4,
#   then **masked gradient updates** $W \leftarrow (W - \eta(W - W_0)H) \odot M$ on the mask
#   found;
# * **+ refit**: the same masked updates after Wanda's or SparseGPT's mask, which the paper
#   reports improves both "out of the box".
#
# The off-diagonal entries of $H$, the correlations between input features, are what Wanda
# ignores and what the prox method exploits: the gradient $(W - W_0)H$ lets a kept weight take over
# the role of a correlated pruned one *while* the mask is still being chosen.
#
# ```{admonition} A reconstructed toy, and the book's own hypothesis
# :class: note
# The paper's toy problems could not be read. These are the book's: one layer with $d$ inputs whose
# features are Gaussian with a random scale in $[0.5, 2]$ per feature and correlation of one of
# three shapes (`reprobook.sparse.toy`): **ar1**, $\rho^{|i-j|}$, where the most correlated
# features are neighbours and so share a group of four, the case most favourable to a method that
# exploits correlations inside a group; **ar1-shuffled**, the same correlations with the features
# in a random order, so that correlated features usually sit in different groups; and **factor**,
# two common factors that correlate features across all pairs. $W_0 \sim N(0, 1)$. The $\lambda$
# schedule (start $10^{-3}$, growth 1.05 every 10 iterations) and the number of masked updates
# are the book's choices too; the masked updates use Nesterov's momentum. On three other seeds
# per shape (100 to 102), 20 iterations per $\lambda$ gave local losses 0.5% lower on average for
# twice the time; this book uses 10. That the prox method comes within 10%
# of the optimal mask is the **book's hypothesis**, not a number of the paper.
# ```

# %% tags=["parameters"]
profile = "book"
seed = 0
in_features = 16
out_features = 32
samples = 512
families = ["ar1", "ar1-shuffled", "factor"]
rhos = [0.0, 0.5, 0.9]
seeds = 5
refit_steps = 100
strength = 0.001
growth = 1.05
inner_steps = 10

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.plotting import book_style
from reprobook.sparse import (
    ProxPath,
    exact_refit,
    is_24,
    local_loss,
    magnitude_mask,
    masked_refit,
    prox_prune,
    sparsegpt_24,
    top2_mask,
    wanda_mask,
)
from reprobook.sparse.toy import correlated_layer, optimal_24

run = start_notebook("02_toy_layers", globals())
book_style()
ledger = ClaimsLedger.for_notebook("02_toy_layers", profile=run.profile)

# %% [markdown]
# ## One problem, step by step
#
# On one strongly correlated layer, the prox method's path: as $\lambda$ grows, the share of groups
# that are already 2:4 rises to one, while the local loss grows only as much as needed.

# %%
W0, H = correlated_layer(
    in_features, out_features, samples, rho=rhos[-1], seed=seed, family=families[0]
)
path = ProxPath()
prox_only = prox_prune(
    W0,
    H,
    strength=strength,
    growth=growth,
    inner_steps=inner_steps,
    max_rounds=5000,
    refit_steps=0,
    path=path,
)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
iterations = inner_steps * np.arange(1, len(path.lams) + 1)
left.plot(iterations, path.fraction_24)
left.set_xlabel("proximal gradient iterations")
left.set_ylabel("share of 2:4 groups")
right.semilogy(iterations, path.losses)
right.set_xlabel("proximal gradient iterations")
right.set_ylabel("local loss $L(W)$")
fig.suptitle(f"prox method on a toy layer, rho = {rhos[-1]}")
fig.tight_layout()
plt.show()
first, last = path.lams[0], path.lams[-1]
print(f"{path.iterations} iterations; lambda grew from {first:.3g} to {last:.3g}")
mask = top2_mask(prox_only.abs())
losses_on_mask = {
    "when every group is 2:4": local_loss(prox_only, W0, H),
    f"after {refit_steps} masked updates": local_loss(
        masked_refit(prox_only, mask, W0, H, refit_steps), W0, H
    ),
    "least squares on that mask": local_loss(exact_refit(mask, W0, H), W0, H),
    "best mask": local_loss(optimal_24(W0, H), W0, H),
}
print("local loss: " + "; ".join(f"{k} {v:.3f}" for k, v in losses_on_mask.items()))

# %% [markdown]
# ## All methods over correlation shapes, strengths and seeds
#
# Without correlation ($\rho = 0$) the three shapes are the same problem, so it is run once.


# %%
def refit(weight):
    """The masked gradient updates on the mask of a 2:4 weight."""
    return masked_refit(weight, top2_mask(weight.abs()), W0, H, refit_steps)


rows = []
for family in families:
    for rho in rhos:
        if rho == 0 and family != families[0]:
            continue  # uncorrelated features: the same problem for every shape
        for problem_seed in range(seed * seeds, (seed + 1) * seeds):
            W0, H = correlated_layer(
                in_features, out_features, samples, rho, problem_seed, family
            )
            wanda = W0 * wanda_mask(W0, H)
            sparsegpt = sparsegpt_24(W0, H)
            prox = prox_prune(
                W0,
                H,
                strength=strength,
                growth=growth,
                inner_steps=inner_steps,
                max_rounds=5000,
                refit_steps=0,
            )
            weights = {
                "magnitude": W0 * magnitude_mask(W0),
                "Wanda": wanda,
                "Wanda + refit": refit(wanda),
                "SparseGPT": sparsegpt,
                "SparseGPT + refit": refit(sparsegpt),
                "prox, before refit": prox,
                "prox (reconstruction)": refit(prox),
                "optimal": optimal_24(W0, H),
            }
            assert all(is_24(w) for w in weights.values())
            rows += [
                {
                    "family": family if rho > 0 else "uncorrelated",
                    "rho": rho,
                    "seed": problem_seed,
                    "method": name,
                    "loss": local_loss(w, W0, H),
                }
                for name, w in weights.items()
            ]
results = pd.DataFrame(rows)
losses = results.pivot_table(
    index=["family", "rho", "seed"], columns="method", values="loss"
)[list(weights)]
ratios = losses.div(losses["optimal"], axis=0)
print("mean ratio to the optimal local loss, by correlation shape and strength")
print_table(ratios.groupby(level=["family", "rho"]).mean().T)
print("largest ratio to the optimal local loss over the seeds")
print_table(ratios.groupby(level=["family", "rho"]).max().T)

# %%
mean_ratio = ratios.groupby(level=["family", "rho"]).mean()
fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 4), sharey=True)
for ax, family in zip(np.atleast_1d(axes), families):
    shown = mean_ratio.loc[
        [f for f in ("uncorrelated", family) if f in mean_ratio.index]
    ]
    shown = shown.reset_index(level="family", drop=True)
    for name in [m for m in weights if m != "optimal"]:
        ax.plot(shown.index, shown[name], "o-", label=name)
    ax.set_yscale("log")
    ax.set_xlabel(r"feature correlation $\rho$")
    ax.set_title(family)
np.atleast_1d(axes)[0].set_ylabel("local loss / optimal local loss")
np.atleast_1d(axes)[-1].legend(fontsize=8)
fig.suptitle(
    f"toy layers, d = {in_features}, {out_features} rows, mean over {seeds} seeds"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# Without correlations ($\rho = 0$, $H$ nearly diagonal) the methods that use $H$ are all close to
# the optimum and Wanda is close behind: there is little to exploit. As $\rho$ grows, the mask-only
# methods fall far behind, SparseGPT's greedy choice costs more, and refitting the kept weights
# matters most. The shape of the correlation matters as much as its strength: when correlated
# features are neighbours (**ar1**) they share a group of four, and choosing two of four is
# choosing among substitutes; when the same features are **shuffled** into different groups, a
# kept weight in one group has to stand in for a pruned weight of another, and every method does
# worse, SparseGPT most. The prox method, refitted, stays closest to the optimum on every shape,
# but not always within the 10% the book hypothesized (the claims below).
#
# ## The claims
#
# **below-sparsegpt-toy**: the largest ratio of the prox method's local loss to SparseGPT's over
# every correlated problem ($\rho > 0$, every shape) and seed. **near-optimal-toy**: the largest
# ratio of the prox method's local loss to the optimum over the same problems (the book's
# hypothesis: at most 1.1). **refit-improves-local**, a sanity check (the masked updates descend
# the very loss that is measured, from a point they can keep): the largest ratio of the loss
# after the masked updates to the loss before, over Wanda and SparseGPT on every problem.

# %%
correlated = ratios[ratios.index.get_level_values("rho") > 0]
prox_over_sparsegpt = correlated["prox (reconstruction)"] / correlated["SparseGPT"]
print_table(
    pd.DataFrame(
        {
            "worst prox / SparseGPT": prox_over_sparsegpt.groupby(level="family").max(),
            "worst prox / optimal": correlated["prox (reconstruction)"]
            .groupby(level="family")
            .max(),
        }
    )
)
ledger.record("below-sparsegpt-toy", float(prox_over_sparsegpt.max()))
ledger.record("near-optimal-toy", float(correlated["prox (reconstruction)"].max()))
ledger.record(
    "refit-improves-local",
    float(
        max(
            (losses["Wanda + refit"] / losses["Wanda"]).max(),
            (losses["SparseGPT + refit"] / losses["SparseGPT"]).max(),
        )
    ),
)

# %% tags=["nbval-check-output"]
ledger.report()
