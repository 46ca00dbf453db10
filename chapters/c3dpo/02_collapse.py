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
# # Probability collapse, and the constraint that prevents it
#
# The paper's LLM experiments cannot run here (their models, data and numbers are not
# available; see the chapter's index). This notebook runs the methods on the book's
# own model, where the true reward is **known**, so that what preference training does to the
# responses' probabilities and to the reward can be measured exactly.
#
# * **The reference** is the pinned `lab-micro` model (character-level, trained on
#   Shakespeare), run in float64.
# * **The data**: prompts are windows of held-out text; each gets two responses sampled from
#   the reference, labelled by the Bradley–Terry model on the true reward,
#   $P(a \succ b) = \sigma(r_a - r_b)$.
# * **The reward** counts the letter `e` in the response, $c$, and is **peaked**: $r = c$ up to
#   a peak, $r = 2\,\text{peak} - c$ above it. More `e` helps only up to a point, as in reward
#   over-optimization, where pushing the data's direction too far goes somewhere bad.
#
# DPO and C2-DPO (the log constraint as a penalty $\lambda\,\mathbb E[(\rho_w+\rho_l)^2]$) train
# from the reference on the same pairs, with the same minibatches, over several seeds (a seed
# draws new prompts, new pairs and new minibatches). Every run is measured, every 50 steps, on
# two **whole, fixed** sets of pairs: the training pairs and as many **held-out** pairs, drawn
# the same way on other prompts, that no run trains on; and by the true reward of fresh
# samples on held-out prompts, `reward_draws` samples per prompt (the reward of one sample per
# prompt moves by about 0.1 from one draw to the next).

# %% tags=["parameters"]
profile = "book"
seed = 0
replicates = 3
model = "lab-micro"
characters = "e"
peak = 3.0
pairs = 384
held_out_pairs = 384
eval_prompts = 96
reward_draws = 4
prompt_length = 16
response_length = 16
beta = 0.1
steps = 150
batch_size = 24
learning_rate = 0.001
log_every = 50
penalty = 0.01
tuning_betas = [0.1, 0.3, 1.0, 3.0]
tuning_penalties = [0.001, 0.003, 0.01, 0.03]
identity_penalty = 1.0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprobook.alignment import PreferenceConfig
from reprobook.alignment.experiment import (
    compare_methods,
    preference_task,
    run_preference,
)
from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.plotting import book_style

run = start_notebook("02_collapse", globals())
book_style()
ledger = ClaimsLedger.for_notebook("02_collapse", profile=run.profile)
# the run's training seeds: `replicates` per notebook seed, disjoint across seeds
seeds = [replicates * seed + i for i in range(replicates)]
if len(tuning_penalties) != len(tuning_betas):
    raise ValueError(
        "tuning_penalties must have as many values as tuning_betas (the same budget), "
        f"got {len(tuning_penalties)} and {len(tuning_betas)}"
    )

# %% [markdown]
# ## The task

# %%
task_shape = dict(
    model=model,
    characters=characters,
    reward_kind="peaked",
    peak=peak,
    pairs=pairs,
    eval_prompts=eval_prompts,
    reward_draws=reward_draws,
    prompt_length=prompt_length,
    response_length=response_length,
)
tasks = {
    s: preference_task(**task_shape, seed=s, held_out_pairs=held_out_pairs)
    for s in seeds
}
reference_reward = {
    s: task.reference_reward(seed=1000 + s) for s, task in tasks.items()
}
example = tasks[seeds[0]]
decode = example.tokenizer.decode
print(
    f"seeds {seeds}: {pairs} training and {held_out_pairs} held-out pairs each; "
    f"responses of {response_length} characters"
)
print("a pair:", repr(decode(example.pairs.prompts[0])))
print("  chosen  :", repr(decode(example.pairs.chosen[0])))
print("  rejected:", repr(decode(example.pairs.rejected[0])))
decided = [
    np.mean(t.pairs.chosen_reward > t.pairs.rejected_reward) for t in tasks.values()
]
print(f"pairs whose chosen response has the higher reward: {np.mean(decided):.2f}")
print(f"reference's mean true reward: {np.mean(list(reference_reward.values())):.2f}")

# %% [markdown]
# ## DPO against C2-DPO
#
# DPO at the common $\beta = 0.1$, C2-DPO at $\beta = 0.1$ and $\lambda = 0.01$. That
# $\lambda$ was **chosen after seeing runs** of this chapter: the value written before any run
# was $10^{-3}$, at which the chosen log-ratio drifts further down (in an earlier version of
# this notebook, measured on one training minibatch, it ended at -1.1 nats). The two runs
# of a seed share its pairs and minibatches.

# %%
methods = {
    "DPO": {},
    f"C2-DPO, lambda = {penalty:g}": {"constraint": "log", "penalty": penalty},
}
training = {
    "beta": beta,
    "steps": steps,
    "batch_size": batch_size,
    "learning_rate": learning_rate,
    "log_every": log_every,
}
histories = compare_methods(tasks, methods, **training)


def final(name, key):
    return np.array([histories[name, s][key][-1] for s in seeds])


summary = pd.DataFrame(
    {
        name: {
            "chosen log-ratio (train pairs)": final(
                name, "train_chosen_logratio"
            ).mean(),
            "rejected log-ratio (train pairs)": final(
                name, "train_rejected_logratio"
            ).mean(),
            "chosen log-ratio (held-out)": final(
                name, "held_out_chosen_logratio"
            ).mean(),
            "lowest chosen log-ratio (held-out)": min(
                min(histories[name, s]["held_out_chosen_logratio"]) for s in seeds
            ),
            "rho_w + rho_l (train pairs)": final(name, "train_violation").mean(),
            "accuracy (held-out)": final(name, "held_out_accuracy").mean(),
            "true-order accuracy (held-out)": final(
                name, "held_out_true_order_accuracy"
            ).mean(),
            "true reward": final(name, "true_reward").mean(),
        }
        for name in methods
    }
).T
print(f"means over {len(seeds)} seeds at step {steps}, on whole sets of pairs:")
print_table(summary.round(3))

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for color, name in zip(("C3", "C0"), methods):
    for s in seeds:
        history = histories[name, s]
        label = name if s == seeds[0] else None
        axes[0].plot(
            history["step"], history["chosen_logratio"], color=color, label=label
        )
        axes[0].plot(history["step"], history["rejected_logratio"], ":", color=color)
        axes[1].plot(
            history["eval_step"][1:],
            history["held_out_accuracy"][1:],
            "o-",
            color=color,
        )
        axes[2].plot(history["eval_step"], history["true_reward"], "o-", color=color)
axes[2].axhline(np.mean(list(reference_reward.values())), color="gray", ls="--")
axes[0].set(
    xlabel="step",
    ylabel="log-ratio (nats)",
    title=r"minibatch: chosen $\rho_w$ (solid), rejected $\rho_l$ (dotted)",
)
axes[1].set(
    xlabel="step", ylabel="accuracy", title=r"held-out pairs: $\rho_w > \rho_l$"
)
axes[2].set(
    xlabel="step", ylabel="mean true reward", title="fresh samples (gray: reference)"
)
axes[0].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# What went up for DPO is the margin, and it went up by pushing **both** log-ratios down: the
# chosen responses lose tens of nats of probability, the rejected ones more, on the training
# pairs and on held-out pairs alike. The probability leaves the data and goes where no pair
# constrains it, here to strings with many `e`, past the reward's peak: the true reward of the
# policy's samples falls far below the reference's. C2-DPO keeps both log-ratios within about
# a nat of 0 and raises the true reward; on held-out pairs its chosen log-ratio drifts a little
# below 0, and it orders them less well than DPO, whose larger margins generalize better.

# %% [markdown]
# ## Each method tuned with the same budget
#
# The comparison above fixes DPO's $\beta$ at 0.1 while $\lambda$ was chosen. A fair
# comparison of what each method can reach gives each the same budget: four values of its
# own knob, DPO's $\beta$ and C2-DPO's $\lambda$ (at $\beta = 0.1$), each trained on a
# **tuning task** (pairs and prompts of their own, seed 10,000 + the notebook's seed) and
# scored by the true reward of fresh samples on the tuning task's prompts. The value with the
# highest reward is then run on the seeds above and judged on their held-out prompts.

# %%
tuning_task = preference_task(**task_shape, seed=10_000 + seed)
candidates = {
    "DPO": [("beta", b, {"beta": b}) for b in tuning_betas],
    "C2-DPO": [
        ("lambda", value, {"constraint": "log", "penalty": value})
        for value in tuning_penalties
    ],
}
tuning, chosen_options = [], {}
for method, grid in candidates.items():
    scores = []
    for knob, value, options in grid:
        config = PreferenceConfig(seed=10_000 + seed, **(training | options))
        reward = run_preference(tuning_task, config)["true_reward"][-1]
        scores.append(reward)
        tuning.append({"method": method, knob: value, "validation reward": reward})
    knob, value, options = grid[int(np.argmax(scores))]
    chosen_options[method] = options
    print(f"{method}: {knob} = {value:g} chosen")
print_table(pd.DataFrame(tuning).set_index("method").round(3))

tuned_methods = {
    f"{method}, tuned": options for method, options in chosen_options.items()
}
tuned = {}
for name, options in tuned_methods.items():
    # a tuned value already run above is not trained again
    same = [m for m, fixed in methods.items() if training | fixed == training | options]
    for s in seeds:
        tuned[name, s] = (
            histories[same[0], s]
            if same
            else run_preference(
                tasks[s], PreferenceConfig(seed=s, **(training | options))
            )
        )
rewards = pd.DataFrame(
    {
        name: [tuned[name, s]["true_reward"][-1] for s in seeds]
        for name in tuned_methods
    },
    index=pd.Index(seeds, name="seed"),
)
rewards["reference"] = [reference_reward[s] for s in seeds]
print("true reward of fresh samples on each seed's held-out prompts, at the last step:")
print_table(rewards.round(2))
dpo_tuned, c2_tuned = tuned_methods
means = rewards.mean()
gain = means[c2_tuned] - max(means[dpo_tuned], means["reference"])
difference = rewards[c2_tuned] - rewards[dpo_tuned]
print(
    f"C2-DPO tuned minus the better of DPO tuned and the reference: {gain:+.2f} "
    f"(C2-DPO minus DPO per seed: {', '.join(f'{d:+.2f}' for d in difference)})"
)

# %% [markdown]
# Tuned, DPO's best $\beta$ is the one that keeps it from collapsing: a larger $\beta$ is a
# stronger pull to the reference, which does here what the constraint does. Whether C2-DPO
# then earns more reward than DPO is decided over the seeds of the chapter's sweep (the
# ledger's last line for `peaked-reward-gain`).
#
# ## The identity constraint
#
# Beside the log constraint, the identity constraint keeps the pair's total probability at the
# reference's (here with $\lambda = 1$, on the first seed).

# %%
s0 = seeds[0]
identity = run_preference(
    tasks[s0],
    PreferenceConfig(
        seed=s0,
        **(training | {"constraint": "identity", "penalty": identity_penalty}),
    ),
)
print_table(
    pd.DataFrame(
        {
            name: {
                "chosen log-ratio (held-out)": h["held_out_chosen_logratio"][-1],
                "rejected log-ratio (held-out)": h["held_out_rejected_logratio"][-1],
                "accuracy (held-out)": h["held_out_accuracy"][-1],
                "true reward": h["true_reward"][-1],
            }
            for name, h in {
                "DPO": histories["DPO", s0],
                f"log, lambda = {penalty:g}": histories[list(methods)[1], s0],
                f"identity, lambda = {identity_penalty:g}": identity,
            }.items()
        }
    ).T.round(3)
)

# %% [markdown]
# ## The claims
#
# The thresholds were written before any run of this chapter: DPO's chosen log-ratio below
# −10 nats in every seed; C2-DPO's at or above −1 at every evaluation and at or above 0 at the
# end; $|\rho_w + \rho_l|$ at most 2 nats while the preference accuracy stays within 0.05 of
# DPO's. Log-ratios and accuracies are means over whole sets of pairs: the collapse and the
# constraint on the training pairs, what C2-DPO keeps on the held-out pairs. DPO's training
# amplifies round-off: on another CPU's kernels the same run ends as a different model (see
# the chapter's page), while C2-DPO's runs agree to many digits. The two claims that compare
# with one DPO run's value, the accuracy shortfall and the reward gain, therefore print as the
# bound $< 0.1$, and the chapter's sweep judges them from its values.

# %%
dpo, c2 = list(methods)
ledger.record(
    "dpo-chosen-collapses", np.mean(final(dpo, "train_chosen_logratio") < -10)
)
ledger.record(
    "c2dpo-chosen-holds",
    min(min(histories[c2, s]["held_out_chosen_logratio"]) for s in seeds),
)
ledger.record("c2dpo-chosen-rises", final(c2, "held_out_chosen_logratio").min())
ledger.record("c2dpo-constraint-small", np.abs(final(c2, "train_violation")).max())
shortfall = (
    summary.loc[dpo, "accuracy (held-out)"] - summary.loc[c2, "accuracy (held-out)"]
)
ledger.record("c2dpo-accuracy-kept", max(shortfall, 0.0))
ledger.record("peaked-reward-gain", gain)
ledger.record(
    "dpo-both-fall",
    np.mean(
        (final(dpo, "train_chosen_logratio") < 0)
        & (final(dpo, "train_rejected_logratio") < 0)
    ),
)

# %% tags=["nbval-check-output"]
ledger.report()
