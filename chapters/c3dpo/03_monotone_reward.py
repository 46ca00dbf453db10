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
# # When the constraint costs reward
#
# The previous notebook's reward had a peak: pushing probability towards more `e` past it was
# harmful, and the collapse of DPO showed up as a loss of reward. Whether collapse *hurts*
# depends on where the freed probability goes and on what the reward says about it. Here the
# reward is **monotone**, $r = c$, the number of `e` in the response: the direction DPO
# extrapolates to is now the right one, and the constraint, which holds the policy near the
# data, should cost reward. The same task, pairs labelled by the monotone reward, and the same
# two methods.

# %% tags=["parameters"]
profile = "book"
seed = 0
replicates = 3
model = "lab-micro"
characters = "e"
pairs = 384
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

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprobook.alignment.experiment import compare_methods, preference_task
from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.plotting import book_style

run = start_notebook("03_monotone_reward", globals())
book_style()
ledger = ClaimsLedger.for_notebook("03_monotone_reward", profile=run.profile)
# the run's training seeds: `replicates` per notebook seed, disjoint across seeds
seeds = [replicates * seed + i for i in range(replicates)]

# %%
tasks = {
    s: preference_task(
        model,
        characters,
        "monotone",
        None,
        pairs,
        eval_prompts,
        prompt_length,
        response_length,
        seed=s,
        reward_draws=reward_draws,
    )
    for s in seeds
}
reference_reward = np.mean(
    [t.reference_reward(seed=1000 + s) for s, t in tasks.items()]
)
methods = {
    "DPO": {},
    f"C2-DPO, lambda = {penalty:g}": {"constraint": "log", "penalty": penalty},
}
histories = compare_methods(
    tasks,
    methods,
    beta=beta,
    steps=steps,
    batch_size=batch_size,
    learning_rate=learning_rate,
    log_every=log_every,
)
rewards = pd.DataFrame(
    {name: [histories[name, s]["true_reward"][-1] for s in seeds] for name in methods},
    index=pd.Index(seeds, name="seed"),
)
print(f"reference's mean true reward: {reference_reward:.2f}")
print("final true reward of fresh samples:")
print_table(rewards)
chosen = pd.DataFrame(
    {
        name: [histories[name, s]["train_chosen_logratio"][-1] for s in seeds]
        for name in methods
    },
    index=pd.Index(seeds, name="seed"),
)
print("final chosen log-ratio, mean over the training pairs:")
print_table(chosen)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for color, name in zip(("C3", "C0"), methods):
    for s in seeds:
        history = histories[name, s]
        label = name if s == seeds[0] else None
        ax.plot(
            history["eval_step"], history["true_reward"], "o-", color=color, label=label
        )
ax.axhline(reference_reward, color="gray", ls="--", label="reference")
ax.set(xlabel="step", ylabel="mean true reward (count of e)")
ax.legend()
plt.show()

# %% [markdown]
# With a monotone reward DPO's collapse moves mass to strings with more `e` than any response
# in the data, and the reward rewards exactly that; the constraint keeps the policy closer to
# the data and gains less. Neither result is a verdict on the paper's LLM experiments: they
# show that C2-DPO trades the extrapolation of DPO for staying near the data, which helps when
# the reward turns against extrapolation and costs when it does not.

# %% [markdown]
# ## The claims

# %%
dpo, c2 = list(methods)
ledger.record("monotone-dpo-ahead", (rewards[dpo] - rewards[c2]).mean())

# %% tags=["nbval-check-output"]
ledger.report()
