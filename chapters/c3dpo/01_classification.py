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
# # Preference optimization as classification
#
# DPO {cite}`rafailov2023dpo` trains a policy $\pi_\theta$ on pairs $(x, y_w, y_l)$, a prompt
# with a chosen and a rejected response, against a frozen reference $\pi_{\text{ref}}$. Write
#
# $$
# \rho_w = \log\frac{\pi_\theta(y_w\mid x)}{\pi_{\text{ref}}(y_w\mid x)}, \qquad
# \rho_l = \log\frac{\pi_\theta(y_l\mid x)}{\pi_{\text{ref}}(y_l\mid x)}, \qquad
# h_\theta = \beta(\rho_w - \rho_l).
# $$
#
# Asadi et al. {cite}`asadi2025c2dpo` read DPO as an **implicit classifier** over the two
# classes $\{w, l\}$, with $q_\theta(w) = \sigma(h_\theta)$, trained by a loss between
# $q_\theta$ and a label distribution $p$. Each choice of label and loss is a member of the
# family (`reprobook.alignment.losses`):
#
# | member | label $p_w$ | loss |
# |---|---|---|
# | DPO | 1 | cross-entropy $-\log\sigma(h)$ |
# | cDPO | $1-\varepsilon$ | cross-entropy with the soft label |
# | robust DPO {cite}`chowdhury2024robust` | $1-\varepsilon$ (noisy) | the unbiased estimate of the clean cross-entropy |
# | EXO {cite}`ji2024exo` | $1-\varepsilon$ | $\mathrm{KL}(q_\theta\,\Vert\,p)$ |
# | SLiC {cite}`zhao2023slic` | 1 | hinge $\max(0, 1-h)$ |
# | IPO {cite}`azar2024ipo` | 1 | $(\rho_w - \rho_l - 1/(2\beta))^2$ |
#
# This notebook checks the identities of this view, shows why it is **under-specified**, and
# checks the closed forms the paper's second version derives. The constrained version,
# C2-DPO, adds a condition that pins the direction the losses leave free.

# %% tags=["parameters"]
profile = "book"
seed = 0
beta = 0.1
samples = 10000
instances = 200

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from reprobook.alignment import classification_loss, constraint_violation
from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.plotting import book_style

run = start_notebook("01_classification", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_classification", profile=run.profile)

# %% [markdown]
# ## The identities
#
# On random log-ratios, each member of the family against its definition as a classification
# loss, written independently here: the cross-entropy with a hard or a soft label, the
# Plackett–Luce likelihood of a ranking of $K = 2$ responses (a softmax over the two scores
# $\beta\rho$), the squared loss of the logit towards $1/2$, the Bernoulli KL divergence of
# `torch.distributions`, and the defining property of the robust loss: averaged over labels
# flipped with probability $\varepsilon$, it is the clean cross-entropy.

# %%
generator = torch.Generator().manual_seed(seed)
chosen = 3 * torch.randn(samples, generator=generator, dtype=torch.float64)
rejected = 3 * torch.randn(samples, generator=generator, dtype=torch.float64)
h = beta * (chosen - rejected)
eps = 0.1


def cross_entropy(label, logit):
    return -(label * F.logsigmoid(logit) + (1 - label) * F.logsigmoid(-logit))


def member(loss, smoothing=0.0, winner=chosen, loser=rejected):
    return classification_loss(winner, loser, beta, loss, smoothing)


bernoulli = torch.distributions.Bernoulli
plackett_luce = -torch.log_softmax(beta * torch.stack([chosen, rejected]), dim=0)[0]
exo_kl = torch.distributions.kl_divergence(
    bernoulli(probs=torch.sigmoid(h)), bernoulli(probs=torch.full_like(h, 1 - eps))
)
flipped = (1 - eps) * member("robust", eps) + eps * member(
    "robust", eps, rejected, chosen
)
checks = {
    "DPO = cross-entropy, hard label": (member("dpo"), cross_entropy(1.0, h)),
    "cDPO = cross-entropy, soft label": (member("dpo", eps), cross_entropy(1 - eps, h)),
    "Plackett-Luce, K = 2 = DPO": (plackett_luce, member("dpo")),
    "IPO = (h - 1/2)^2 / beta^2": (member("ipo"), (h - 0.5) ** 2 / beta**2),
    "EXO = KL(q || p)": (member("exo", eps), exo_kl),
    "robust, averaged over flips = DPO": (flipped, member("dpo")),
}
differences = {name: (a - b).abs().max().item() for name, (a, b) in checks.items()}
print_table(
    pd.DataFrame(
        {
            "largest difference": [
                "< 1e-12" if d < 1e-12 else f"{d:.0e}" for d in differences.values()
            ]
        },
        index=list(differences),
    )
)
ledger.record("identities", max(differences.values()))

# %% [markdown]
# ## Agreement with TRL
#
# The same losses as TRL's `DPOTrainer` computes them {cite}`vonwerra2020trl`, on a batch of
# three text pairs scored by the book's pinned character model (the reference) and a copy of
# it with perturbed weights (the policy): TRL's loss from its own batch, and the book's from
# the same tokens and masks (`reprobook.alignment.trl_check`; TRL is installed with the
# book's test dependencies). TRL's IPO averages the log-ratios over each response's tokens.
# One more row asks TRL for cDPO, its sigmoid loss with label smoothing $\varepsilon = 0.1$:
# TRL 1.16 ignores the smoothing in that loss and returns plain DPO's value, so the book's
# cDPO is checked against its closed form above (the cross-entropy with the soft label), not
# against TRL.

# %%
import copy
import tempfile

import torch

from reprobook.alignment.trl_check import VARIANTS, losses_against_trl
from reprobook.lm.lab import pretrained

lab = pretrained("lab-micro", progress=False)
trl_reference = lab.model.to(torch.float64)
trl_policy = copy.deepcopy(trl_reference)
with torch.no_grad():
    noise = torch.Generator().manual_seed(seed)
    for weight in trl_policy.parameters():
        weight.add_(
            0.05 * torch.randn(weight.shape, generator=noise, dtype=weight.dtype)
        )
text_pairs = {
    "prompt": ["To be, or ", "My lord, I ", "Good morrow"],
    "chosen": ["not to be", "am here", "!"],
    "rejected": ["to fail", "go now, sir", "to you all"],
}
with tempfile.TemporaryDirectory() as scratch:
    agreement = pd.DataFrame(
        losses_against_trl(
            trl_policy,
            trl_reference,
            lab.tokenizer,
            text_pairs,
            scratch,
            variants=VARIANTS + (("dpo", eps),),
        )
    )
agreement["relative difference"] = (
    agreement["book"] - agreement["TRL"]
).abs() / agreement["TRL"].abs()
smoothed_dpo = (agreement["loss"] == "dpo") & (agreement["label smoothing"] > 0)
largest = agreement.loc[~smoothed_dpo, "relative difference"].max()
print(
    agreement[["loss", "label smoothing", "TRL", "book"]]
    .round(4)
    .to_string(index=False)
)
print(
    "largest relative difference, TRL's cDPO row aside: "
    f"{'< 1e-5' if largest < 1e-5 else f'{largest:.0e}'}"
)
plain_dpo = agreement[(agreement["loss"] == "dpo") & ~smoothed_dpo]["TRL"].iloc[0]
print(
    f"TRL's sigmoid loss at label smoothing {eps}: "
    f"{agreement[smoothed_dpo]['TRL'].iloc[0]:.4f}, its value without smoothing: "
    f"{plain_dpo:.4f}; the book's cDPO: {agreement[smoothed_dpo]['book'].iloc[0]:.4f}"
)
ledger.record("trl-agreement", largest)

# %% [markdown]
# Each loss as a function of the margin $\rho_w - \rho_l$ ($\beta = 0.1$, $\varepsilon =
# 0.1$). The cross-entropies and EXO fall towards 0 as the margin grows, without a minimum;
# the hinge reaches 0 at $h = 1$; IPO alone has a finite target margin, $1/(2\beta) = 5$ nats.

# %%
margin = torch.linspace(-40, 60, 401, dtype=torch.float64)
zero = torch.zeros_like(margin)
fig, ax = plt.subplots(figsize=(7, 4))
for loss, smoothing, label in [
    ("dpo", 0.0, "DPO"),
    ("dpo", eps, "cDPO"),
    ("robust", eps, "robust"),
    ("exo", eps, "EXO"),
    ("hinge", 0.0, "hinge (SLiC)"),
]:
    ax.plot(
        margin, classification_loss(margin, zero, beta, loss, smoothing), label=label
    )
ax.plot(
    margin,
    classification_loss(margin, zero, beta, "ipo") / 100,
    "--",
    label="IPO / 100",
)
ax.set(xlabel=r"margin $\rho_w - \rho_l$ (nats)", ylabel="loss", ylim=(-0.2, 4))
ax.legend()
plt.show()

# %% [markdown]
# ## Under-specification
#
# Every member sees $(\rho_w, \rho_l)$ through $\rho_w - \rho_l$ only. Two policies with the
# same margin have the same loss, whatever happens to the chosen response's own probability:

# %%
solutions = pd.DataFrame(
    {"rho_w": [5.0, -25.0], "rho_l": [-5.0, -35.0]},
    index=["chosen made likelier", "both collapse"],
)
tensors = {c: torch.tensor(solutions[c].to_numpy()) for c in solutions}
solutions["DPO loss"] = member("dpo", 0.0, tensors["rho_w"], tensors["rho_l"]).numpy()
solutions["pi/pi_ref of y_w"] = np.exp(solutions["rho_w"])
solutions["log constraint"] = constraint_violation(
    tensors["rho_w"], tensors["rho_l"], "log"
).numpy()
print_table(solutions)

# %% [markdown]
# The second policy gives the chosen response $e^{-25} \approx 10^{-11}$ times its reference
# probability, and the loss cannot tell. Training on many pairs that share tokens can slide
# along this free direction; the next notebook shows it happen. The **log constraint** of
# C2-DPO asks $\log\pi_\theta(y_w) + \log\pi_\theta(y_l) = \log\pi_{\text{ref}}(y_w) +
# \log\pi_{\text{ref}}(y_l)$, i.e. $c = \rho_w + \rho_l = 0$; the **identity constraint** asks
# that the pair's total probability stay the reference's. On the log constraint the margin
# splits evenly, $\rho_w = -\rho_l = (\rho_w - \rho_l)/2$: whenever the classifier is right,
# the chosen response gains probability. In practice the constraint is a penalty,
# $\lambda\,\mathbb E[c^2]$, added to the loss.

# %%
on_constraint = torch.linspace(-10, 10, 201, dtype=torch.float64)
split = (on_constraint - (-on_constraint)) / 2
assert torch.all(constraint_violation(on_constraint, -on_constraint, "log") == 0)
ledger.record("margin-splits", (on_constraint - split).abs().max().item())

grid = np.linspace(-30, 10, 161)
W, L = np.meshgrid(grid, grid)
surface = member("dpo", 0.0, torch.tensor(W), torch.tensor(L)).numpy()
fig, ax = plt.subplots(figsize=(5.5, 4.5))
filled = ax.contourf(W, L, surface, levels=20, cmap="viridis")
ax.plot(grid, -grid, "w-", lw=2, label=r"log constraint $\rho_w + \rho_l = 0$")
ax.plot([5, -25], [-5, -35], "ro", ms=7, label="the two solutions above")
ax.set(xlabel=r"$\rho_w$", ylabel=r"$\rho_l$", xlim=(-30, 10), ylim=(-30, 10))
fig.colorbar(filled, label="DPO loss")
ax.legend(loc="lower right", fontsize=8)
plt.show()

# %% [markdown]
# ## The in-sample problem of the second version
#
# The paper's second version derives DPO from a problem whose KL guardrail covers only the two
# responses of a pair, the rest of the mass being free:
#
# $$
# \max_\pi \sum_{y \in \{y_w, y_l\}} \pi(y)\,r(y) - \beta \sum_{y \in \{y_w, y_l\}} \pi(y)
# \log\frac{\pi(y)}{\pi_{\text{ref}}(y)} .
# $$
#
# Setting the derivative in $\pi(y)$ to zero gives $\pi(y) = \pi_{\text{ref}}(y)
# \exp(r(y)/\beta - 1)$: the ratio $\pi(y_w)/\pi(y_l)$ is RLHF's, so Bradley–Terry leads to the
# same DPO loss, but for $r \le 0$ both responses end below $e^{-1}$ times their reference
# probability. Both fall. Below, the closed form against a numerical maximization (scipy's
# trust-region Newton method with the exact gradient and Hessian, whose optimum must keep the
# pair's mass at most 1) on random instances, and the largest ratio
# $\pi(y)/\pi_{\text{ref}}(y)$ over the instances with non-positive rewards.

# %%
rng = np.random.default_rng(seed)
rows = []
for _ in range(instances):
    reference = rng.dirichlet([1.0, 1.0, 2.0])[:2]
    rewards = rng.uniform(-2.0, 0.5, size=2)
    temperature = rng.uniform(0.5, 2.0)
    closed = reference * np.exp(rewards / temperature - 1)
    if closed.sum() > 1:  # the mass bound would be active: not this closed form
        continue

    def negative(z):  # minus the objective in z = log pi, and its gradient
        pi, log_ratio = np.exp(z), z - np.log(reference)
        value = pi @ rewards - temperature * pi @ log_ratio
        return -value, -pi * (rewards - temperature * (log_ratio + 1))

    def curvature(z):
        pi, log_ratio = np.exp(z), z - np.log(reference)
        return np.diag(-pi * (rewards - temperature * (log_ratio + 2)))

    found = minimize(
        negative,
        np.log(reference),
        jac=True,
        hess=curvature,
        method="trust-exact",
        options={"gtol": 1e-14},
    )
    if np.exp(found.x).sum() > 1:
        raise RuntimeError("the numerical optimum breaks the mass bound")
    rows.append(
        {
            "relative error": np.max(np.abs(np.exp(found.x) - closed) / closed),
            "nonpositive": bool(np.all(rewards <= 0)),
            "largest ratio": np.max(closed / reference),
        }
    )
in_sample = pd.DataFrame(rows)
nonpositive = in_sample[in_sample["nonpositive"]]
worst = in_sample["relative error"].max()
print(
    f"{len(in_sample)} instances; closed form against the optimizer, largest relative "
    f"difference: {'< 1e-6' if worst < 1e-6 else f'{worst:.0e}'}"
)
print(
    f"{len(nonpositive)} with r <= 0: largest pi/pi_ref "
    f"{nonpositive['largest ratio'].max():.3f} (e^-1 = {np.exp(-1):.3f})"
)
ledger.record("in-sample-closed-form", in_sample["relative error"].max())
ledger.record("both-decrease", nonpositive["largest ratio"].max() * np.e)

# %% [markdown]
# ```{exercise} Equal loss, opposite fate
# :label: c3dpo-ex-equal-loss
#
# Fix a margin $m = \rho_w - \rho_l > 0$. Describe every $(\rho_w, \rho_l)$ with DPO loss
# $-\log\sigma(\beta m)$, and find the one on which the chosen response's probability is
# unchanged and the one on which it is halved. Which of them does the log constraint select,
# and what is its $\rho_w$?
# ```

# %% [markdown] tags=["solution"]
# ````{solution-start} c3dpo-ex-equal-loss
# :class: dropdown
# ````

# %% [markdown] tags=["solution"]
# The loss depends on the margin only, so the solutions are the line $\rho_l = \rho_w - m$.
# The chosen probability is unchanged at $\rho_w = 0$ (then $\rho_l = -m$) and halved at
# $\rho_w = -\log 2$ (then $\rho_l = -\log 2 - m$). The log constraint $\rho_w + \rho_l = 0$
# meets the line at $\rho_w = m/2 > 0$: the chosen response gains. A check:

# %% tags=["solution"]
m = 4.0
for rho_w in (0.0, -np.log(2), m / 2):
    pair = torch.tensor([rho_w]), torch.tensor([rho_w - m])
    print(
        f"rho_w = {rho_w:+.3f}: DPO loss {member('dpo', 0.0, *pair).item():.6f}, "
        f"c = {constraint_violation(*pair, 'log').item():+.3f}"
    )

# %% [markdown] tags=["solution"]
# ````{solution-end}
# ````

# %% [markdown]
# ## The claims

# %% tags=["nbval-check-output"]
ledger.report()
