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
# # Language modelling: the gain over Adam
#
# The paper's main experiment trains GPT-2 (124M and 355M parameters) on OpenWebText for
# $10^5$ steps of about half a million tokens, and reports that MADA ends with a lower
# validation loss than Adam, and that its gain over Adam is about three times the gain of the
# other optimizers (the first version's abstract). The official repository holds the
# validation trajectories of the 124M runs; this notebook prints them beside its own numbers
# (the last section).
#
# A run of that size needs eight GPUs for days. Here every optimizer trains the book's
# smallest laboratory architecture, `lab-micro` (a one-layer LLaMA, character-level, about
# 50,000 parameters), from scratch on Shakespeare, through the book's one training loop
# (`reprobook.lm.train.pretrain`: linear warm-up, cosine decay, gradient clipping at 1, weight
# decay 0.1 on matrices). The runs see far less than one epoch of the text, so the model
# **underfits**, as GPT-2 does on OpenWebText; the validation loss is then a fair measure of
# optimization. Each optimizer runs with the same peak learning rate and schedule, from the
# same initializations (one per seed), on the same batches.
#
# | optimizer | where it comes from |
# |---|---|
# | Adam, AMSGrad | `torch.optim.AdamW` (with `amsgrad=True`) |
# | AVGrad | `reprobook.optim.adaptive.AVGrad` |
# | Yogi, Adan, Lion | `pytorch_optimizer` (their papers' default coefficients for Adan and Lion) |
# | HyperAdam | MADA at the Adam point learning only $\beta_1, \beta_2$ |
# | MADA | `reprobook.optim.mada.MADA`, starting at AVGrad ($\rho = 0$) as the paper's best GPT-2 run |
#
# The runs train in float64: in float32 the round-off of a CPU's kernels, amplified by
# training, moves the final losses in the second decimal, as much as another seed; in float64
# every CPU prints the same numbers. (On a GPU, the `paper` profile trains in float32.)
#
# MADA's hyper-learning rates are the official GPT-2 values ($5\cdot10^{-4}$ for $\beta_1,
# \beta_2$; 0.1 for the others), and hyper-steps start after `hyper_start` steps.

# %% tags=["parameters"]
profile = "book"
seed = 0
seeds = [0, 1, 2]
model = "lab-micro"
steps = 200
batch_size = 6
learning_rate = 0.003
warmup_steps = 20
eval_every = 50
eval_batches = 4
optimizers = ["adam", "amsgrad", "avgrad", "yogi", "adan", "lion", "hyperadam", "mada"]
betas = [0.9, 0.95]
mada_start = [0.0, 0.0, 1.0, 1.0]
hyper_lrs = [0.0005, 0.0005, 0.1, 0.1, 0.1, 0.1]
hyper_start = 10
workers = 1
device = "cpu"
dtype = "float64"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.lm.models import TrainingRecipe, build_model, parameter_count
from reprobook.optim.lm_runs import (
    RunConfig,
    final_state_config,
    gains_over,
    language_model_task,
    optimizer_options,
    paired_t,
    results_frame,
    train_runs,
)
from reprobook.optim.mada import BOXES, COEFFICIENTS
from reprobook.plotting import book_style

run = start_notebook("02_language_modelling", globals())
book_style()
ledger = ClaimsLedger.for_notebook("02_language_modelling", profile=run.profile)
if not {"adam", "mada"} <= set(optimizers) or len(betas) != 2:
    raise ValueError(
        "optimizers must include adam (the baseline) and mada, and betas must be "
        f"(beta1, beta2); got optimizers={optimizers}, betas={betas}"
    )
if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "cpu"

# %% [markdown]
# ## The task

# %%
recipe = TrainingRecipe(
    steps=steps,
    batch_size=batch_size,
    learning_rate=learning_rate,
    warmup_steps=warmup_steps,
    eval_every=eval_every,
    eval_batches=eval_batches,
)
task = language_model_task(model, recipe, device=device, dtype=dtype)
size = parameter_count(build_model(task.spec, task.vocab_size, task.end_of_text, seed))
seen = steps * batch_size * task.spec.context
print(
    f"{model} architecture, {size:,} parameters, {task.vocab_size} characters; "
    f"{seen:,} training tokens seen = {seen / task.train_tokens.numel():.3f} epoch"
)

# %% [markdown]
# ## The runs

# %%
options = optimizer_options(mada_start, hyper_lrs, hyper_start)
configs = [
    RunConfig(name, seed=s, betas=tuple(betas), mada=options.get(name, {}))
    for s in seeds
    for name in optimizers
]
results = train_runs(task, configs, workers=workers)
frame = results_frame(results)
print(f"{len(results)} runs; mean seconds per run:")
print_table(
    frame.groupby("optimizer", sort=False)["seconds"].mean().to_frame().T, index=False
)

# %% [markdown]
# ## Validation loss and the gain over Adam
#
# The gain of an optimizer is $L_{\text{Adam}} - L_X$, the final validation loss of Adam minus
# its own, paired by seed (same initialization, same batches); the table gives its mean, its
# standard deviation over the seeds, and on how many seeds it is positive.

# %%
gains = gains_over(frame)
print_table(gains)
fig, (curves, tail) = plt.subplots(1, 2, figsize=(12, 4))
for name in optimizers:
    runs = [r for r in results if r.config.name == name]
    steps_axis = runs[0].history["eval_step"]
    mean_curve = np.mean([r.history["eval_validation_loss"] for r in runs], axis=0)
    for ax in (curves, tail):
        ax.plot(steps_axis, mean_curve, label=name, lw=2.2 if name == "mada" else 1.3)
curves.set(
    xlabel="step", ylabel="validation loss (mean over seeds)", title="validation loss"
)
cut = len(steps_axis) // 2
tail.set(
    xlabel="step",
    title="second half",
    xlim=(steps_axis[cut], steps_axis[-1]),
    ylim=(gains.iloc[:, 0].min() - 0.05, gains.iloc[:, 0].min() + 0.3),
)
tail.legend(ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What MADA learns
#
# The trajectories of the six coefficients, one line per seed. The paper's GPT-2 runs, from
# the same start, end with $\rho$ between 0.12 and 0.37 (part way back from AVGrad towards
# Adam), $\beta_3$ between 0.07 and 0.16 (a little of Adan's look-ahead), $c$ above 0.84 and
# $\gamma$ at 0.98 to 1 (Adam's second moment, no Lion).

# %%
fig, axes = plt.subplots(1, 6, figsize=(15, 3), sharex=True)
mada_runs = [r for r in results if r.config.optimizer == "mada"]
for ax, name in zip(axes, COEFFICIENTS):
    for r in mada_runs:
        ax.plot(
            [row[name] for row in r.coefficient_trace],
            lw=1.2,
            label=f"seed {r.config.seed}",
        )
    ax.set(
        title=name, xlabel="step", ylim=(BOXES[name][0] - 0.05, BOXES[name][1] + 0.05)
    )
axes[0].legend(fontsize=7)
fig.tight_layout()
plt.show()
learned = pd.DataFrame(
    [r.coefficient_trace[-1] for r in mada_runs],
    index=[r.config.seed for r in mada_runs],
)
learned.index.name = "seed"
print("MADA's coefficients at the end of each run:")
print_table(learned)

# %% [markdown]
# ## MADA's final state
#
# Is the gain in *where* MADA ends or in the *path*? The official plotting script has a curve
# "MADA final state": an ordinary run with the coefficients frozen at the values MADA learned.
# Here each seed reruns with its own MADA run's final coefficients, from the start, with no
# hyper-steps.

# %%
final_results = train_runs(
    task, [final_state_config(r) for r in mada_runs], workers=workers
)
with_final = results_frame(results + final_results)
comparison = gains_over(with_final).loc[["adam", "mada", "mada final state"]]
print_table(comparison)

# %% [markdown]
# What the tables say, at the `book` profile. MADA ends lowest, below Adam on every seed,
# and AVGrad, the point it starts from, next; HyperAdam a little below Adam; AMSGrad, Yogi,
# Adan and Lion above it. The last four run at Adam's learning rate, without a search of their
# own, and Adan and Lion stay near the plateau of the unigram loss (about 3.1 nats) for most of
# the run. MADA moves $\rho$ a little way back from AVGrad and mixes in a few percent of
# Lion's sign step ($\gamma \approx 0.96$). Freezing these final coefficients from the start
# keeps part of the gain: where MADA ends is a better optimizer than Adam here, but the path
# adds to it.
#
# How far do these orderings hold? Not far: the same runs with a batch of 12 windows instead of
# 6 left MADA 0.002 nats below Adam (paired $t$ = 0.03) and the final state worse than Adam on
# every seed, and with 8 windows MADA ended above Adam on average. At this scale the ranking of MADA
# against Adam depends on the configuration as much as on the optimizer; the claims below
# judge the `book` configuration only.

# %% [markdown]
# ## Beside the paper's scale
#
# The official repository's GPT-2 124M trajectories (validation loss on 200 fixed batches
# of OpenWebText, every $10^4$ steps; `out_adam/…/traj_owt_gpt2_124_adam.txt` and
# `out_mada/…/traj_owt_gpt2_124_mada.txt`). The best MADA run starts from Adam's
# $(\beta_1, \beta_2)$ and $\rho = 0$, as the runs above.

# %%
published = pd.read_csv("gpt2_124m_logs.csv")
print_table(
    published.iloc[:, :2].join(published[["50K", "100K", "final train loss"]]),
    index=False,
)
paper_gain = published.loc[0, "100K"] - published.loc[1, "100K"]
print(f"paper-scale gain of MADA over Adam at 100K steps: {paper_gain:.4f}")
mean_gain = gains.loc["mada", "gain"]
print(
    f"this notebook's gain of MADA over Adam: {mean_gain:.3f}",
    f"(mean over {len(seeds)} seeds)",
)

# %% [markdown]
# ## The claims
#
# With three seeds, a gain of a few hundredths is within the seeds' spread. So the two claims
# on the gain are judged by the paired $t$ statistic over the seeds: "reproduced" asks for a
# one-sided 5% significance ($t \ge 2.92$ at two degrees of freedom), "in direction" for a
# positive mean.

# %%
best_other = gains.drop(index=["adam", "mada"])["gain"].idxmax()
print(f"the other optimizer with the largest gain: {best_other}")
ledger.record("mada-beats-adam", paired_t(frame, "mada", "adam"))
ledger.record("largest-gain", paired_t(frame, "mada", best_other))
ledger.record("rho-leaves-avgrad", learned["rho"].mean())
ledger.record("c-stays-adam-like", learned["c"].min())
ledger.record("gamma-no-lion", learned["gamma"].min())
violations = sum(
    not BOXES[name][0] <= value <= BOXES[name][1]
    for r in results
    for row in r.coefficient_trace
    for name, value in row.items()
)
ledger.record("boxes-hold", violations)

# %% tags=["nbval-check-output"]
ledger.report()
