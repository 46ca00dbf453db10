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
# # One update rule, many optimizers
#
# Adam, AMSGrad, Yogi, Adan and Lion differ in a few places of one update: how the second
# moment $v$ is accumulated, whether $v$ is smoothed over time, whether the gradient is
# extrapolated, whether the step is a ratio or a sign. MADA {cite}`ozkara2024mada` writes them as
# one update with six coefficients $\kappa = (\beta_1, \beta_2, \beta_3, \rho, c, \gamma)$ and
# **learns** $\kappa$ during training by hypergradient descent. Per parameter, with the
# gradient $g_t$ at step $t$:
#
# $$
# \begin{aligned}
# \hat g_t &= g_t + \beta_3 (g_t - g_{t-1}) &&\text{Adan's look-ahead}\\
# \tilde g^2_t &= c\,\hat g_t^2 + (1-c)\big(v_{t-1} + \hat g_t^2\,\operatorname{sign}(\hat g_t^2 - v_{t-1})\big) &&\text{$c=1$: Adam, $c=0$: Yogi}\\
# m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\tilde g^2_t\\
# n_t &= \beta_3 n_{t-1} + (1-\beta_3)(g_t - g_{t-1}), \qquad \bar v_t = \tfrac1t \textstyle\sum_{i \le t} v_i &&\text{Adan; AVGrad}\\
# \hat v_t &= \big(\rho\, v_t + (1-\rho)\,\bar v_t\big) / (1-\beta_2^t) &&\text{$\rho=1$: Adam, $\rho=0$: AVGrad}\\
# \Delta_t &= \gamma\,\frac{m_t/(1-\beta_1^t) + \beta_3 n_t}{\sqrt{\hat v_t}+\epsilon} + (1-\gamma)\operatorname{sign}(u_t) &&\text{$\gamma=0$: Lion}\\
# \theta_t &= \theta_{t-1} - \alpha_t \Delta_t
# \end{aligned}
# $$
#
# where $u_t$ is Lion's interpolated momentum with its own fixed $(\beta^L_1, \beta^L_2) =
# (0.95, 0.98)$. **AVGrad**, the paper's other contribution, is Adam with the time average
# $\bar v_t$ in place of AMSGrad's running maximum: it keeps AMSGrad's memory of large
# gradients but is smooth in $\rho$, so a hypergradient can move between Adam and it.
#
# The update above is the one of the official code `amazon-science/mada_optimizer_search`
# (the paper's own text could not be read). `reprobook.optim.mada.MADA` implements it as a
# `torch.optim.Optimizer` whose parameters stay ordinary leaf tensors; its docstring lists the
# code's quirks, which are options, on by default: $\epsilon$ outside the root, $v_0 = \bar v_0 =
# 10^{-15}$, a floor of 0.501 on $\beta_2$, $n_0 = g_1^2$, and Lion's $u_t$ built from the
# *updated* momentum.
#
# **The hypergradient.** The next loss $L(\theta_t)$ depends on $\kappa$ through $\Delta_t$, so
# $\partial L/\partial\kappa = -\alpha_t \langle \nabla L(\theta_t), \partial \Delta_t/\partial
# \kappa\rangle$: one step unrolled, on the *training* loss of the next batch. MADA computes it
# as a vector-Jacobian product when the next gradient arrives, clips it, takes an SGD step on
# each coefficient and clamps the coefficient into its box.

# %% tags=["parameters"]
profile = "book"
seed = 0
identity_steps = 100
toy_steps = 2000000
toy_lr = 0.001
toy_record_every = 2000
hyper_lr = 0.1
hyper_momentum = 0.9

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.lm.models import build_model, get_spec
from reprobook.optim.counterexample import run_amsgrad, run_mada
from reprobook.optim.special_points import SPECIAL_POINTS, lockstep_difference
from reprobook.plotting import book_style

run = start_notebook("01_optimizer_space", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_optimizer_space", profile=run.profile)

# %% [markdown]
# ## The map
#
# At $\beta_3 = 0$ and $\gamma = 1$, two coefficients place the Adam family on a square: $\rho$
# moves between Adam's $v_t$ and AVGrad's average, $c$ between Adam's and Yogi's second moment.
# $\gamma$ leaves the square towards Lion's sign step, $\beta_3$ towards Adan's extrapolation.
# (AMSGrad is not on the map: its maximum is not an interpolation, which is why the paper
# replaces it by AVGrad.)

# %%
fig, (square, lines) = plt.subplots(
    1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.1, 1]}
)
corners = {
    "Adam": (1, 1),
    "AVGrad": (0, 1),
    "Yogi": (1, 0),
    "AVGrad with\nYogi's $v$": (0, 0),
}
square.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, lw=1.5, edgecolor="gray"))
for name, (x, y) in corners.items():
    square.plot(x, y, "o", ms=9, color="C0")
    square.annotate(
        name,
        (x, y),
        xytext=(8 if x else -8, 8 if y else -16),
        textcoords="offset points",
        ha="left" if x else "right",
    )
square.set(xlim=(-0.45, 1.45), ylim=(-0.3, 1.3), xlabel=r"$\rho$", ylabel=r"$c$")
square.set_title(r"$\beta_3 = 0$, $\gamma = 1$")
for row, (name, low, high) in enumerate(
    [
        (r"$\gamma$: Lion $\to$ Adam family", "Lion", "Adam"),
        (r"$\beta_3$: no look-ahead $\to$ Adan-like", "0", "0.99"),
    ]
):
    lines.plot([0, 1], [row, row], color="gray")
    lines.plot([0, 1], [row, row], "o", color="C0")
    lines.annotate(
        low, (0, row), xytext=(0, 8), textcoords="offset points", ha="center"
    )
    lines.annotate(
        high, (1, row), xytext=(0, 8), textcoords="offset points", ha="center"
    )
    lines.annotate(
        name, (0.5, row), xytext=(0, -18), textcoords="offset points", ha="center"
    )
lines.set(xlim=(-0.2, 1.2), ylim=(-0.6, 1.6), xticks=[], yticks=[])
lines.set_title("the other two directions")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The special points, exactly
#
# At each named point MADA, with the coefficients fixed, must *be* the named optimizer. Two
# copies of the laboratory model's architecture (`lab-micro`, float64) take 100 steps, one
# with MADA at the point and one with the named optimizer implemented elsewhere
# (`torch.optim.AdamW`, the book's `AVGrad`, `pytorch_optimizer`'s Yogi and Lion), both fed
# the same gradients at every step (the gradient at MADA's copy), so that what separates them
# is their own arithmetic and not training amplifying it; the table prints how far the
# parameters drift apart, relative to their largest entry. With the
# textbook options ($v_0 = 0$, Lion's $u$ from the previous momentum) the drift is round-off.
# With the official code's quirks it is not zero: $v_0 = 10^{-15}$ is negligible, but the
# Lion variant is another optimizer.

# %%
spec = get_spec("lab-micro")
generator = torch.Generator().manual_seed(seed)
batches = [
    torch.randint(0, 64, (2, 16), generator=generator) for _ in range(identity_steps)
]
lab_model = build_model(spec, 64, 0, seed).double()


def next_token_loss(network, batch):
    return network(input_ids=batch, labels=batch).loss


rows = []
for point in SPECIAL_POINTS:
    textbook = lockstep_difference(lab_model, point, next_token_loss, batches)
    official = lockstep_difference(
        lab_model, point, next_token_loss, batches, official_quirks=True
    )
    rows.append(
        {"point": point, "textbook options": textbook, "official quirks": official}
    )
identities = pd.DataFrame(rows).set_index("point")
for column in identities:
    identities[column] = [
        f"{v:.0e}" if v >= 1e-10 else "< 1e-10" for v in identities[column]
    ]
print(f"largest relative parameter difference after {identity_steps} steps:")
print_table(identities)
ledger.record("special-points", pd.DataFrame(rows)["textbook options"].max())

# %% [markdown]
# ## Where Adam fails: the counterexample of Reddi, Kale and Kumar
#
# On $x \in [-1, 1]$ the losses are $f_t(x) = 1010\,x$ when $t \bmod 101 = 1$ and $-10\,x$
# otherwise {cite}`reddi2018convergence`. Over a period they sum to $10x$, so the best fixed
# point is $x^\star = -1$. Adam's $v_t$ forgets the rare large gradient within a few dozen
# steps, so the hundred small gradients push it up more than the one large gradient pushes
# it down, and it drifts to $+1$. AMSGrad keeps the largest $v$, AVGrad its average; both
# remember the large gradient. MADA starts *at Adam* ($\rho = 1$, $c = 1$, $\beta_3 = 0$) and
# learns $\beta_3$, $\rho$ and $c$ with hyper-SGD (rate 0.1, momentum 0.9), $\beta_1$, $\beta_2$
# and $\gamma$ fixed: the official script's setting, with its learning rate $10^{-3}$,
# $(\beta_1, \beta_2) = (0.9, 0.99)$ and $2 \cdot 10^6$ steps from $x_0 = 0$.
#
# These runs are scalar loops in plain Python (`reprobook.optim.counterexample`), with MADA's
# hypergradient written out by the chain rule; the tests check them step by step against the
# `torch` optimizers. The average regret is $R_T/T = \frac1T\sum_{t\le T} f_t(x_t) - f_t(-1)$.

# %%
adam_point = {
    "beta1": 0.9,
    "beta2": 0.99,
    "beta3": 0.0,
    "rho": 1.0,
    "c": 1.0,
    "gamma": 1.0,
}
learned = ("beta3", "rho", "c")
toy = {
    "Adam": run_mada(toy_steps, toy_lr, adam_point, record_every=toy_record_every),
    "AMSGrad": run_amsgrad(toy_steps, toy_lr, record_every=toy_record_every),
    "AVGrad": run_mada(
        toy_steps, toy_lr, {**adam_point, "rho": 0.0}, record_every=toy_record_every
    ),
    "MADA": run_mada(
        toy_steps,
        toy_lr,
        adam_point,
        hyper_lr=dict.fromkeys(learned, hyper_lr),
        hyper_momentum=dict.fromkeys(learned, hyper_momentum),
        eps=1e-6,
        initial_v=1e-15,
        n_starts_at_grad_squared=True,
        record_every=toy_record_every,
    ),
}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for name, result in toy.items():
    axes[0].plot(result.steps, result.x, label=name)
    axes[1].plot(result.steps, result.average_regret, label=name)
for name in learned:
    axes[2].plot(toy["MADA"].steps, toy["MADA"].coefficients[name], label=name)
axes[0].set(xlabel="step t", ylabel="$x_t$", ylim=(-1.1, 1.1), title="the iterate")
axes[1].set(xlabel="step t", ylabel="$R_t / t$", ylim=(0, 1), title="average regret")
axes[2].set(
    xlabel="step t",
    ylabel="coefficient",
    ylim=(-0.05, 1.05),
    title="MADA's learned coefficients",
)
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()

# %%
tail = slice(-max(1, len(toy["MADA"].steps) // 10), None)
summary = pd.DataFrame(
    {
        "final x": [r.x[-1] for r in toy.values()],
        "mean x, last tenth": [r.x[tail].mean() for r in toy.values()],
        "R_T/T": [r.average_regret[-1] for r in toy.values()],
    },
    index=list(toy),
)
summary["first step with x <= -0.99"] = [
    next((int(t) for t, x in zip(r.steps, r.x) if x <= -0.99), "not reached")
    for r in toy.values()
]
print_table(summary.round(2))
mada = toy["MADA"]
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.add_patch(plt.Rectangle((0, 0), 1, 1, fill=False, lw=1.5, edgecolor="gray"))
for name, (x, y) in corners.items():
    ax.annotate(
        name.replace("\n", " "),
        (x, y),
        fontsize=8,
        ha="center",
        va="bottom" if y else "top",
    )
ax.plot(
    mada.coefficients["rho"],
    mada.coefficients["c"],
    ".-",
    ms=3,
    color="C3",
    label="MADA",
)
ax.set(
    xlim=(-0.2, 1.2),
    ylim=(-0.2, 1.2),
    xlabel=r"$\rho$",
    ylabel=r"$c$",
    title="MADA's path on the map",
)
ax.legend()
plt.show()
print(
    "MADA's coefficients at the end: "
    + ", ".join(f"{name} {mada.coefficients[name][-1]:.2f}" for name in learned)
    + f"; mean rho over the run {mada.coefficients['rho'].mean():.2f}"
)

# %% [markdown]
# What the paper's figure shows (read from the official repository's `results/amsgrad.png`,
# titled with a learning rate of 0.01 and drawn over $10^6$ steps, whereas the script runs
# $10^{-3}$ and $2\cdot 10^6$): Adam at $+1$ with $R_t/t \approx 0.2$; AMSGrad at $-1$ with
# $R_t/t \approx 0.05$; MADA starting near $0.37$, falling linearly and reaching $-1$ at about
# $7.6 \cdot 10^5$ steps, $R_t/t \approx 0.1$. At the script's settings the book sees the same
# shapes: Adam pinned near $+1$, AMSGrad and AVGrad falling to $-1$, and MADA, after a first
# climb, driving $\rho$ to almost 0 over the first $10^5$ steps, i.e. **learning its way
# from Adam to AVGrad**, then falling linearly; but it falls more slowly than in the
# figure and has not reached $-1$ after $2 \cdot 10^6$ steps. The claims below record both.

# %% [markdown]
# ```{exercise} Find AVGrad on the map
# :label: mada-ex-avgrad
#
# Starting from the update at the top of this page, find the coefficients
# $(\beta_3, \rho, c, \gamma)$ at which MADA is AVGrad, Adam with $\hat v_t =
# \bar v_t/(1-\beta_2^t)$, $\bar v_t = \frac1t\sum_{i\le t} v_i$. Then check your answer
# numerically with `lockstep_difference`, and check that a point next to it is *not* AVGrad.
# ```

# %% [markdown] tags=["solution"]
# ````{solution-start} mada-ex-avgrad
# :class: dropdown
# ````

# %% [markdown] tags=["solution"]
# AVGrad uses Adam's plain second moment, so $c = 1$ ($\tilde g_t^2 = \hat g_t^2$) and
# $\beta_3 = 0$ ($\hat g_t = g_t$, no $n_t$ term); it takes a ratio step, so $\gamma = 1$; and its
# denominator is the average alone, so $\rho = 0$. That is `SPECIAL_POINTS["AVGrad"]`. A
# neighbour, $\rho = 0.1$, mixes in 10% of $v_t$ and drifts away from AVGrad at once:

# %% tags=["solution"]
print(SPECIAL_POINTS["AVGrad"][0])
drift = lockstep_difference(lab_model, "AVGrad", next_token_loss, batches[:20])
print("rho = 0  :", "< 1e-10 (round-off)" if drift < 1e-10 else f"{drift:.0e}")
neighbour = {**SPECIAL_POINTS["AVGrad"][0], "rho": 0.1}
drift = lockstep_difference(
    lab_model, "AVGrad", next_token_loss, batches[:20], at=neighbour
)
print(f"rho = 0.1: {drift:.0e}")

# %% [markdown] tags=["solution"]
# ````{solution-end}
# ````

# %% [markdown]
# ## The claims

# %%
ledger.record("adam-stays-at-plus-one", toy["Adam"].x[tail].mean())
ledger.record("amsgrad-reaches-minus-one", toy["AMSGrad"].x[tail].mean())
ledger.record("mada-learns-rho", mada.coefficients["rho"].mean())
ledger.record("mada-reaches-minus-one", mada.x[tail].mean())
ledger.record(
    "mada-regret-below-adam", mada.average_regret[-1] / toy["Adam"].average_regret[-1]
)

# %% tags=["nbval-check-output"]
ledger.report()
