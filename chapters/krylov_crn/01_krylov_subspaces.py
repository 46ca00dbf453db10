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
# # The idea: cubic Newton steps inside a Krylov subspace
#
# **Cubic regularized Newton** {cite}`nesterov2006cubic` minimizes a convex $f$ by repeatedly
# minimizing a cubic model of it around the current point:
#
# $$
# s_k = \operatorname*{argmin}_s \; g^\top s + \tfrac12 s^\top H s + \tfrac{M}{3}\|s\|^3,
# \qquad g = \nabla f(x_k),\; H = \nabla^2 f(x_k),\quad x_{k+1} = x_k + s_k .
# $$
#
# (This book writes the cubic term as $\tfrac{M}{3}\|s\|^3$, as the official code does; Nesterov and
# Polyak write $\tfrac{M}{6}\|s\|^3$, which only rescales $M$.) Its minimizer solves
# $(H + rI)s = -g$ with $r = M\|s\|$, a *secular equation* in one unknown $r$
# {cite}`cartis2011arc`. In $d$ dimensions that costs a factorization or many conjugate-gradient
# solves per iteration.
#
# **Krylov CRN** {cite}`jiang2024krylov` restricts the step to the Krylov subspace
# $\mathcal K_m(H, g) = \operatorname{span}\{g, Hg, \dots, H^{m-1}g\}$. The Lanczos process
# {cite}`saad2011eigenvalue` builds an orthonormal basis $V \in \mathbb R^{d\times m}$ of it with $m$
# Hessian-vector products, and the Hessian seen through it is tridiagonal,
# $V^\top H V = T$. The subproblem becomes $m$-dimensional,
#
# $$
# \min_{z\in\mathbb R^m} \; \|g\|\, e_1^\top z + \tfrac12 z^\top T z + \tfrac{M}{3}\|z\|^3,\qquad s = Vz,
# $$
#
# and costs $O(md)$ per iteration. The paper proves a convergence rate $O(1/(mk) + 1/k^2)$ that
# does not depend on $d$, and that the method recovers full CRN under spectral conditions. This
# notebook shows the mechanism on quadratics, where everything can be checked exactly.

# %% tags=["parameters"]
profile = "book"
seed = 0
dimension = 1000
eigenvalues = [0.1, 1.0, 10.0]
krylov_dimension = 5
iterations = 15
lanczos_steps = 40

# %%
import matplotlib.pyplot as plt
import numpy as np

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.plotting import book_style
from reprobook.secondorder import (
    QuadraticOracle,
    crn,
    krylov_crn,
    lanczos,
    quadratic_with_spectrum,
)

run = start_notebook("01_krylov_subspaces", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_krylov_subspaces", profile=run.profile)
rng = np.random.default_rng(seed)

# %% [markdown]
# ## Lanczos stops when the Hessian has few distinct eigenvalues
#
# If $H$ has only $p$ distinct eigenvalues, then $g, Hg, \dots$ span at most $p$ dimensions whatever
# $d$ is: a polynomial of degree $p$ vanishes on the whole spectrum. Lanczos notices and stops
# after $p$ steps on an *invariant subspace*, which then contains $H^{-1}g$ and every
# $(H + rI)^{-1}g$, hence the exact cubic Newton step.

# %%
for d in (dimension // 10, dimension, 10 * dimension, 100 * dimension):
    H = quadratic_with_spectrum(d, eigenvalues, seed=seed)
    start = np.random.default_rng(seed).normal(size=d)
    result = lanczos(lambda v: H @ v, start, m=krylov_dimension + 5)
    ritz = np.array2string(result.ritz_values(), precision=4)
    print(
        f"d = {d:7d}: Lanczos stopped after {result.steps} steps "
        f"(invariant: {result.invariant}); Ritz values {ritz}"
    )

# %% [markdown]
# ## Krylov CRN coincides with CRN
#
# On the quadratic $f(x) = \tfrac12 x^\top H x - c^\top x$ with these three eigenvalues and
# $m = 5 \ge 3$, each Krylov CRN step is the full CRN step, so the two methods, started at the same
# point with the same adaptive $M$, follow the same iterates.

# %%
H = quadratic_with_spectrum(dimension, eigenvalues, seed=seed)
c = rng.normal(size=dimension)
oracle = QuadraticOracle(H, c)
x0 = np.zeros(dimension)
full = crn(oracle, x0, iterations=iterations, tolerance=0.0, solver="dense")
subspace = krylov_crn(
    oracle, x0, m=krylov_dimension, iterations=iterations, tolerance=0.0
)
steps = min(len(full.objective), len(subspace.objective))
objective_difference = np.abs(full.objective[:steps] - subspace.objective[:steps]).max()
iterate_difference = np.linalg.norm(full.x - subspace.x) / np.linalg.norm(full.x)
print(
    f"iterations run: CRN {len(full.objective) - 1}, "
    f"Krylov CRN {len(subspace.objective) - 1}"
)
print(f"largest difference of f(x_k): {objective_difference:.1e}")
print(f"relative difference of the last iterates: {iterate_difference:.1e}")
print(f"Hessian-vector products: CRN {full.hvps[-1]}, Krylov CRN {subspace.hvps[-1]}")

# %%
f_star = oracle.value(np.linalg.solve(H, c))
fig, ax = plt.subplots(figsize=(7, 4))
ax.semilogy(full.iterations, full.gap(f_star), "o-", label="CRN (dense subproblem)")
ax.semilogy(
    subspace.iterations,
    subspace.gap(f_star),
    "x--",
    label=f"Krylov CRN, m = {krylov_dimension}",
)
ax.set_xlabel("iteration k")
ax.set_ylabel(r"$f(x_k) - f^*$")
ax.set_title(f"quadratic, d = {dimension}, {len(eigenvalues)} distinct eigenvalues")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## With a full spectrum, Lanczos finds the extremes first
#
# With $d$ distinct eigenvalues the Krylov subspace never becomes invariant, but the Ritz values
# (eigenvalues of $T$) approach the extreme eigenvalues of $H$ within a few steps, while the middle
# of the spectrum takes much longer. A cubic Newton step needs the Hessian mostly along the
# gradient and the directions of large curvature, which a small Krylov subspace captures. Without
# reorthogonalization the basis loses orthogonality once a Ritz value has converged: the
# library offers full reorthogonalization for large $m$.

# %%
spectrum = np.geomspace(1e-3, 1.0, dimension)
H_full = quadratic_with_spectrum(
    dimension, spectrum, counts=np.ones(dimension, dtype=int), seed=seed
)
start = rng.normal(size=dimension)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for k in range(1, lanczos_steps + 1, 3):
    ritz = lanczos(lambda v: H_full @ v, start, m=k, reorthogonalize=True).ritz_values()
    axes[0].semilogy(np.full(ritz.shape, k), ritz, "k.", ms=3)
axes[0].axhline(spectrum.max(), color="C1", lw=1, label="largest eigenvalue")
axes[0].axhline(spectrum.min(), color="C2", lw=1, label="smallest eigenvalue")
axes[0].set_xlabel("Lanczos steps m")
axes[0].set_ylabel("Ritz values")
axes[0].set_title("Ritz values converge from the extremes")
axes[0].legend()
for reorthogonalize, style in ((False, "-"), (True, "--")):
    result = lanczos(
        lambda v: H_full @ v, start, m=lanczos_steps, reorthogonalize=reorthogonalize
    )
    V = np.asarray(result.basis)
    errors = [
        np.abs(V[:, :k].T @ V[:, :k] - np.eye(k)).max()
        for k in range(1, result.steps + 1)
    ]
    axes[1].semilogy(
        range(1, result.steps + 1),
        np.maximum(errors, 1e-17),
        style,
        label="full reorthogonalization"
        if reorthogonalize
        else "three-term recurrence only",
    )
axes[1].set_xlabel("Lanczos steps m")
axes[1].set_ylabel(r"$\max |V^\top V - I|$")
axes[1].set_title("orthogonality of the Lanczos basis")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The sanity check
#
# **matches-crn-few-eigenvalues**: the larger of the two differences printed above, the largest
# difference of the objective values along the run and the relative difference of the final
# iterates. It holds by an identity of exact arithmetic (the Krylov subspace is invariant and
# contains every CRN step), so it cannot fail in substance: the ledger lists it as a *sanity
# check* of the code, apart from the reproduction claims. Its value is round-off, which the
# ledger prints as a bound.

# %%
ledger.record(
    "matches-crn-few-eigenvalues", max(objective_difference, iterate_difference)
)

# %% tags=["nbval-check-output"]
ledger.report()
