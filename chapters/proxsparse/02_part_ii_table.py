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
# # Part II in one table: every 2:4 method on one model
#
# The two papers of this part use the same regularizer in opposite ways. This notebook runs
# them, and the one-shot methods they compare with, on the same laboratory LLaMA with the same
# calibration sequences, and measures everything the same way:
#
# * **one-shot, mask only**: magnitude, and Wanda {cite}`sun2024wanda` (magnitude times the norm
#   of the input feature);
# * **one-shot, weights updated**: SparseGPT {cite}`frantar2023sparsegpt`;
# * **layer-wise prox** (the `prox24` chapter, {cite}`kubler2025prox24`): proximal gradient on each
#   layer's local loss, with and without its masked updates ("refit");
# * **end-to-end prox**: ProxSparse {cite}`liu2025proxsparse` (notebook 1), and its ablation
#   "rigid projection", which replaces the prox by a hard top-2 projection after every step, so
#   the mask can still change but the weights are always 2:4.
#
# Every method sees the same calibration windows; ProxSparse trains one epoch on them. The
# claims are judged on the **test** split: the schedules of the layer-wise prox (in the `prox24`
# chapter), the strength of ProxSparse (notebook 1) and the learning rates of both end-to-end
# methods (here, from the same small grid each) were chosen on the validation split.

# %% tags=["parameters"]
profile = "book"
seed = 0
model = "lab-tiny"
calibration_sequences = 128
calibration_seeds = 1
sequence_length = 128
calibration_text = "train"
evaluation_texts = ["validation", "test"]
evaluation_tokens = 32768
lam = 0.3
learning_rates = [0.001, 0.003, 0.01, 0.03]
training_batch = 1
refit_steps = 100
strength = 0.01
growth = 1.3
inner_steps = 25
device = "cpu"
dtype = "float32"
batch_size = 8

# %%
import copy
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.lm.evaluate import perplexity
from reprobook.lm.lab import load_causal_lm, text_tokens
from reprobook.lm.train import random_windows
from reprobook.plotting import book_style
from reprobook.resources import measure
from reprobook.sparse import (
    audit_summary,
    deploy_semi_structured,
    make_pruner,
    prune_causal_lm,
)
from reprobook.sparse.proxsparse import mask_difference, proxsparse, targeted_linears

run = start_notebook("02_part_ii_table", globals())
book_style()
ledger = ClaimsLedger.for_notebook("02_part_ii_table", profile=run.profile)
if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "cpu"

# %%
lab = load_causal_lm(model, seed=seed)
dense_model = lab.model.to(device=device, dtype=getattr(torch, dtype))
train_tokens = text_tokens(lab.tokenizer, calibration_text)
evaluations = {
    Path(text).name: text_tokens(lab.tokenizer, text)[: evaluation_tokens or None]
    for text in evaluation_texts
}
judged = list(evaluations)[-1]
tuning = list(evaluations)[0]
calibrations = {
    calibration_seed: random_windows(
        train_tokens,
        calibration_sequences,
        sequence_length,
        torch.Generator().manual_seed(calibration_seed),
    ).to(device)
    for calibration_seed in range(
        seed * calibration_seeds, (seed + 1) * calibration_seeds
    )
}
print(
    f"model {lab.name}; calibration: {calibration_seeds} draws of "
    f"{calibration_sequences} "
    f"windows of {sequence_length} tokens; the claims are judged on {judged}"
)


def evaluate(network, texts: list[str] | None = None) -> dict[str, float]:
    """Perplexity on these texts (default: all), in windows of the sequence length."""
    return {
        name: perplexity(
            network, evaluations[name].to(device), sequence_length, batch_size
        )
        for name in texts or evaluations
    }


# %% [markdown]
# ## The methods
#
# Each method starts from a copy of the dense model. The layer-wise methods run through the
# block-by-block driver of the `prox24` chapter; ProxSparse and the rigid projection train the
# whole model. Time and peak memory are measured around each call (on the CPU, the most resident
# memory the call added, from the kernel's record of the peak; on a GPU, PyTorch's count of the
# memory it allocated). The prox-2:4 rows use the fast schedule of the `prox24` chapter's
# ablation ($\lambda$ starts ten times stronger and grows by 30% every 25 iterations), which
# halves their time; the `prox24` chapter's own, more gradual schedule is slightly better there.

# %%
prox_options = {"strength": strength, "growth": growth, "inner_steps": inner_steps}
layer_wise = {
    "magnitude": make_pruner("magnitude"),
    "Wanda": make_pruner("wanda"),
    "SparseGPT": make_pruner("sparsegpt"),
    "prox-2:4 layer-wise, no refit": make_pruner("prox", 0, **prox_options),
    "prox-2:4 layer-wise + refit": make_pruner("prox", refit_steps, **prox_options),
}
end_to_end = {"ProxSparse": "prox", "rigid projection": "rigid"}
tuned_rate = {}  # each end-to-end method's learning rate, chosen on validation


def prune(name: str, calibration: torch.Tensor, rate: float | None = None):
    """A copy of the dense model pruned by one method, with the cost of pruning it."""
    network = copy.deepcopy(dense_model)

    def work():
        if name in layer_wise:
            return prune_causal_lm(network, calibration, layer_wise[name], batch_size)
        return proxsparse(
            network,
            calibration,
            lam,
            learning_rate=tuned_rate[name] if rate is None else rate,
            batch_size=training_batch,
            projection=end_to_end[name],
            seed=seed,
            progress=False,
        )

    outcome, cost = measure(work, device)
    return network, outcome, cost


# %% [markdown]
# ## The same tuning budget for both end-to-end methods
#
# The rigid projection is trained the way ProxSparse is, and a learning rate tuned for
# ProxSparse need not suit it: at a small rate its weights barely move between two
# projections, so its mask stays the magnitude mask of weights that hardly changed. Each of
# the two methods therefore gets the same small grid of learning rates on the first
# calibration draw; each keeps the rate with the lowest **validation** perplexity, and only
# that rate is judged on the test split. ProxSparse's strength $\lambda_1$ was chosen in
# notebook 1, also on the validation split; the rigid projection has no strength to tune. The
# last column is the share of groups whose learned mask differs from magnitude pruning's.

# %%
dense_perplexities = evaluate(dense_model)
dense_weights = {
    name: linear.weight for name, linear in targeted_linears(dense_model).items()
}
grid_rows, chosen = [], {}
for name in end_to_end:
    for rate in learning_rates:
        try:
            network, outcome, cost = prune(name, calibrations[seed], rate)
        except FloatingPointError as error:  # diverged: recorded, never chosen
            print(f"{name} at learning rate {rate:g}: {error}")
            grid_rows.append({"method": name, "learning rate": rate})
            continue
        validation = evaluate(network, [tuning])[tuning]
        grid_rows.append(
            {
                "method": name,
                "learning rate": rate,
                tuning: validation,
                "off magnitude mask": mask_difference(outcome.masks, dense_weights),
            }
        )
        if name not in chosen or validation < chosen[name][0]:
            chosen[name] = (validation, network, outcome, cost, rate)
    tuned_rate[name] = chosen[name][4]
tuning_table = pd.DataFrame(grid_rows).set_index(["method", "learning rate"])
print_table(tuning_table)
print(
    f"chosen on {tuning}: "
    + ", ".join(f"{name} {rate:g}" for name, rate in tuned_rate.items())
)

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
for name in end_to_end:
    part = tuning_table.loc[name]
    left.semilogx(part.index, part[tuning], "o-", label=name)
    right.semilogx(part.index, part["off magnitude mask"], "o-", label=name)
    left.scatter(
        tuned_rate[name], part.loc[tuned_rate[name], tuning], s=120, marker="*"
    )
left.axhline(dense_perplexities[tuning], color="black", linestyle="--", label="dense")
left.set_yscale("log")
left.set_ylabel(f"{tuning} perplexity (star: chosen)")
right.set_ylabel("share of groups off the magnitude mask")
for axis in (left, right):
    axis.set_xlabel("peak learning rate")
    axis.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Every method, on the first calibration draw
#
# The end-to-end rows are the runs at the learning rates chosen above. The other methods were
# tuned elsewhere (the `prox24` chapter) and are measured on the test split only.

# %%
rows = [{"method": "dense", **dense_perplexities}]
audits = []  # each model is audited at once: only ProxSparse's stays in memory
for name in [*layer_wise, *end_to_end]:
    if name in layer_wise:
        network, outcome, cost = prune(name, calibrations[seed])
        perplexities = evaluate(network, [judged])
    else:
        validation, network, outcome, cost, rate = chosen.pop(name)
        perplexities = {tuning: validation, **evaluate(network, [judged])}
    rows.append(
        {
            "method": name,
            **perplexities,
            "learning rate": tuned_rate.get(name),
            "seconds": cost.seconds,
            "peak MB": cost.peak_bytes / 1e6,
        }
    )
    audits.append(audit_summary({name: network}))
    if name == "ProxSparse":
        proxsparse_model, proxsparse_result = network, outcome
table = pd.DataFrame(rows).set_index("method")
print_table(table)

# %% [markdown]
# Quality against cost: each method's test perplexity, and the time it took to prune the model.

# %%
families = {
    "magnitude": "one-shot, mask only",
    "Wanda": "one-shot, mask only",
    "SparseGPT": "one-shot, weights updated",
    "prox-2:4 layer-wise, no refit": "layer-wise prox",
    "prox-2:4 layer-wise + refit": "layer-wise prox",
    "ProxSparse": "end-to-end prox",
    "rigid projection": "end-to-end prox",
}
colors = dict(zip(dict.fromkeys(families.values()), plt.cm.tab10.colors))
methods = table.drop(index="dense")
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
left.barh(
    methods.index, methods[judged], color=[colors[families[m]] for m in methods.index]
)
left.axvline(table.loc["dense", judged], color="black", linestyle="--", label="dense")
left.set_xlim(0.9 * table.loc["dense", judged], 1.03 * methods[judged].max())
left.invert_yaxis()
left.set_xlabel(f"{judged} perplexity")
left.legend()
for name, row in methods.iterrows():
    right.scatter(row.seconds, row[judged], color=colors[families[name]])
    right.annotate(
        name,
        (row.seconds, row[judged]),
        fontsize=7,
        xytext=(4, 2),
        textcoords="offset points",
    )
right.set_xscale("log")
right.set_xlabel("seconds to prune (one CPU thread)")
right.set_ylabel(f"{judged} perplexity")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Over calibration draws
#
# One draw can flatter a method. With `calibration_seeds` above 1, the methods the claims
# compare with ProxSparse are rerun on every draw (seeds `seed`, `seed + 1`, ...), with the
# learning rates chosen on the first, and each claim uses the worst draw. The `book` profile
# takes one draw per run, to stay within the book's time budget: the evidence over draws is
# meant to come from rerunning the whole notebook at several seeds (`reprobook sweep`), each
# seed a draw with its own tuning. Magnitude pruning does not look at the calibration data, so
# its perplexity is the same on every draw.

# %%
contenders = ["Wanda", "SparseGPT", "ProxSparse"]
draws = {seed: table.loc[contenders, judged]}
for calibration_seed, calibration in calibrations.items():
    if calibration_seed != seed:
        draws[calibration_seed] = pd.Series(
            {
                name: evaluate(prune(name, calibration)[0], [judged])[judged]
                for name in contenders
            }
        )
by_draw = pd.DataFrame(draws).T.rename_axis("calibration seed")
by_draw.insert(0, "magnitude", table.loc["magnitude", judged])
for baseline in ["magnitude", "Wanda", "SparseGPT"]:
    by_draw[f"ProxSparse / {baseline}"] = by_draw["ProxSparse"] / by_draw[baseline]
print(f"{judged} perplexity by calibration draw")
print_table(by_draw)

# %% [markdown]
# ## What the table says
#
# * The two methods that update the kept weights to make up for the pruned ones, SparseGPT and
#   the layer-wise prox, give the lowest perplexities; the layer-wise prox is lower still, at
#   more than ten times SparseGPT's time.
# * ProxSparse's learned mask is clearly better than those of magnitude pruning and Wanda, but it
#   keeps the original weights, and on this model that costs it against the methods that update
#   them.
# * At ProxSparse's learning rate ($10^{-3}$) the rigid projection ends next to magnitude
#   pruning: with the weights 2:4 after every step, the mask the loss can move is the magnitude
#   mask of weights that barely moved, and it differs from magnitude pruning's in a fraction of a
#   percent of the groups. A larger rate moves its mask further and helps up to a point (the
#   tuning table); tuned on the validation split, the rigid projection lands between magnitude
#   pruning and Wanda, still well above the tuned ProxSparse. ProxSparse, for its part, keeps
#   the smallest rate of the grid: larger rates move its mask much further from magnitude
#   pruning's and lose.
# * Here the masked updates change the layer-wise prox's perplexity little: its proximal steps
#   already fit the kept weights to each layer's local loss.

# %% [markdown]
# ## The kept weights and the 2:4 audit
#
# ProxSparse keeps the original weights: in every targeted layer, the pruned weight must equal
# the dense weight times the learned mask, bit for bit. Every pruned model must pass the 2:4
# audit (no group of four with more than two non-zeros).

# %%
changed_entries = 0
dense_targets = targeted_linears(dense_model)
for name, linear in targeted_linears(proxsparse_model).items():
    expected = dense_targets[name].weight * proxsparse_result.masks[name].to(device)
    changed_entries += int((linear.weight != expected).sum())
print(
    "entries of ProxSparse's weights that differ from original x mask:",
    changed_entries,
)
summary = pd.concat(audits)
print_table(summary)
invalid = int((~summary["2:4"]).sum())

# %% [markdown]
# ## Running the ProxSparse model on the 2:4 path
#
# `deploy_semi_structured` swaps every linear layer of the blocks for a `SemiStructuredLinear`:
# PyTorch's semi-structured kernels on a GPU of capability 8.0 or later in half precision, the
# dense masked product elsewhere. On this machine it runs the fallback, which must give the same
# perplexity.

# %%
deployed = copy.deepcopy(proxsparse_model)
layers = deploy_semi_structured(deployed)
kernel_used = any(layer.uses_kernel for layer in layers)
print(
    f"{len(layers)} layers on the semi-structured path; GPU kernel used: {kernel_used}"
)
through_deployed = evaluate(deployed, [judged])[judged]
print(
    f"{judged} perplexity through the deployed layers: {through_deployed:.3f} "
    f"(pruned model: {table.loc['ProxSparse', judged]:.3f})"
)

# %% [markdown]
# ## The claims
#
# **below-magnitude-and-wanda**: the largest ratio, over the calibration draws, of ProxSparse's
# test perplexity to that of magnitude pruning or Wanda, the mask-only methods the paper
# compares with. **versus-sparsegpt**: the same for SparseGPT, which also updates the weights.
# **beats-rigid-projection**: ProxSparse's test perplexity over that of the rigid projection, each
# at the learning rate it chose on the validation split, on the first draw. Two sanity checks:
# **kept-weights-original**, the number of entries of ProxSparse's weights that differ from the
# original times the mask, and **all-models-24**, the number of pruned models that fail the 2:4
# audit.

# %%
ledger.record(
    "below-magnitude-and-wanda",
    by_draw[["ProxSparse / magnitude", "ProxSparse / Wanda"]].max().max(),
)
ledger.record("versus-sparsegpt", by_draw["ProxSparse / SparseGPT"].max())
ledger.record(
    "beats-rigid-projection",
    table.loc["ProxSparse", judged] / table.loc["rigid projection", judged],
)
ledger.record("kept-weights-original", changed_entries)
ledger.record("all-models-24", invalid)

# %% tags=["nbval-check-output"]
ledger.report()
