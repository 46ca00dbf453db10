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
# # Learning a 2:4 mask end to end
#
# ProxSparse {cite}`liu2025proxsparse` uses the regularizer of the previous chapter: for a group
# $w$ of four consecutive input weights of a row,
# $R(w) = |w_1w_2w_3| + |w_1w_2w_4| + |w_1w_3w_4| + |w_2w_3w_4|$, zero exactly when at most two
# entries are non-zero. What changes is *where* it acts. The previous chapter's method minimizes
# each layer's local squared loss plus $\lambda R$, layer by layer, and keeps the weights it
# learns. ProxSparse minimizes the **language-model loss of the whole model** plus $\lambda R$
# over every attention and MLP weight,
#
# $$
# \min_W \; L_{\mathrm{CE}}(W; D) + \lambda_1 \sum_{\text{groups } g} R(w_g)
#   \;\big[+\, \lambda_2 \textstyle\sum_\ell \big\|\tfrac{W_\ell}{W^0_\ell + \epsilon\,\mathrm{sgn}^*(W^0_\ell)} \odot (W_\ell - W^0_\ell)\big\|_F^2\big],
# $$
#
# by a short training run on a few hundred calibration sequences, and then keeps **only the
# mask**: the two largest entries of every group of the learned weights, applied to the original
# weights $W^0$. Nothing is updated after the mask.
#
# | | `prox24` (layer-wise) | ProxSparse (end to end) |
# |---|---|---|
# | loss the prox meets | each layer's $\tfrac12\operatorname{tr}((W-W^0)H(W-W^0)^\top)$ | the model's cross-entropy on calibration text |
# | optimizer | proximal gradient, one layer at a time | AdamW on all parameters, then the prox on every targeted weight |
# | strength | grows until every group is 2:4 | constant; the mask is read whatever the share of 2:4 groups |
# | kept weights | the learned ones, refit by masked updates | the **original** ones |
#
# The algorithm as the official code runs it (the paper's Algorithm 1): one epoch over the
# calibration sequences, batch 1; AdamW with a linear warm-up over the first 10% of the steps and
# a linear decay to zero; gradient clipping at norm 1; after every optimizer step,
# $W \leftarrow \operatorname{prox}_{\lambda_1 R}(W)$ on every attention and MLP weight, with the
# *same* $\lambda_1$ at every step (not the learning rate times $\lambda_1$ as in textbook
# proximal gradient). `reprobook.sparse.proxsparse` implements it on `transformers` causal LMs
# (LLaMA, Mistral, Qwen and OPT layouts), with the prox `prox_24` of the previous chapter; the optional second term ($\lambda_2$, the
# paper's "full" variant) is off here, as in most of the official scripts.
#
# This notebook follows one run on the laboratory LLaMA (see the appendix), then sweeps
# $\lambda_1$. Perplexity is measured on the **validation** split (its first 32,768 tokens, to
# keep the notebook within the book's time budget): this is where the book chose $\lambda_1$ for
# the next notebook, which tunes the learning rate on the same split and judges on the test
# split.

# %% tags=["parameters"]
profile = "book"
seed = 0
model = "lab-tiny"
calibration_sequences = 128
sequence_length = 128
calibration_text = "train"
evaluation_text = "validation"
evaluation_tokens = 32768
lam = 0.3
lams = [0.1, 0.3, 1.0, 3.0]
control_lam = 0.001
learning_rate = 0.001
training_batch = 1
log_every = 8
device = "cpu"
dtype = "float32"
batch_size = 8

# %%
import copy

import matplotlib.pyplot as plt
import pandas as pd
import torch

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.lm.evaluate import perplexity
from reprobook.lm.lab import load_causal_lm, text_tokens
from reprobook.lm.train import random_windows
from reprobook.plotting import book_style
from reprobook.sparse import is_24
from reprobook.sparse.proxsparse import (
    mask_difference,
    proxsparse,
    settling_ratio,
    targeted_linears,
)

run = start_notebook("01_learning_masks", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_learning_masks", profile=run.profile)
if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "cpu"

# %% [markdown]
# ## The model and the calibration sequences
#
# The calibration sequences are windows at seeded random offsets of the training text, the
# analogue of the paper's 400 C4 documents (about $10^5$ tokens); here they are 128 windows of
# 128 tokens. One epoch at batch 1 is then 128 steps.

# %%
lab = load_causal_lm(model, seed=seed)
dense_model = lab.model.to(device=device, dtype=getattr(torch, dtype))
calibration = random_windows(
    text_tokens(lab.tokenizer, calibration_text),
    calibration_sequences,
    sequence_length,
    torch.Generator().manual_seed(seed),
).to(device)
evaluation = text_tokens(lab.tokenizer, evaluation_text)[: evaluation_tokens or None]
targets = targeted_linears(dense_model)
groups = sum(linear.weight.numel() // 4 for linear in targets.values())
print(
    f"model {lab.name}: {len(targets)} targeted linear layers, "
    f"{groups:,} groups of four"
)
print(f"calibration: {calibration_sequences} windows of {sequence_length} tokens")


def evaluate(network) -> float:
    """Perplexity on the evaluation text, in windows of the calibration length."""
    return perplexity(network, evaluation.to(device), sequence_length, batch_size)


def learn(strength: float, schedule: str = "linear"):
    """A copy of the dense model after ProxSparse at this strength, and its result."""
    network = copy.deepcopy(dense_model)
    result = proxsparse(
        network,
        calibration,
        strength,
        learning_rate=learning_rate,
        batch_size=training_batch,
        schedule=schedule,
        log_every=log_every,
        seed=seed,
        progress=False,
    )
    return network, result


original_weights = {name: linear.weight for name, linear in targets.items()}


dense_perplexity = evaluate(dense_model)
print(f"dense model: {evaluation_text} perplexity {dense_perplexity:.2f}")

# %% [markdown]
# ## One run
#
# Every `log_every` steps the run records the mean training loss, the regularizer $R$ of the
# learned weights, the share of groups that are already 2:4 (at most two non-zeros), and the
# number of groups whose top-2 mask changed since the previous record: the paper's "gradual
# mask exploration". The first record compares with the mask of the original weights, which is
# magnitude pruning.

# %%
network, result = learn(lam)
log = result.log
print_table(log.set_index("step"))
print(
    f"time: {result.seconds['training steps']:.1f} s in training steps, "
    f"{result.seconds['projections']:.1f} s in the prox"
)

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].plot(log.step, log.loss, "o-", markersize=3)
axes[0].set_ylabel("training loss (mean since last record)")
axes[1].plot(log.step, log["fraction 2:4"], "o-", markersize=3)
axes[1].set_ylabel("share of 2:4 groups")
axes[1].set_ylim(0, 1.02)
axes[2].bar(log.step, log["mask flips"], width=0.8 * log_every)
axes[2].set_ylabel("groups whose mask changed")
for axis in axes:
    axis.set_xlabel("step")
fig.suptitle(f"ProxSparse on {lab.name}, $\\lambda_1$ = {lam:g}")
fig.tight_layout()
plt.show()

# %% [markdown]
# The weights do not become 2:4 in one step: each prox shrinks the third-largest entry of a
# group by about $\lambda_1 |w_{(1)} w_{(2)}|$, and the optimizer pushes back where the loss
# needs the weight. Masks change most in the first steps and settle as the learning rate decays.
# How far did the learned mask move from magnitude pruning, and what does the model lose?

# %%
moved = mask_difference(result.masks, original_weights)
print(f"groups whose final mask differs from magnitude pruning: {moved:.1%}")
main_perplexity = evaluate(network)
print(
    "every targeted weight 2:4:",
    all(is_24(linear.weight) for linear in targeted_linears(network).values()),
)
print(
    f"{evaluation_text} perplexity: dense {dense_perplexity:.2f}, "
    f"ProxSparse {main_perplexity:.2f}"
)

# %% [markdown]
# ## The strength $\lambda_1$
#
# The official scripts use $\lambda_1$ from 0.2 to 25 across model families, because the prox's
# effect scales with the weights' magnitudes. On the laboratory model the book tried strengths
# from 0.03 to 3 with learning rates $3\cdot10^{-4}$, $10^{-3}$ and $3\cdot10^{-3}$ on the
# whole validation split (runs not shown here). The best pair it found was $\lambda_1 = 0.3$ with
# $10^{-3}$; the sweep below reruns four strengths at that learning rate. Too weak, and the
# weights are still far from 2:4 when the run ends, so the mask read from them is close to
# magnitude pruning; too strong, and the mask is fixed in the first steps, before the loss can
# say which weights matter.

# %%
runs = {lam: (result, main_perplexity)}
for strength in lams:
    if strength not in runs:
        network_s, result_s = learn(strength)
        runs[strength] = (result_s, evaluate(network_s))
rows = []
for strength in sorted(runs):
    result_s, perplexity_s = runs[strength]
    done = result_s.log[result_s.log["fraction 2:4"] >= 1.0]
    rows.append(
        {
            "lambda_1": strength,
            "perplexity": perplexity_s,
            "final share 2:4": result_s.log["fraction 2:4"].iloc[-1],
            "steps to 99% 2:4": result_s.log.step[
                result_s.log["fraction 2:4"] >= 0.99
            ].min(),
            "steps to all 2:4": done.step.min(),
        }
    )
sweep = pd.DataFrame(rows).set_index("lambda_1")
print_table(sweep)
print("(NaN: not reached within the run)")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
left.semilogx(sweep.index, sweep.perplexity, "o-")
left.axhline(dense_perplexity, color="black", linestyle="--", label="dense")
left.set_xlabel("$\\lambda_1$")
left.set_ylabel(f"{evaluation_text} perplexity")
left.legend()
for strength, (result_s, _) in sorted(runs.items()):
    right.plot(
        result_s.log.step,
        result_s.log["fraction 2:4"],
        label=f"$\\lambda_1$={strength:g}",
    )
right.set_xlabel("step")
right.set_ylabel("share of 2:4 groups")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ```{exercise} Which groups flip last?
# :label: proxsparse-ex-last-flips
#
# `result.last_change[name]` holds, for every group of a targeted weight, the last recorded step
# at which its mask changed (0 if it never changed). Before looking, predict which groups of the
# *original* weights keep changing longest. Hint: the prox shrinks the third-largest magnitude,
# and the mask flips when the third- and second-largest trade places. Then check your
# prediction on the run with $\lambda_1$ = `lam`.
# ```

# %% [markdown] tags=["solution"]
# ````{solution-start} proxsparse-ex-last-flips
# :class: dropdown
# ````

# %% [markdown] tags=["solution"]
# A group whose second- and third-largest magnitudes nearly tie needs only a small push from the
# loss's gradient to swap them, and the prox, which shrinks the third one by about
# $\lambda_1 |w_{(1)}w_{(2)}|$ per step, is slow to separate them. So the groups with the
# smallest relative gap $(|w|_{(2)} - |w|_{(3)}) / |w|_{(2)}$ should flip last. Sorting the
# groups by that gap into five equal bins:

# %% tags=["solution"]
gaps, last = [], []
for name, linear in targets.items():
    sorted_magnitudes = (
        linear.weight.detach().abs().view(-1, 4).sort(-1, descending=True)
    )
    top = sorted_magnitudes.values
    gaps.append((top[:, 1] - top[:, 2]) / top[:, 1])
    last.append(result.last_change[name].flatten())
by_gap = pd.DataFrame({"gap": torch.cat(gaps).cpu().numpy()})
by_gap["last change"] = torch.cat(last).numpy()
by_gap["gap quintile"] = pd.qcut(
    by_gap.gap, 5, labels=["1 (near tie)", "2", "3", "4", "5"]
)
summary = by_gap.groupby("gap quintile", observed=True)["last change"].agg(
    ["mean", lambda s: (s > 0).mean()]
)
summary.columns = ["mean last-change step", "share that ever changed"]
print_table(summary)

# %% [markdown] tags=["solution"]
# ````{solution-end}
# ````

# %% [markdown]
# ## Is it the prox that settles the mask, or the schedule?
#
# The mask would settle in the second half of the run even without the prox: the learning
# rate decays linearly to zero, so the weights, and with them the top-2 masks, move less and
# less whatever the regularizer does. A ratio of late to early mask changes below 1 measures
# the schedule as much as the prox. The control is the same run with the prox effectively off,
# $\lambda_1$ = `control_lam` (the weights barely leave the dense point: almost no group
# becomes 2:4), under the same schedule; the claim is the difference between the two. The same
# two runs with a constant learning rate after the warm-up show how much of the settling each
# of them owes to the decay.
#
# The ratio is the number of groups whose mask changed in the second half of the run divided
# by the number in the first half.

# %%
controls = {}
for strength in (lam, control_lam):
    for schedule in ("linear", "constant"):
        if (strength, schedule) == (lam, "linear"):
            controls[strength, schedule] = (result, main_perplexity)
        else:
            network_c, result_c = learn(strength, schedule)
            controls[strength, schedule] = (result_c, evaluate(network_c))
rows = []
for (strength, schedule), (result_c, perplexity_c) in controls.items():
    rows.append(
        {
            "lambda_1": strength,
            "learning rate after warm-up": schedule,
            "late / early mask changes": settling_ratio(result_c.log),
            "mask changes": int(result_c.log["mask flips"].sum()),
            "final share 2:4": result_c.log["fraction 2:4"].iloc[-1],
            "off magnitude mask": mask_difference(result_c.masks, original_weights),
            "perplexity": perplexity_c,
        }
    )
settling = pd.DataFrame(rows).set_index(["lambda_1", "learning rate after warm-up"])
print_table(settling)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
for axis, schedule in zip(axes, ("linear", "constant")):
    for strength in (lam, control_lam):
        log_c = controls[strength, schedule][0].log
        axis.plot(
            log_c.step,
            log_c["mask flips"] / log_c["mask flips"].sum(),
            "o-",
            markersize=3,
            label=f"$\\lambda_1$ = {strength:g}",
        )
    axis.axvline(log.step.max() / 2, color="black", linestyle=":", linewidth=1)
    axis.set_title(f"learning rate after warm-up: {schedule}")
    axis.set_xlabel("step")
    axis.legend()
axes[0].set_ylabel("share of the run's mask changes")
fig.tight_layout()
plt.show()

# %% [markdown]
# With the decaying rate, the control settles too: its weights follow AdamW alone, and the
# decay slows them down, so about a third as many of its masks change in the second half as in
# the first. The prox settles the mask further under the same schedule: it shrinks the
# third-largest entry of every group towards zero, so once a group's top two are separated
# from the rest the loss's gradient can no longer swap them. With a constant rate the control
# no longer settles at all (as many changes late as early), while ProxSparse still has fewer
# late changes than early ones: that part of the settling is the prox's own. The control also
# says what the mask owes to the prox: read from weights trained without it, the top-2 mask
# moves at least as far from magnitude pruning's as ProxSparse's does, yet its perplexity is
# clearly higher. Moving the mask is not enough; the prox decides where it moves.

# %% [markdown]
# ## The claim
#
# **gradual-exploration**: the paper describes the learning of the mask as a gradual exploration
# that settles. The metric is ProxSparse's late-to-early ratio of mask changes minus the
# control's, under the same decaying schedule: below 0, the prox makes the mask settle beyond
# what the schedule alone does; 0 or more, the settling is the schedule's.

# %%
proxsparse_ratio = settling_ratio(result.log)
control_ratio = settling_ratio(controls[control_lam, "linear"][0].log)
print(
    f"late / early mask changes: ProxSparse (lambda_1 = {lam:g}) "
    f"{proxsparse_ratio:.3f}, "
    f"control (lambda_1 = {control_lam:g}) {control_ratio:.3f}; "
    f"ProxSparse's first record {log['mask flips'].iloc[0]:,} of "
    f"{log['mask flips'].sum():,} changes"
)
ledger.record("gradual-exploration", proxsparse_ratio - control_ratio)

# %% tags=["nbval-check-output"]
ledger.report()
