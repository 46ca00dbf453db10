"""Greedy log-det selection (FisherSFT) and its baselines, against direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from reprobook.design import (
    determinant_lemma_gains,
    fit_head,
    greedy_logdet,
    head_loss,
    held_out_nll,
    k_center,
    logdet_objective,
    pad_blocks,
    pooled_d_optimal,
    prediction_errors,
    selection_experiment,
    selection_orders,
    softmax_weights,
    subspace_sentences,
    uniform_selection,
    woodbury,
)
from reprobook.design.greedy import largest_trace, longest_first, sentence_traces, token_matched


def heterogeneous_pool(n_sentences=120, tokens=6, d=8, seed=0):
    return subspace_sentences(n_sentences, tokens, d, np.random.default_rng(seed))


def test_gains_are_log_det_differences():
    blocks = heterogeneous_pool(20)
    v = 0.5 * np.eye(8) + blocks[0].T @ blocks[0]
    gains = determinant_lemma_gains(np.linalg.inv(v), blocks)
    direct = [np.linalg.slogdet(v + x.T @ x)[1] - np.linalg.slogdet(v)[1] for x in blocks]
    assert np.allclose(gains, direct, atol=1e-10)


def test_woodbury_inverse_matches_a_direct_inverse():
    rng = np.random.default_rng(1)
    root = rng.standard_normal((6, 6))
    v = root @ root.T + np.eye(6)
    factor = rng.standard_normal((6, 3))
    for keep, add in [(1.0, 1.0), (0.7, 0.3)]:
        inverse = woodbury(np.linalg.inv(v), factor, keep=keep, add=add)[0]
        assert np.allclose(inverse, np.linalg.inv(keep * v + add * factor @ factor.T), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_lazy_greedy_selects_what_exact_greedy_selects(seed):
    blocks = heterogeneous_pool(150, seed=seed)
    exact = greedy_logdet(blocks, 30, mode="exact")
    lazy = greedy_logdet(blocks, 30, mode="lazy")
    assert list(lazy.indices) == list(exact.indices)
    assert np.allclose(lazy.objective, exact.objective, atol=1e-10)
    assert lazy.evaluations < 0.5 * exact.evaluations


def test_objective_trace_is_the_direct_log_det():
    blocks = heterogeneous_pool(60)
    selection = greedy_logdet(blocks, 12, gamma=0.3, mode="exact")
    for size in (0, 5, 12):
        direct = logdet_objective(blocks, selection.indices[:size], gamma=0.3)
        assert selection.objective[size] == pytest.approx(direct, abs=1e-10)
    assert len(set(selection.indices)) == 12  # each sentence at most once


def test_greedy_beats_random_subsets_on_the_objective():
    blocks = heterogeneous_pool(100)
    rng = np.random.default_rng(2)
    greedy = greedy_logdet(blocks, 15).objective[-1]
    random_values = [logdet_objective(blocks, uniform_selection(100, 15, rng)) for _ in range(100)]
    assert greedy > max(random_values)
    stochastic = greedy_logdet(blocks, 15, mode="stochastic", candidates=20, rng=rng)
    assert stochastic.evaluations == 15 * 20
    assert np.median(random_values) < stochastic.objective[-1] <= greedy + 1e-12


def test_padding_rows_change_nothing():
    rng = np.random.default_rng(3)
    sentences = [rng.standard_normal((m, 4)) for m in (2, 5, 3, 1, 4)]
    blocks = pad_blocks(sentences)
    assert blocks.shape == (5, 5, 4)
    for i, sentence in enumerate(sentences):
        assert logdet_objective(blocks, [i]) == pytest.approx(logdet_objective(sentence[None], [0]))


def test_token_weights_scale_each_tokens_information():
    blocks = heterogeneous_pool(40)
    ones = greedy_logdet(blocks, 8, token_weights=np.ones(blocks.shape[:2]))
    assert list(ones.indices) == list(greedy_logdet(blocks, 8).indices)
    weights = np.zeros(blocks.shape[:2])
    weights[:, 0] = 1.0  # only the first token of every sentence counts
    first_only = greedy_logdet(blocks, 8, token_weights=weights, mode="exact")
    assert list(first_only.indices) == list(greedy_logdet(blocks[:, :1], 8, mode="exact").indices)
    probabilities = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert np.allclose(softmax_weights(probabilities), [0.5, 0.0])


def test_baselines():
    blocks = heterogeneous_pool(50)
    pooled = pooled_d_optimal(blocks, 10)
    assert len(set(pooled.indices)) == 10
    points = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [0.0, 5.0]])
    for seed in range(4):  # from any start, farthest-first reaches both far points
        assert {2, 3} <= set(k_center(points, 3, np.random.default_rng(seed)))


def test_default_subspace_sentences_are_unchanged_by_the_new_options():
    """The scale options draw the same random numbers: old pools stay the same pools."""
    default = subspace_sentences(30, 4, 6, np.random.default_rng(3))
    explicit = subspace_sentences(30, 4, 6, np.random.default_rng(3), scales=(0.2, 1.0))
    assert np.array_equal(default, explicit)


def test_equal_trace_sentences_keep_their_subspaces_and_share_one_trace():
    varied = subspace_sentences(40, 5, 6, np.random.default_rng(1))
    equal = subspace_sentences(40, 5, 6, np.random.default_rng(1), equal_trace=True)
    traces = sentence_traces(equal)
    assert np.allclose(traces, traces[0])
    assert np.isclose(traces.mean(), sentence_traces(varied).mean())
    # each sentence is the same block, rescaled: its subspace is unchanged
    ratios = np.linalg.norm(equal, axis=(1, 2)) / np.linalg.norm(varied, axis=(1, 2))
    assert np.allclose(equal, varied * ratios[:, None, None])
    assert np.ptp(sentence_traces(varied)) > 1.0  # the default pool's traces do vary


def test_fixed_scale_sentences_use_that_scale():
    rng = np.random.default_rng(2)
    blocks = subspace_sentences(200, 50, 4, rng, max_rank=1, scales=(0.5, 0.5))
    # rank-1 blocks s·g bᵀ/√d: E tr A_i = tokens · s² = 50 · 0.25
    assert abs(sentence_traces(blocks).mean() / (50 * 0.25) - 1) < 0.1
    with pytest.raises(ValueError, match="low <= high"):
        subspace_sentences(3, 2, 2, rng, scales=(1.0, 0.5))


def test_largest_trace_takes_the_strongest_sentences():
    blocks = np.zeros((5, 2, 3))
    for i, scale in enumerate([1.0, 3.0, 2.0, 3.0, 0.5]):
        blocks[i, 0, 0] = scale
    assert list(largest_trace(blocks, 3)) == [1, 3, 2]  # ties: lowest index first
    assert np.allclose(sentence_traces(blocks), [1.0, 9.0, 4.0, 9.0, 0.25])
    # traces equal up to round-off tie: the lowest indices, whatever the rounding
    equal = subspace_sentences(20, 4, 5, np.random.default_rng(4), equal_trace=True)
    assert list(largest_trace(equal, 5)) == [0, 1, 2, 3, 4]
    assert list(largest_trace(np.zeros((3, 2, 2)), 2)) == [0, 1]
    pool = heterogeneous_pool(60)
    chosen = largest_trace(pool, 10)
    assert sentence_traces(pool)[chosen].min() >= np.delete(sentence_traces(pool), chosen).max()


def test_longest_first_orders_by_length_and_shuffles_ties():
    lengths = np.array([3, 7, 7, 1, 7, 5])
    orders = {tuple(longest_first(lengths, np.random.default_rng(seed))) for seed in range(20)}
    for order in orders:
        assert sorted(order) == list(range(6))
        assert list(lengths[list(order)]) == [7, 7, 7, 5, 3, 1]
    assert len({order[:3] for order in orders}) > 1  # ties in random order
    with pytest.raises(ValueError, match="integer"):
        longest_first(np.array([1.5, 2.0]), np.random.default_rng(0))


def test_token_matched_takes_the_prefix_closest_in_tokens():
    lengths = np.array([10, 4, 6, 8, 2])
    order = np.array([3, 0, 1, 4, 2])  # cumulative tokens 8, 18, 22, 24, 30
    assert list(token_matched(order, lengths, 19)) == [3, 0]
    assert list(token_matched(order, lengths, 21)) == [3, 0, 1]
    assert list(token_matched(order, lengths, 20)) == [3, 0]  # equally close: the shorter prefix
    assert list(token_matched(order, lengths, 1)) == [3]  # at least one sentence
    assert list(token_matched(order, lengths, 1000)) == list(order)
    with pytest.raises(ValueError, match="order must index lengths"):
        token_matched(np.array([0, 9]), lengths, 5)


def test_bad_inputs_name_the_parameter():
    blocks = heterogeneous_pool(5)
    with pytest.raises(ValueError, match="sentences must not be empty"):
        pad_blocks([])
    with pytest.raises(ValueError, match="blocks must not be empty"):
        greedy_logdet(np.zeros((0, 3, 4)), 1)
    with pytest.raises(ValueError, match="n must be at most the pool's size 5"):
        greedy_logdet(blocks, 6)
    bad = blocks.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="blocks must contain only finite numbers"):
        greedy_logdet(bad, 2)
    with pytest.raises(ValueError, match="the same d"):
        pad_blocks([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="mode must be one of"):
        greedy_logdet(blocks, 2, mode="random")
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        greedy_logdet(blocks, 2, gamma=0.0)


def test_head_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    features, theta = rng.standard_normal((30, 4)), rng.standard_normal((4, 5))
    labels = rng.integers(0, 5, 30)
    value, grad = head_loss(theta, features, labels, l2=0.1)
    h = 1e-6
    numeric = np.zeros_like(theta)
    for index in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[index] = h
        numeric[index] = (
            head_loss(theta + step, features, labels, 0.1)[0] - head_loss(theta - step, features, labels, 0.1)[0]
        ) / (2 * h)
    assert np.allclose(grad, numeric, atol=1e-6)
    probabilities = np.exp(features @ theta) / np.exp(features @ theta).sum(axis=1, keepdims=True)
    direct = -np.log(probabilities[np.arange(30), labels]).sum() + 0.05 * np.sum(theta**2)
    assert value == pytest.approx(direct)


def test_head_fit_recovers_the_predictions():
    rng = np.random.default_rng(5)
    features, theta = rng.standard_normal((20_000, 3)) / np.sqrt(3), rng.standard_normal((3, 4))
    p = np.exp(features @ theta)
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    worst, mean = prediction_errors(fit_head(features, labels, 4), theta, features)
    assert mean < 0.02 and worst < 0.08


def test_fishersft_selection_beats_uniform_on_heterogeneous_sentences():
    blocks = subspace_sentences(300, 10, 10, np.random.default_rng(0))
    order = greedy_logdet(blocks, 100).indices
    selectors = {
        "uniform": lambda n, rng: uniform_selection(len(blocks), n, rng),
        "FisherSFT": lambda n, rng: order[:n],
    }
    errors = selection_experiment(blocks, selectors, [100], n_classes=20, seeds=range(4))
    mean = errors.groupby("selection").mean_error.mean()
    assert mean["FisherSFT"] < 0.8 * mean["uniform"]
    with pytest.raises(ValueError, match="labels must lie in"):
        head_loss(np.zeros((2, 3)), np.zeros((1, 2)), np.array([3]))


def test_sentence_embeddings_are_what_the_head_reads(tmp_path):
    import torch

    from reprobook.design.embeddings import sentence_embeddings
    from reprobook.lm.models import build_model, get_spec

    model = build_model(get_spec("lab-micro"), 40, 0, seed=0).double()
    rng = np.random.default_rng(6)
    sentences = [list(rng.integers(1, 40, m)) for m in (5, 9, 3, 7)]
    embedded = sentence_embeddings(model, sentences, batch_size=3, cache=tmp_path)
    assert embedded["blocks"].shape == (4, 8, model.config.hidden_size)
    assert list(embedded["lengths"]) == [4, 8, 2, 6]
    with torch.no_grad():
        for i, sentence in enumerate(sentences):  # alone, unpadded: the same states, and the head's logits
            ids = torch.tensor([sentence])
            logits = model(input_ids=ids).logits[0, :-1].numpy()
            block = embedded["blocks"][i, : len(sentence) - 1]
            head = model.get_output_embeddings().weight.detach().numpy()
            assert np.allclose(block @ head.T, logits, atol=1e-10)
            assert list(embedded["labels"][i, : len(sentence) - 1]) == sentence[1:]
    assert np.all(embedded["blocks"][2, 2:] == 0) and np.all(embedded["labels"][2, 2:] == -1)
    again = sentence_embeddings(model, sentences, cache=tmp_path)  # read back from the cache
    assert np.array_equal(again["blocks"], embedded["blocks"])
    assert len(list((tmp_path / "embeddings").glob("*.npz"))) == 1
    with pytest.raises(ValueError, match="at least 2 tokens"):
        sentence_embeddings(model, [[1]], cache=tmp_path)


def test_head_fit_from_an_anchor_moves_towards_the_data():
    rng = np.random.default_rng(7)
    features, truth = rng.standard_normal((3000, 3)), rng.standard_normal((3, 4))
    p = np.exp(features @ truth)
    labels = (rng.random((3000, 1)) > (p / p.sum(axis=1, keepdims=True)).cumsum(axis=1)).sum(axis=1).clip(max=3)
    anchor = truth + rng.standard_normal((3, 4))
    strong = fit_head(features[:50], labels[:50], 4, l2=1e6, anchor=anchor)
    assert np.allclose(strong, anchor, atol=1e-3)  # a huge ridge keeps the pretrained head
    tuned = fit_head(features[:2000], labels[:2000], 4, l2=1.0, anchor=anchor)
    assert held_out_nll(tuned, features[2000:], labels[2000:]) < held_out_nll(anchor, features[2000:], labels[2000:])


def test_token_rows_drop_the_padding_and_follow_the_chosen_order():
    from reprobook.design.embeddings import token_rows

    blocks = np.arange(3 * 4 * 2, dtype=float).reshape(3, 4, 2) + 1
    labels = np.array([[1, 2, -1, -1], [3, -1, -1, -1], [4, 5, 6, 7]])
    features, targets = token_rows({"blocks": blocks, "labels": labels}, [2, 0])
    assert list(targets) == [4, 5, 6, 7, 1, 2]
    assert np.array_equal(features, np.concatenate([blocks[2], blocks[0, :2]]))
    assert len(token_rows({"blocks": blocks, "labels": labels})[1]) == 7


def test_selection_orders_are_each_methods_choices():
    blocks = heterogeneous_pool(60)
    orders = selection_orders(blocks, 12, np.random.default_rng(0))
    assert list(orders) == ["uniform", "FisherSFT", "pooled D-optimal", "k-center"]
    for order in orders.values():
        assert len(order) == 12 and len(set(order.tolist())) == 12
    assert np.array_equal(orders["FisherSFT"], greedy_logdet(blocks, 12, mode="exact").indices)
    assert np.array_equal(orders["pooled D-optimal"], pooled_d_optimal(blocks, 12).indices)
    weights = np.ones(blocks.shape[:2])
    weighted = selection_orders(blocks, 12, np.random.default_rng(0), token_weights=weights)
    assert np.array_equal(weighted["FisherSFT weighted"], orders["FisherSFT"])  # unit weights change nothing


def test_single_precision_fit_is_close_to_the_double_precision_fit():
    rng = np.random.default_rng(8)
    features, truth = rng.standard_normal((800, 5)), rng.standard_normal((5, 30))
    p = np.exp(features @ truth)
    labels = (rng.random((800, 1)) > (p / p.sum(axis=1, keepdims=True)).cumsum(axis=1)).sum(axis=1).clip(max=29)
    anchor = truth + 0.5 * rng.standard_normal(truth.shape)
    double = fit_head(features, labels, 30, l2=10.0, anchor=anchor)
    single = fit_head(features, labels, 30, l2=10.0, anchor=anchor, precision="float32")
    assert abs(held_out_nll(single, features, labels) - held_out_nll(double, features, labels)) < 1e-4
    assert np.abs(single - double).max() < 1e-2
    with pytest.raises(ValueError, match="precision must be one of"):
        fit_head(features, labels, 30, precision="half")


def test_selection_experiment_scores_only_real_tokens():
    blocks = heterogeneous_pool(40, tokens=5)
    padded = np.concatenate([blocks, np.zeros((40, 3, blocks.shape[2]))], axis=1)
    lengths = np.full(40, 5)
    selectors = {"first": lambda n, rng: np.arange(n)}
    plain = selection_experiment(blocks, selectors, [20], n_classes=4, seeds=[0])
    with_padding = selection_experiment(padded, selectors, [20], n_classes=4, seeds=[0], lengths=lengths)
    diluted = selection_experiment(padded, selectors, [20], n_classes=4, seeds=[0])
    # the padding rows draw labels too, so the true head's labels differ; the scores must
    # not count the padding's zero error
    assert with_padding.mean_error[0] > diluted.mean_error[0]
    assert with_padding.mean_error[0] == pytest.approx(plain.mean_error[0], rel=0.5)


def test_predictive_weights_are_one_minus_the_squared_norm_of_each_prediction():
    from reprobook.design import predictive_weights

    rng = np.random.default_rng(9)
    blocks, theta = rng.standard_normal((7, 3, 4)), rng.standard_normal((4, 5))
    p = np.exp(blocks @ theta)
    p /= p.sum(axis=2, keepdims=True)
    assert np.allclose(predictive_weights(theta, blocks, chunk=2), 1 - (p**2).sum(axis=2), atol=1e-12)


def test_sentence_nll_is_the_head_nll_of_the_embeddings(tmp_path):
    from reprobook.design.embeddings import sentence_embeddings, token_rows
    from reprobook.lm.evaluate import sentence_nll
    from reprobook.lm.models import build_model, get_spec

    model = build_model(get_spec("lab-micro"), 40, 0, seed=0).double()
    rng = np.random.default_rng(10)
    sentences = [list(rng.integers(1, 40, m)) for m in (5, 9, 3)]
    head = model.get_output_embeddings().weight.detach().numpy().T
    rows = token_rows(sentence_embeddings(model, sentences, cache=tmp_path))
    assert sentence_nll(model, sentences) == pytest.approx(held_out_nll(head, *rows), abs=1e-6)  # the loss is float32
    with pytest.raises(ValueError, match="sentences\\[0\\] must be"):
        sentence_nll(model, [[1]])
