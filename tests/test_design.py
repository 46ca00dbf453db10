"""The Plackett-Luce model, Frank-Wolfe designs (Dope, DopeWolfe), the feature loader and the experiments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from reprobook.design import (
    FEATURE_FILES,
    all_subsets,
    design_factors,
    design_information,
    design_matrices,
    dope,
    dopewolfe,
    exact_step,
    fisher_information,
    fit_mle,
    golden_section_step,
    gradient,
    hessian,
    load_features,
    log_likelihood,
    loglog_slope,
    pair_error_rate,
    pairwise_design_matrices,
    random_subsets,
    ranking_loss,
    round_design,
    sample_rankings,
    section61_experiment,
    subset_gains,
    universe_losses,
    woodbury_update,
)
from reprobook.design.data import synthetic_features


def lists_and_rankings(n=40, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    lists = rng.standard_normal((n, k, d))
    theta = rng.standard_normal(d)
    return lists, sample_rankings(lists, theta, rng), theta


def probability(features, ranking, theta):
    """P(σ | z; θ) by its definition, one stage at a time."""
    utilities = list(features[list(ranking)] @ theta)
    value = 1.0
    for k in range(len(utilities)):
        value *= math.exp(utilities[k]) / sum(math.exp(u) for u in utilities[k:])
    return value


def test_sampler_frequencies_match_the_plackett_luce_probabilities():
    rng = np.random.default_rng(7)
    features = rng.standard_normal((3, 2))
    theta = np.array([1.0, -0.5])
    draws = 60_000
    rankings = sample_rankings(np.broadcast_to(features, (draws, 3, 2)), theta, rng)
    orders = list(itertools.permutations(range(3)))
    observed = [np.sum(np.all(rankings == order, axis=1)) for order in orders]
    expected = [draws * probability(features, order, theta) for order in orders]
    assert math.isclose(sum(expected), draws)
    assert stats.chisquare(observed, expected).pvalue > 0.01


def test_log_likelihood_matches_the_definition():
    lists, rankings, theta = lists_and_rankings(n=5)
    direct = sum(math.log(probability(z, r, theta)) for z, r in zip(lists, rankings))
    assert log_likelihood(lists, rankings, theta) == pytest.approx(direct, rel=1e-12)


def test_gradient_and_hessian_match_finite_differences():
    lists, rankings, theta = lists_and_rankings()
    h = 1e-6
    basis = np.eye(len(theta))
    numeric_gradient = [
        (log_likelihood(lists, rankings, theta + h * e) - log_likelihood(lists, rankings, theta - h * e)) / (2 * h)
        for e in basis
    ]
    assert np.allclose(gradient(lists, rankings, theta), numeric_gradient, rtol=1e-6, atol=1e-6)
    numeric_hessian = np.array(
        [(gradient(lists, rankings, theta + h * e) - gradient(lists, rankings, theta - h * e)) / (2 * h) for e in basis]
    )
    assert np.allclose(hessian(lists, rankings, theta), numeric_hessian, atol=1e-6)


def test_fisher_identity_score_outer_product_equals_expected_negative_hessian():
    rng = np.random.default_rng(3)
    features, theta = rng.standard_normal((4, 3)), rng.standard_normal(3)
    orders = np.array(list(itertools.permutations(range(4))))
    weights = np.array([probability(features, order, theta) for order in orders])
    expected_curvature = sum(w * -hessian(features[None], order[None], theta) for w, order in zip(weights, orders))
    assert np.allclose(fisher_information(features, theta), expected_curvature, atol=1e-12)
    # and it is bounded below by a multiple of the theta-free design matrix
    assert np.linalg.eigvalsh(fisher_information(features, theta)).min() > -1e-12


def test_design_matrix_is_k_times_the_scatter_and_has_rank_k_minus_1():
    lists, _, _ = lists_and_rankings(n=10, k=4, d=6)
    assert np.allclose(design_matrices(lists), pairwise_design_matrices(lists), atol=1e-12)
    assert all(np.linalg.matrix_rank(a) == 3 for a in design_matrices(lists))


def test_mle_recovers_theta_and_zeroes_the_penalized_gradient():
    rng = np.random.default_rng(11)
    lists = rng.standard_normal((4000, 3, 3))
    theta = np.array([1.0, -1.0, 0.5])
    rankings = sample_rankings(lists, theta, rng)
    estimate = fit_mle(lists, rankings)
    assert np.linalg.norm(estimate - theta) < 0.1
    stationarity = gradient(lists, rankings, estimate) / len(lists) - 1e-3 * estimate
    assert np.linalg.norm(stationarity) < 1e-8


def test_ranking_loss_counts_misordered_pairs():
    rng = np.random.default_rng(2)
    lists = rng.standard_normal((30, 4, 3))
    theta_true, theta_hat = rng.standard_normal(3), rng.standard_normal(3)
    count = 0
    for z in lists:
        for j, jj in itertools.combinations(range(4), 2):
            count += np.sign((z[j] - z[jj]) @ theta_true) != np.sign((z[j] - z[jj]) @ theta_hat)
    assert ranking_loss(lists, theta_true, theta_hat) == pytest.approx(count / 30)
    assert ranking_loss(lists, theta_true, theta_true) == 0
    items = lists[0]
    assert pair_error_rate(items, theta_true, -theta_true) == 1.0


def test_woodbury_update_matches_recomputation():
    rng = np.random.default_rng(5)
    items = rng.standard_normal((30, 5))
    v = np.eye(5) + 0.1 * items[:8].T @ items[:8]
    inverse, memo = np.linalg.inv(v), items @ np.linalg.inv(v) @ items.T
    for step in range(20):
        subset = random_subsets(30, 3, 1, rng)[0]
        factor = design_factors(items[subset][None])[0]
        eta = 1 / (step + 3)
        inverse, memo = woodbury_update(inverse, memo, items, factor, eta)
        v = (1 - eta) * v + eta * factor @ factor.T
    assert np.allclose(inverse, np.linalg.inv(v), rtol=1e-10, atol=1e-10)
    assert np.allclose(memo, items @ np.linalg.inv(v) @ items.T, rtol=1e-10, atol=1e-10)


def test_subset_gains_are_traces_of_the_design_matrices():
    rng = np.random.default_rng(1)
    items = rng.standard_normal((12, 4))
    v = np.eye(4) + items.T @ items
    subsets = all_subsets(12, 3)
    assert len(subsets) == math.comb(12, 3) and np.all(np.diff(subsets, axis=1) > 0)
    direct = np.trace(np.linalg.solve(v, design_matrices(items[subsets])), axis1=1, axis2=2)
    assert np.allclose(subset_gains(items @ np.linalg.inv(v) @ items.T, subsets), direct)


def test_random_subsets_are_uniform_k_subsets():
    subsets = random_subsets(6, 2, 30_000, np.random.default_rng(0))
    assert np.all(subsets[:, 0] < subsets[:, 1])
    counts = [np.sum(np.all(subsets == pair, axis=1)) for pair in itertools.combinations(range(6), 2)]
    assert stats.chisquare(counts).pvalue > 0.01


def test_exact_step_maximizes_the_log_det_on_the_segment():
    rng = np.random.default_rng(4)
    root = rng.standard_normal((4, 4))
    v = root @ root.T + np.eye(4)
    b = rng.standard_normal((4, 2))
    a = b @ b.T

    def value(eta):
        return np.linalg.slogdet((1 - eta) * v + eta * a)[1]

    mu = np.linalg.eigvalsh(b.T @ np.linalg.solve(v, b))
    eta = exact_step(mu, zero_multiplicity=2)
    grid = np.linspace(0, 0.999, 20_000)
    assert value(eta) >= max(value(g) for g in grid) - 1e-9
    assert golden_section_step(value) == pytest.approx(eta, abs=1e-3)
    assert exact_step(np.zeros(3), zero_multiplicity=1) == 0.0


def test_frank_wolfe_with_line_search_never_decreases_the_objective():
    lists, _, _ = lists_and_rankings(n=60, k=3, d=5)
    for samples in (None, 10):
        result = dope(lists, samples=samples, step="exact", max_iterations=40, tolerance=0.0)
        assert np.all(np.diff(result.objective) >= -1e-12)
        # golden section stops on a bracket of width 0.618^20 = 6.6e-5 around the best step,
        # so near the optimum, where the best step is smaller, it can overshoot a little
        golden = dope(lists, samples=samples, step="golden", max_iterations=40, tolerance=0.0)
        assert np.all(np.diff(golden.objective) >= -1e-3)
        assert golden.objective[-1] == pytest.approx(result.objective[-1], abs=0.05)
    items = lists[:, 0]
    for samples in (None, 50):
        result = dopewolfe(items, 3, samples=samples, iterations=40)
        assert np.all(np.diff(result.objective) >= -1e-12)


def test_both_gradient_implementations_take_the_same_path():
    lists, _, _ = lists_and_rankings(n=50, k=3, d=4)
    runs = [dope(lists, samples=10, implementation=i, rng=np.random.default_rng(0)) for i in ("official", "efficient")]
    assert np.allclose(runs[0].objective, runs[1].objective, atol=1e-9)
    assert np.allclose(runs[0].weights, runs[1].weights, atol=1e-9)
    assert runs[1].evaluations == 0 and runs[0].work[0] == runs[1].work[0] == 0
    assert np.all(np.diff(runs[0].work) > 0) and runs[0].multiplications == runs[0].work[-1]


def test_official_implementation_counts_the_official_codes_objective_evaluations():
    """The official notebook evaluates the objective 44 times per iteration: in its gradient,
    at both ends of the segment, twice in each of 20 golden-section rounds and at the new design."""
    lists, _, _ = lists_and_rankings(n=30, k=3, d=4)
    calls = []

    def value(eta):
        calls.append(eta)
        return -((eta - 0.3) ** 2)

    assert golden_section_step(value) == pytest.approx(0.3, abs=1e-4) and len(calls) == 40
    for samples in (None, 6):
        result = dope(lists, samples=samples, implementation="official", max_iterations=7, tolerance=0.0)
        n_lists, _, d = lists.shape
        assert result.evaluations == 44 * result.iterations == 44 * 7
        gains = (n_lists if samples is None else samples) * d**3
        assert np.all(np.diff(result.work) == gains + 44 * (n_lists * d**2 + d**3))


def test_certificate_at_a_design_solved_by_hand():
    """Three items at the corners of an equilateral triangle, K = 2: the uniform design over
    the three pairs is optimal (by symmetry), with V = (3/2) I and every gain tr(V⁻¹A) = 2 = d."""
    angles = 2 * np.pi * np.arange(3) / 3
    items = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    result = dopewolfe(items, 2, samples=None, iterations=200, track_gap=True)
    information = design_information(items, 2, result.weights)
    assert np.allclose(information, 1.5 * np.eye(2), atol=1e-2)
    assert result.objective[-1] == pytest.approx(2 * math.log(1.5), abs=1e-3)
    assert 0 <= result.gap[-1] < 0.05 and result.gap[1] > result.gap[-1]
    lists = items[np.array(list(itertools.combinations(range(3), 2)))]
    optimal = dope(lists, step="exact", max_iterations=5, track_gap=True)
    assert np.allclose(optimal.weights, 1 / 3) and abs(optimal.gap[1]) < 1e-9


def test_enumeration_certificate_approaches_d():
    rng = np.random.default_rng(0)
    items = rng.standard_normal((14, 3))
    result = dopewolfe(items, 3, samples=None, iterations=300, track_gap=True)
    assert result.gap[-1] < 0.1 * result.gap[1]
    assert np.all(result.gap[1:] >= -1e-9)  # the Kiefer-Wolfowitz bound: max gain >= d
    assert np.isclose(sum(result.weights.values()), 1.0)
    v = design_information(items, 3, result.weights)
    assert result.objective[-1] == pytest.approx(np.linalg.slogdet(v)[1], abs=1e-8)
    # one gap per iterate, the last one the certificate of the final design, by brute force
    assert len(result.gap) == len(result.objective) == result.iterations + 1
    subsets = all_subsets(14, 3)
    gains = [np.trace(np.linalg.solve(v, design_information(items, 3, {tuple(s): 1.0}))) for s in subsets]
    assert result.gap[-1] == pytest.approx(max(gains) - 3, abs=1e-9)
    # the memo DopeWolfe reads its gains from, carried through 300 Woodbury updates, is X V⁻¹ Xᵀ
    np.testing.assert_allclose(result.memo, items @ np.linalg.solve(v, items.T), atol=1e-10)
    lists = items[subsets[:40]]
    official = dope(lists, step="exact", max_iterations=20, track_gap=True)
    assert len(official.gap) == len(official.objective)


def test_round_design_keeps_the_budget_and_the_proportions():
    weights = np.array([0.5, 0.3, 0.2, 0.0])
    counts = round_design(weights, 7)
    assert counts.sum() == 7 and counts[3] == 0
    assert np.all(np.abs(counts - 7 * weights) <= 1)
    assert list(round_design(weights, 10)) == [5, 3, 2, 0]
    assert list(round_design(weights, 10, min_weight=0.25)) == [6, 4, 0, 0]
    with pytest.raises(ValueError, match="min_weight must be in"):
        round_design(weights, 10, min_weight=0.6)


def test_loader_reads_checks_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.delenv("REPROBOOK_DATA", raising=False)
    missing = load_features("nectar", tmp_path)
    assert missing.synthetic and "not found" in missing.notice and missing.lists.shape == (500, 4, 16)
    assert np.allclose(np.linalg.norm(missing.lists, axis=-1), 1.0)
    assert load_features("nectar").synthetic  # no folder configured at all
    folder = tmp_path / "dopewolfe"
    folder.mkdir()
    np.save(folder / "nectar_features.npy", synthetic_features((500, 4, 16)))
    with pytest.raises(ValueError, match="sha256"):
        load_features("nectar", tmp_path)
    np.save(folder / "nectar_features.npy", np.zeros((5, 4, 16)))
    with pytest.raises(ValueError, match=r"expected float64 \(500, 4, 16\)"):
        load_features("nectar", tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        load_features("hh-rlhf", tmp_path)


def test_loader_accepts_the_published_files_when_present():
    published = load_features("nectar")
    if published.synthetic:
        pytest.skip("the published feature files are not in the configured data folder")
    assert published.lists.shape == FEATURE_FILES["nectar"].shape


def test_bad_inputs_name_the_parameter():
    lists, rankings, theta = lists_and_rankings(n=5)
    with pytest.raises(ValueError, match="K >= 2"):
        dope(lists[:, :1])
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        dopewolfe(lists[:, 0], 1, samples=5, iterations=3)
    with pytest.raises(ValueError, match="k must be at most the number of items"):
        dopewolfe(lists[:, 0], 6, samples=5, iterations=3)
    bad = lists.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="lists must contain only finite numbers"):
        dope(bad)
    with pytest.raises(ValueError, match="rankings must hold a permutation"):
        log_likelihood(lists, np.zeros_like(rankings), theta)
    with pytest.raises(ValueError, match="budgets must be an integer >= 1"):
        section61_experiment(lists, runs=1, budgets=[0], samples=2)
    with pytest.raises(ValueError, match="budgets must be a non-empty increasing"):
        universe_losses(lists[:, 0], 2, {"Uniform": None}, [5, 3], theta, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        round_design(np.array([1.0]), 0)
    with pytest.raises(ValueError, match="step must be one of"):
        dope(lists, step="armijo")
    with pytest.raises(ValueError, match="samples must be at most the number of lists"):
        dope(lists, samples=6)
    with pytest.raises(ValueError, match="do not span"):
        dopewolfe(np.eye(4), 2, samples=3, iterations=1, start=1)


def test_section61_experiment_orders_the_designs_on_synthetic_lists():
    # features of unequal scales, where the design queries matters
    lists = np.random.default_rng(0).standard_normal((200, 4, 5)) * np.geomspace(1, 0.1, 5)
    losses, times = section61_experiment(lists, runs=10, budgets=[50, 200], samples=20)
    assert len(losses) == 10 * 3 * 2 and set(times["design"]) == {"Dope", "DopeWolfe"}
    final = losses[losses.queries == 200].groupby("design").ranking_loss.mean()
    assert final["Dope"] < final["Uniform"] and final["DopeWolfe"] < final["Uniform"]


def test_loglog_slope_recovers_a_power_law():
    sizes = np.array([10, 20, 40, 80])
    assert loglog_slope(sizes, 3 * sizes**2.0) == pytest.approx(2.0)
