"""D-optimal designs for Plackett-Luce feedback by Frank-Wolfe: Dope and DopeWolfe.

A design π is a distribution over queries (lists of K items); its information is
V(π) = Σ_S π(S) A_S + γI with the θ-free design matrices A_S of
:mod:`reprobook.design.plackett_luce`. The D-optimal design maximizes

    g(π) = log det V(π),

whose gradient coordinates are the gains ∂g/∂π(S) = tr(V⁻¹ A_S). Frank-Wolfe moves
π toward the vertex of the largest gain, π ← (1 - η) π + η e_S, so that
V ← (1 - η) V + η (A_S + γI). The Kiefer-Wolfowitz theorem certifies optimality:
max_S tr(V⁻¹ A_S) ≥ tr(V⁻¹ (V - γI)), with equality exactly at the optimum (for
γ = 0 the bound is d); :attr:`FrankWolfeResult.gap` is the difference.

- :func:`dope` runs Frank-Wolfe over a given set of lists, as the official notebook of
  the paper's Section 6.1 does (arXiv:2412.19396): from the uniform design, with the
  gain of every list (Dope, arXiv:2404.13895) or of ``samples`` random lists per
  iteration (DopeWolfe), a golden-section line search and the notebook's stopping rule.
- :func:`dopewolfe` runs it over *all* K-subsets of N items, the paper's main regime,
  where C(N, K) candidates cannot be listed: the linear maximization looks at ``samples``
  random subsets, and the gains of a subset are read from the memoized N×N matrix
  G = X V⁻¹ Xᵀ, which a rank-K Woodbury update keeps current in O(N²K) per iteration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import brentq

from reprobook.checks import check_count, check_real, finite_array
from reprobook.design.logdet import log_det, woodbury
from reprobook.design.plackett_luce import check_lists, design_factors

STEP_RULES = ("golden", "exact", "2/(t+2)")
IMPLEMENTATIONS = ("efficient", "official")
GOLDEN_ROUNDS = 20
GOLDEN = 0.618  # the official code's ratio, rounded as it writes it


@dataclass
class FrankWolfeResult:
    """A Frank-Wolfe run: the design, and one entry per iterate (the start is iterate 0).

    ``weights`` is a vector over the given lists (:func:`dope`) or a map from K-subsets
    (sorted tuples of item indices) to their weights (:func:`dopewolfe`); only subsets
    with positive weight are kept. ``seconds`` is the wall time since the start;
    ``gap`` the Kiefer-Wolfowitz gap of each iterate, where it was computed (NaN elsewhere);
    ``work`` the multiplications counted up to each iterate by the cost model of
    :func:`dope` (the same on every machine, unlike ``seconds``; None for :func:`dopewolfe`,
    which does not count), and ``evaluations`` how many times the official implementation
    evaluated the objective (0 for the efficient one).
    """

    weights: np.ndarray | dict[tuple[int, ...], float]
    objective: np.ndarray
    seconds: np.ndarray
    steps: np.ndarray
    gap: np.ndarray
    work: np.ndarray | None = None
    evaluations: int = 0
    memo: np.ndarray | None = None  # dopewolfe: X V⁻¹ Xᵀ as its Woodbury updates carried it to the end

    @property
    def iterations(self) -> int:
        return len(self.steps)

    @property
    def multiplications(self) -> int:
        """The multiplications of the whole run (0 where the run does not count them)."""
        return 0 if self.work is None else int(self.work[-1])


def _check_step_rule(step: str) -> str:
    if step not in STEP_RULES:
        raise ValueError(f"step must be one of {STEP_RULES}, got {step!r}")
    return step


def exact_step(mu: np.ndarray, zero_multiplicity: int = 0) -> float:
    """The η in [0, 1) that maximizes log det((1 - η) V + η A) - log det V.

    With μ the eigenvalues of V⁻¹A (the non-zero ones, plus ``zero_multiplicity`` zeros),
    the objective along the segment is φ(η) = m log(1 - η) + Σ_l log(1 - η + η μ_l): concave,
    so the maximizer is the root of φ' when φ'(0) = Σ μ_l - d > 0, else 0.
    """

    def slope(eta):
        return -zero_multiplicity / (1 - eta) + float(np.sum((mu - 1) / (1 - eta + eta * mu)))

    if slope(0.0) <= 0:
        return 0.0
    upper = 1 - 1e-12
    if slope(upper) >= 0:
        return upper
    return brentq(slope, 0.0, upper, xtol=1e-14)


def golden_section_step(value: Callable[[float], float]) -> float:
    """The official notebook's line search for the maximizer of ``value`` on [0, 1].

    Each of its 20 rounds evaluates ``value`` at two fresh interior points of the bracket and
    keeps the 0.618 part around the larger: 40 evaluations, a final bracket of width
    0.618^20 = 6.6e-5, whose middle is the step. (The official code also evaluates both ends
    of [0, 1] first and the new design after the step; :func:`dope`'s official implementation
    counts those evaluations too.)
    """
    left, right = 0.0, 1.0
    for _ in range(GOLDEN_ROUNDS):
        upper = left + GOLDEN * (right - left)
        lower = right - GOLDEN * (right - left)
        if value(upper) > value(lower):
            left = lower
        else:
            right = upper
    return (left + right) / 2


def _segment_eigenvalues(v_factor, a_new: np.ndarray) -> np.ndarray:
    """Eigenvalues of V⁻¹ A_new from V's Cholesky factor: those of L⁻¹ A_new L⁻ᵀ."""
    half = solve_triangular(v_factor[0], a_new, lower=True)
    return np.linalg.eigvalsh(solve_triangular(v_factor[0], half.T, lower=True))


def dope(
    lists,
    *,
    samples: int | None = None,
    step: str = "golden",
    implementation: str = "efficient",
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    gamma: float = 1e-6,
    rng: np.random.Generator | None = None,
    track_gap: bool = False,
) -> FrankWolfeResult:
    """The D-optimal design over the given ``lists`` (shape ``(L, K, d)``) by Frank-Wolfe.

    ``samples=None`` computes the gain of every list at every iteration (Dope); an integer
    R computes it for R lists drawn without replacement (DopeWolfe; the paper's Section 6.1
    takes R = L // 10). The run starts from the uniform design and stops after
    ``max_iterations`` iterations or, as the official notebook does, when the objective
    rose by less than ``tolerance`` in the last iteration (Dope) or over the last L/R
    iterations, after at least 2L/R (DopeWolfe).

    ``implementation`` changes the cost, not the result (up to round-off):

    - ``"official"`` prices the steps as the official notebook does: each gain as the
      trace of a d×d product V⁻¹A_i, O(L d³) per iteration, and each of the line search's
      objective values by rebuilding Σ_i π_i A_i, O(L d²);
    - ``"efficient"`` computes every gain as Σ_k ‖b_k‖²_{V⁻¹} over the factor A_i = B_i B_iᵀ,
      O(L K d²), and a line-search value from d×d matrices alone.

    The result counts these multiplications: per gain d³ (official) or K d² (efficient);
    per evaluation of the objective L d² + d³ (official: rebuilding Σ_i π_i A_i and
    factoring it) or, once per iteration, d³ for the line search (efficient). The official
    implementation evaluates the objective where the official code does, and counts each
    call: once for the gradient, at both ends of the segment (values the code never uses),
    40 times in the line search and once at the new design, 44 times per iteration.
    """
    lists = check_lists(lists)
    n_lists, k, d = lists.shape
    step = _check_step_rule(step)
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if samples is not None:
        samples = check_count("samples", samples)
        if samples > n_lists:
            raise ValueError(f"samples must be at most the number of lists ({n_lists}), got {samples}")
    max_iterations = check_count("max_iterations", max_iterations)
    tolerance = check_real("tolerance", tolerance, 0.0)
    gamma = check_real("gamma", gamma, 0.0, open_lower=True)
    rng = np.random.default_rng(0) if rng is None else rng
    official = implementation == "official"

    factors = design_factors(lists)
    matrices = factors @ factors.transpose(0, 2, 1)
    weights = np.full(n_lists, 1.0 / n_lists)
    information = matrices.mean(axis=0)  # Σ π_i A_i, without the ridge
    ridge = gamma * np.eye(d)
    window = 1 if samples is None else max(1, n_lists // samples)
    evaluations = 0

    def rebuilt(pi: np.ndarray) -> np.ndarray:
        """The official code's V(π): Σ_i π_i A_i + γI rebuilt from the weights (a counted evaluation)."""
        nonlocal evaluations
        evaluations += 1
        return np.einsum("i,ide->de", pi, matrices) + ridge

    start = time.perf_counter()
    objective, seconds, steps, gaps = [log_det(information + ridge)], [0.0], [], []
    work = [0]
    for t in range(1, max_iterations + 1):
        multiplications, evaluated_before = 0, evaluations
        v = information + ridge
        factor = cho_factor(v, lower=True)
        candidates = np.arange(n_lists) if samples is None else rng.choice(n_lists, samples, replace=False)
        if official:  # as the official gradient: rebuild V, invert it, trace each product
            inverse = np.linalg.inv(rebuilt(weights))
            gains = np.trace(inverse[None] @ matrices[candidates], axis1=1, axis2=2)
        else:
            gains = _factor_gains(factor, factors[candidates])
        vertex = int(candidates[np.argmax(gains)])
        multiplications += len(candidates) * (d**3 if official else k * d**2)
        gaps.append(_gap(factor, factors, information) if track_gap else np.nan)  # of the iterate before the step

        direction = matrices[vertex] + ridge
        if step == "exact":
            eta = exact_step(_segment_eigenvalues(factor, direction))
            multiplications += d**3
        elif step == "2/(t+2)":
            eta = 2.0 / (t + 2)
        elif official:
            corner = np.zeros(n_lists)
            corner[vertex] = 1.0
            rebuilt(weights), rebuilt(corner)  # the official code evaluates both ends, and never reads them
            eta = golden_section_step(lambda eta: log_det(rebuilt((1 - eta) * weights + eta * corner)))
        else:
            mu = _segment_eigenvalues(factor, direction)
            eta = golden_section_step(lambda eta: float(np.sum(np.log1p(eta * (mu - 1)))))
            multiplications += d**3

        weights *= 1 - eta
        weights[vertex] += eta
        information = (1 - eta) * information + eta * matrices[vertex]
        objective.append(log_det(rebuilt(weights)) if official else log_det(information + ridge))
        seconds.append(time.perf_counter() - start)
        steps.append(eta)
        # each official evaluation rebuilt Σ_i π_i A_i (L d²) and factored it (d³)
        multiplications += (evaluations - evaluated_before) * (n_lists * d**2 + d**3)
        work.append(work[-1] + multiplications)
        if _stop(objective, window, tolerance):
            break
    gaps.append(_gap(cho_factor(information + ridge, lower=True), factors, information) if track_gap else np.nan)
    weights = np.clip(weights, 0.0, None)
    return FrankWolfeResult(
        weights=weights / weights.sum(),
        objective=np.array(objective),
        seconds=np.array(seconds),
        steps=np.array(steps),
        gap=np.array(gaps),
        work=np.array(work),
        evaluations=evaluations,
    )


def _stop(objective: list[float], window: int, tolerance: float) -> bool:
    """The official stopping rule: a rise below ``tolerance`` over the last ``window`` iterations, after 2 windows."""
    iterations = len(objective) - 1
    return iterations >= 2 * window and objective[-1] - objective[-1 - window] < tolerance


def _factor_gains(v_factor, factors: np.ndarray) -> np.ndarray:
    """tr(V⁻¹A_i) = ‖L⁻¹B_i‖²_F for every factor B_i (shape (n, d, K)), from V's Cholesky factor L."""
    n_lists, d, k = factors.shape
    whitened = solve_triangular(v_factor[0], factors.transpose(1, 0, 2).reshape(d, -1), lower=True)
    return np.sum(whitened.reshape(d, n_lists, k) ** 2, axis=(0, 2))


def _gap(factor, factors: np.ndarray, information: np.ndarray) -> float:
    """The Kiefer-Wolfowitz gap max_i tr(V⁻¹A_i) - tr(V⁻¹ Σ π A) over the lists (0 exactly at the optimum)."""
    return float(_factor_gains(factor, factors).max() - np.trace(cho_solve(factor, information)))


def random_subsets(n_items: int, k: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` K-subsets of range(n_items) drawn uniformly (with replacement between rows), sorted rows."""
    keys = rng.random((count, n_items))
    return np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)


def all_subsets(n_items: int, k: int) -> np.ndarray:
    """Every K-subset of range(n_items) as rows of sorted indices, shape (C(N, K), K)."""
    count = math.comb(n_items, k)
    return np.fromiter(combinations(range(n_items), k), dtype=np.dtype((np.int64, k)), count=count)


def subset_gains(memo: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """tr(V⁻¹ A_S) of every subset from G = X V⁻¹ Xᵀ: K Σ_{j∈S} G_jj - Σ_{j,j'∈S} G_jj'."""
    k = subsets.shape[1]
    block = memo[subsets[:, :, None], subsets[:, None, :]]
    return k * np.trace(block, axis1=1, axis2=2) - block.sum(axis=(1, 2))


def woodbury_update(inverse: np.ndarray, memo: np.ndarray, items: np.ndarray, factor: np.ndarray, eta: float):
    """V⁻¹ and G = X V⁻¹ Xᵀ after V ← (1 - η) V + η B Bᵀ, by the Woodbury identity (rank K, O(N²K)).

    With C = ((1 - η)/η I + BᵀV⁻¹B)⁻¹ and W = X V⁻¹ B, G' = (1 - η)⁻¹ [G - W C Wᵀ].
    """
    new_inverse, projected, core = woodbury(inverse, factor, keep=1 - eta, add=eta)
    weighted = items @ projected
    return new_inverse, (memo - weighted @ core @ weighted.T) / (1 - eta)


def dopewolfe(
    items,
    k: int,
    *,
    samples: int | None,
    iterations: int,
    step: str = "exact",
    start: int | None = None,
    rng: np.random.Generator | None = None,
    track_gap: bool = False,
) -> FrankWolfeResult:
    """The D-optimal design over all K-subsets of ``items`` (shape ``(N, d)``), by randomized Frank-Wolfe.

    Each iteration scores ``samples`` uniformly random K-subsets and moves toward the best
    (DopeWolfe); ``samples=None`` scores all C(N, K) subsets (exact Frank-Wolfe by
    enumeration, the baseline where it fits in memory). The start is the uniform design
    over ``start`` random subsets (default 2d), which must span R^d; no ridge is added.
    ``track_gap`` computes the Kiefer-Wolfowitz gap by enumeration (small C(N, K) only).
    """
    items = finite_array("items", items)
    if items.ndim != 2:
        raise ValueError(f"items must have shape (N, d), got {items.shape}")
    n_items, d = items.shape
    k = check_count("k", k, minimum=2)
    if k > n_items:
        raise ValueError(f"k must be at most the number of items N = {n_items}, got {k}")
    if samples is not None:
        samples = check_count("samples", samples)
    iterations = check_count("iterations", iterations, minimum=0)
    step = _check_step_rule(step)
    start = 2 * d if start is None else check_count("start", start)
    rng = np.random.default_rng(0) if rng is None else rng
    every_subset = all_subsets(n_items, k) if samples is None or track_gap else None

    initial = random_subsets(n_items, k, start, rng)
    factors = design_factors(items[initial])
    v = np.einsum("sdk,sek->de", factors, factors) / start
    if np.linalg.matrix_rank(v) < d:
        raise ValueError(f"the {start} start subsets do not span R^{d}; increase start")
    inverse = cho_solve(cho_factor(v, lower=True), np.eye(d))
    memo = items @ inverse @ items.T
    weights: dict[tuple[int, ...], float] = {}
    for subset in map(tuple, initial.tolist()):
        weights[subset] = weights.get(subset, 0.0) + 1.0 / start

    clock = time.perf_counter()

    def gap() -> float:  # the Kiefer-Wolfowitz gap of the current design, by enumeration
        return float(subset_gains(memo, every_subset).max()) - d if track_gap else np.nan

    objective, seconds, steps, gaps = [log_det(v)], [0.0], [], []
    for t in range(1, iterations + 1):
        candidates = every_subset if samples is None else random_subsets(n_items, k, samples, rng)
        gains = subset_gains(memo, candidates)
        best = candidates[int(np.argmax(gains))]
        gaps.append(gap())  # of the iterate before the step
        factor = design_factors(items[best][None])[0]
        mu = np.linalg.eigvalsh(factor.T @ inverse @ factor)
        if step == "exact":
            eta = exact_step(mu, zero_multiplicity=d - k)
        elif step == "2/(t+2)":
            eta = 2.0 / (t + 2)
        else:
            eta = golden_section_step(lambda eta: (d - k) * math.log1p(-eta) + float(np.sum(np.log1p(eta * (mu - 1)))))
        if eta > 0:
            inverse, memo = woodbury_update(inverse, memo, items, factor, eta)
            v = (1 - eta) * v + eta * factor @ factor.T
            for subset in weights:
                weights[subset] *= 1 - eta
            key = tuple(best.tolist())
            weights[key] = weights.get(key, 0.0) + eta
        objective.append(log_det(v))
        seconds.append(time.perf_counter() - clock)
        steps.append(eta)
    gaps.append(gap())
    return FrankWolfeResult(
        weights=weights,
        objective=np.array(objective),
        seconds=np.array(seconds),
        steps=np.array(steps),
        gap=np.array(gaps),
        memo=memo,
    )


def design_information(items, k: int, weights: dict[tuple[int, ...], float]) -> np.ndarray:
    """V(π) = Σ_S π(S) A_S of a design over K-subsets of ``items``, recomputed from its weights."""
    items = finite_array("items", items)
    subsets = np.array(list(weights), dtype=np.int64).reshape(-1, k)
    factors = design_factors(items[subsets])
    return np.einsum("s,sdk,sek->de", np.array(list(weights.values())), factors, factors)
