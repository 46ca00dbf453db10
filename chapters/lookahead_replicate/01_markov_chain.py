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
# # The target network in function space, on a Markov chain
#
# Value learning bootstraps: the online values $v_\theta$ are regressed on
# $r + \gamma v_w(s')$, where $w$ are the parameters of a **target network**. The usual rule
# keeps the two networks equal in *parameter space*: every so often, $w \leftarrow \theta$.
# Lookahead-Replicate (LR) {cite}`asadi2024lookahead` asks only that they be equal in
# *function space*, $v_\theta = v_w$, and reaches it by gradient descent. With the state
# distribution $d$ and linear values $v_\theta = \Phi\theta$, it alternates two losses:
#
# $$
# H(\theta, w) = \tfrac12\, \mathbb E_{s\sim d}\big[(r(s) + \gamma\, \mathbb E[v_w(s')\mid s]
#   - v_\theta(s))^2\big], \qquad
# G(\theta, w) = \tfrac12\, \mathbb E_{s\sim d}\big[(v_\theta(s) - v_w(s))^2\big].
# $$
#
# **Lookahead**: $K_L$ steps $\theta \leftarrow \theta - \alpha \nabla_\theta H(\theta, w)$,
# the target fixed. **Replicate**: $K_R$ steps $w \leftarrow w - \beta \nabla_w G(\theta, w)$,
# the online parameters fixed. The hard copy $w \leftarrow \theta$ is the exact minimizer of
# $\lVert w - \theta\rVert^2$, a special case; with $K_L = 1$ it is semi-gradient TD(0).
#
# This notebook runs every update in expectation, exactly (`reprobook.rl.chains`): a
# three-state chain with more features than states, where LR's fixed point can be seen, then
# Baird's star {cite}`baird1995residual`, where bootstrapping diverges.

# %% tags=["parameters"]
profile = "book"
seed = 0
states = 3
features = 4
gamma = 0.9
alpha = 1.5
beta = 1.5
k_lookahead = 20
k_replicate = 20
iterations = 2000
baird_iterations = 1000
baird_alphas = [0.01, 0.1]
baird_betas = [0.05, 0.3]
baird_steps = [1, 5, 20, 50]

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.linalg
import seaborn as sns

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.plotting import book_style
from reprobook.rl.chains import (
    BAIRD_START,
    TargetRule,
    baird_chain,
    cyclic_chain,
    lookahead_replicate,
    td_zero,
)

run = start_notebook("01_markov_chain", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_markov_chain", profile=run.profile)

# %% [markdown]
# ## A chain with more features than states
#
# The chain moves around a cycle with probability 0.9 and jumps uniformly otherwise; leaving
# the last state pays 1. Its features are standard normal with `features` > `states`
# columns, so $\Phi$ has a null space: parameters that differ by a null vector give the same
# values. The online and target parameters start at independent random points.
#
# Both losses are quadratics whose Hessian is $\Phi^\top D \Phi$ ($D$ the diagonal of $d$),
# so a gradient step on either cannot diverge when its size is below $2/L$, $L$ the largest
# eigenvalue of $\Phi^\top D\Phi$. The step sizes are therefore given in units of $1/L$:
# `alpha` = `beta` = 1.5 means steps of $1.5/L$, whatever the random features' scale. (Fixed
# steps of 0.5 exceed $2/L$ on some seeds, where the runs diverge.)

# %%
chain = cyclic_chain(states=states, features=features, gamma=gamma, seed=seed)
rng = np.random.default_rng(seed + 1)
theta0, w0 = rng.standard_normal(features), rng.standard_normal(features)
curvature = float(
    np.linalg.eigvalsh(chain.features.T @ np.diag(chain.weights) @ chain.features).max()
)
step_theta, step_w = alpha / curvature, beta / curvature
print(
    f"L = {curvature:.3f}: steps of {step_theta:.3f} (Lookahead), "
    f"{step_w:.3f} (Replicate)"
)
lr_rule = TargetRule(
    "gradient",
    k_lookahead=k_lookahead,
    k_replicate=k_replicate,
    alpha=step_theta,
    beta=step_w,
)
copy_rule = TargetRule("copy", k_lookahead=k_lookahead, alpha=step_theta)
runs = {
    "Lookahead-Replicate": lookahead_replicate(chain, theta0, w0, lr_rule, iterations),
    "hard copy": lookahead_replicate(chain, theta0, w0, copy_rule, iterations),
}


def bound(value, floor=1e-10):
    """A round-off-level value as the bound every CPU agrees on."""
    return f"< {floor:.0e}" if value < floor else f"{value:.2e}"


summary = pd.DataFrame(
    {
        name: {
            "|v_theta - v|_inf": bound(r.value_error(chain)[-1]),
            "|v_theta - v_w|_inf": bound(r.value_gap(chain)[-1]),
            "||theta - w||": f"{r.parameter_gap()[-1]:.3f}",
        }
        for name, r in runs.items()
    }
).T
print(f"true values v = {np.round(chain.true_values(), 4)}")
print_table(summary)

# %% [markdown]
# Both rules reach the true values. LR's target reproduces the online values to round-off,
# yet its parameters stay apart; the hard copy's are equal by construction. Where LR's
# parameters end is no accident, and not LR's doing: every gradient of $H$ and $G$ lies in the
# row space of $\Phi$, so the part of $\theta - w$ in $\Phi$'s null space never changes, and
# once the values agree it is all that is left of the difference. The paper's $\theta \ne w$
# is therefore the null-space part of the random start $\theta_0 - w_0$: its size depends on
# the draw (the last line below counts it over 40 draws of the chain and the start), and from
# $w_0 = \theta_0$ it is 0.

# %%
null = scipy.linalg.null_space(chain.features)
start_null_part = null @ (null.T @ (theta0 - w0))
kept = float(np.linalg.norm(start_null_part))
lr = runs["Lookahead-Replicate"]
null_part_error = float(np.linalg.norm(lr.theta[-1] - lr.w[-1] - start_null_part))
print(f"null-space part of theta_0 - w_0: {kept:.3f}")
print(f"||theta - w|| after LR:          {lr.parameter_gap()[-1]:.3f}")
print(f"||(theta - w) - that part||:     {bound(null_part_error, 1e-9)}")


def start_null_norm(draw):
    """The null-space part of theta_0 - w_0 for another draw of chain and start."""
    other = cyclic_chain(states=states, features=features, gamma=gamma, seed=draw)
    start = np.random.default_rng(draw + 1).standard_normal((2, features))
    basis = scipy.linalg.null_space(other.features)
    return np.linalg.norm(basis.T @ (start[0] - start[1]))


small = sum(start_null_norm(draw) < 0.5 for draw in range(40))
print(f"draws 0-39 whose null-space part is below 0.5: {small} of 40")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for name, r in runs.items():
    axes[0].semilogy(r.value_error(chain), label=f"{name}: $|v_\\theta - v|$")
axes[0].semilogy(lr.value_gap(chain) + 1e-16, ls="--", label="LR: $|v_\\theta - v_w|$")
axes[0].set(xlabel="outer iteration", ylabel="max over states", ylim=(1e-16, None))
axes[0].legend(fontsize=8)
for name, r in runs.items():
    axes[1].plot(r.parameter_gap(), label=name)
axes[1].axhline(kept, color="gray", ls=":", label="null-space part at start")
axes[1].set(xlabel="outer iteration", ylabel=r"$\|\theta - w\|$")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The special cases
#
# With $K_L = 1$ and the hard copy, one outer step of LR is one step of expected
# semi-gradient TD(0), $\theta \leftarrow \theta + \alpha \Phi^\top D (r + \gamma P \Phi\theta
# - \Phi\theta)$, written separately in `td_zero`. And a Replicate step below $2/L$ is a
# gradient step on a convex quadratic: $G$ must fall at every step.

# %%
td_rule = TargetRule("copy", k_lookahead=1, alpha=step_theta)
as_lr = lookahead_replicate(chain, theta0, theta0, td_rule, iterations).theta
as_td = td_zero(chain, theta0, step_theta, iterations)
# relative to the iterate's size: at steps near 2/L, TD(0) can diverge, and then
# so does LR, step by step, with round-off growing in proportion
scale = np.maximum(1.0, np.abs(as_td).max(axis=1))
td_difference = float((np.abs(as_lr - as_td).max(axis=1) / scale).max())
print(
    "largest relative difference, LR(K_L = 1, copy) against TD(0):",
    bound(td_difference, 1e-13),
)

increases = 0
theta, w = theta0.copy(), w0.copy()
for _ in range(iterations):
    for _ in range(k_lookahead):
        theta = theta - step_theta * chain.lookahead_gradient(theta, w)
    for _ in range(k_replicate):
        before = chain.replicate_loss(theta, w)
        w = w - step_w * chain.replicate_gradient(theta, w)
        # a rise above round-off (G itself ends near 1e-28, where round-off moves it)
        increases += chain.replicate_loss(theta, w) - before > 1e-20
print(f"Replicate step {step_w:.3f} against 2 / L = {2 / curvature:.3f}")
print(f"Replicate steps that raised G: {increases} of {iterations * k_replicate}")

# %% [markdown]
# ## Baird's star: when does bootstrapping converge?
#
# Baird's counterexample (Example 11.1 of {cite}`sutton2018reinforcement`): seven states, eight
# features, all rewards 0, the target policy always moving to the seventh state, and the states
# weighed uniformly, as a behaviour policy visits them. Expected semi-gradient TD diverges
# although every true value is 0. Each cell below is one setting, run for `baird_iterations`
# outer steps from the textbook's start. Each number is $\log_{10}$ of the final error
# $\max_s |v_\theta(s)|$, which starts at 12, a log of 1: light cells converged, dark ones
# diverged.

# %%
star = baird_chain()
settings = [("copy", 1, 1.0)] + [
    ("gradient", k_r, b) for b in baird_betas for k_r in baird_steps
]
rows = []
for a in baird_alphas:
    for k_l in baird_steps:
        for rule, k_r, b in settings:
            target = TargetRule(rule, k_l, k_r, a, b)
            r = lookahead_replicate(
                star, BAIRD_START, BAIRD_START, target, baird_iterations
            )
            rows.append(
                {
                    "alpha": a,
                    "K_L": k_l,
                    "target": "hard copy"
                    if rule == "copy"
                    else f"LR: beta {b}, K_R {k_r}",
                    "error": r.value_error(star)[-1],
                }
            )
baird = pd.DataFrame(rows)
baird["converged"] = baird["error"] < 1e-3
baird["log10 error"] = np.log10(baird["error"] + 1e-300).clip(-12, 40).round(0)

order = list(dict.fromkeys(baird["target"]))
fig, axes = plt.subplots(
    1, len(baird_alphas), figsize=(5.4 * len(baird_alphas), 4.2), squeeze=False
)
for ax, a in zip(axes[0], baird_alphas):
    grid = baird[baird["alpha"] == a].pivot(
        index="target", columns="K_L", values="log10 error"
    )
    sns.heatmap(
        grid.reindex(order),
        cmap="magma_r",
        vmin=-12,
        vmax=40,
        annot=True,
        fmt=".0f",
        cbar=False,
        ax=ax,
    )
    ax.set(title=f"alpha = {a}: log10 of the final error", ylabel="")
fig.tight_layout()
plt.show()

converged = baird[baird["converged"]]
print_table(
    converged[["alpha", "K_L", "target"]].reset_index(drop=True)
    if len(converged)
    else pd.DataFrame({"converged": ["none"]})
)

# %% [markdown]
# At the `book` profile, TD (one Lookahead step, hard copy) diverges at both step sizes, as
# it must, and so does every setting at the smaller step size. Long Lookahead phases at the
# larger one turn each outer step into an almost exact regression on the bootstrapped values,
# and then the target's rule decides: the hard copy converges, and so does LR when its
# Replicate phase is thorough (many steps, or larger ones), while an LR target that follows
# only loosely ($K_R = 1$) diverges where the copy converges. Replicating in function space
# is no cure for off-policy divergence by itself; it inherits the stability of the copy it
# approximates.

# %% [markdown]
# ## Exercise
#
# ```{exercise} LR with an exact Replicate step is TD
# :label: lr-ex-td
#
# Take $K_L = 1$ and replace the Replicate phase by its exact solution. Show that if $\Phi$
# has full column rank, the exact minimizer of $G(\theta, \cdot)$ is $w = \theta$, so that
# LR is semi-gradient TD(0) step by step. What are the minimizers when $\Phi$ has a null
# space, and why do they all give the same next Lookahead step?
# ```

# %% [markdown] tags=["solution"]
# ````{solution-start} lr-ex-td
# :class: dropdown
# ````

# %% [markdown] tags=["solution"]
# $G(\theta, w) = \tfrac12 (\theta - w)^\top \Phi^\top D \Phi (\theta - w)$ is a convex
# quadratic in $w$, zero exactly when $\Phi(\theta - w) = 0$ on the states $d$ weighs. With full
# column rank (and $d > 0$), $\Phi^\top D\Phi$ is positive definite and $w = \theta$ is the
# only minimizer: LR's step is then $\theta \leftarrow \theta - \alpha\nabla_\theta H(\theta,
# \theta)$, TD(0). With a null space, every $w = \theta + n$ with $\Phi n = 0$ minimizes $G$;
# the next Lookahead step reads $w$ only through $v_w = \Phi w = \Phi\theta$, so it is the
# same for all of them. The check below runs both: LR with $K_R$ Replicate steps large enough
# to converge, against TD, on the chain above.

# %% tags=["solution"]
exact = TargetRule("gradient", k_lookahead=1, k_replicate=400, alpha=0.1, beta=1.0)
lr_exact = lookahead_replicate(chain, theta0, theta0, exact, 50)
td_steps = td_zero(chain, theta0, 0.1, 50)
value_difference = np.abs((lr_exact.theta - td_steps) @ chain.features.T).max()
print(f"largest value difference: {bound(value_difference, 1e-8)}")

# %% [markdown] tags=["solution"]
# ````{solution-end}
# ````

# %% [markdown]
# ## The claims

# %%
ledger.record(
    "lr-values-match", max(lr.value_error(chain)[-1], lr.value_gap(chain)[-1])
)
ledger.record("lr-parameters-differ", null_part_error)
ledger.record("hard-copy-equal", runs["hard copy"].parameter_gap()[-1])
ledger.record("td-special-case", td_difference)
ledger.record("replicate-descends", increases)

# %% tags=["nbval-check-output"]
ledger.report()
