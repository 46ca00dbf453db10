"""Modified interpolated Kneser-Ney against a plain dictionary implementation of its equations."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from reprobook.lm.ngram import KneserNey, kneser_ney_perplexity, modified_discounts


def reference_probability(tokens: list[int], vocabulary: int, order: int, context: tuple, word: int) -> float:
    """p(word | context) by the module's equations, from Counters, one level at a time."""
    levels = {}
    for k in range(1, order + 1):
        if k == order:
            counts = Counter(tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1))
        else:  # continuation counts: how many distinct tokens precede each k-gram
            longer = {tuple(tokens[i : i + k + 1]) for i in range(len(tokens) - k)}
            counts = Counter(gram[1:] for gram in longer)
        levels[k] = (counts, modified_discounts(np.array(list(counts.values()))))

    def p(k: int, history: tuple) -> float:
        if k == 0:
            return 1.0 / vocabulary
        counts, discounts = levels[k]
        grams = {gram: c for gram, c in counts.items() if gram[:-1] == history}
        total = sum(grams.values())
        if total == 0:
            return p(k - 1, history[1:])
        backoff = sum(discounts[min(c, 3)] for c in grams.values())
        count = grams.get((*history, word), 0)
        return (max(count - discounts[min(count, 3)], 0.0) + backoff * p(k - 1, history[1:])) / total

    return p(len(context) + 1, tuple(context))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_follow_the_equations_and_sum_to_one(order):
    rng = np.random.default_rng(order)
    vocabulary = 6
    tokens = rng.choice(vocabulary, size=400, p=[0.35, 0.25, 0.15, 0.12, 0.08, 0.05]).tolist()
    model = KneserNey(torch.tensor(tokens), vocabulary, order)
    for context in itertools.product(range(vocabulary), repeat=order - 1):
        sequences = torch.tensor([[*context, word] for word in range(vocabulary)])
        ours = np.array([model.probabilities(row, start=order - 1)[0] for row in sequences])
        expected = [reference_probability(tokens, vocabulary, order, context, word) for word in range(vocabulary)]
        np.testing.assert_allclose(ours, expected, rtol=1e-12)
        assert ours.sum() == pytest.approx(1.0, abs=1e-12)


def test_discounts_are_chen_and_goodmans():
    counts = np.array([1] * 40 + [2] * 20 + [3] * 10 + [4] * 5 + [9] * 3)
    y = 40 / (40 + 2 * 20)
    np.testing.assert_allclose(
        modified_discounts(counts), [0, 1 - 2 * y * 20 / 40, 2 - 3 * y * 10 / 20, 3 - 4 * y * 5 / 10]
    )
    # no count of 3: plain Kneser-Ney, D = Y = n1 / (n1 + 2 n2) = 2 / 4 for every count
    np.testing.assert_allclose(modified_discounts(np.array([1, 1, 2, 5])), [0, 0.5, 0.5, 0.5])


def test_block_perplexity_scores_the_blocks_on_their_own():
    rng = np.random.default_rng(0)
    train = torch.tensor(rng.integers(0, 8, 2000))
    evaluated = torch.tensor(rng.integers(0, 8, 100))
    model = KneserNey(train, 8, 3)
    blocks = [model.probabilities(block, start=1) for block in evaluated[:96].view(-1, 16)]
    expected = float(np.exp(-np.log(np.concatenate(blocks)).mean()))
    assert kneser_ney_perplexity(train, evaluated, 8, 3, block_size=16) == pytest.approx(expected, rel=1e-12)
    # a periodic text is predicted almost surely from two tokens of context
    periodic = torch.arange(4).repeat(300)
    assert kneser_ney_perplexity(periodic, periodic[:200], 4, 3) < 1.1


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="order"):
        KneserNey(torch.arange(10), 10, 0)
    with pytest.raises(ValueError, match="train_tokens must lie in"):
        KneserNey(torch.tensor([0, 1, 9, 2]), 5, 2)
    with pytest.raises(ValueError, match="block_size"):
        kneser_ney_perplexity(torch.arange(10), torch.arange(10), 10, 2, block_size=1)
