"""Evaluating language models: perplexity, n-gram baselines, sampling."""

from __future__ import annotations

import math

import numpy as np
import torch


def check_tokens(name: str, tokens, minimum: int = 2) -> torch.Tensor:
    """A 1-D tensor of token ids with at least ``minimum`` tokens, else ValueError naming it."""
    tokens = torch.as_tensor(tokens)
    if tokens.ndim != 1 or tokens.numel() < minimum or tokens.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"{name} must be a 1-D integer tensor of at least {minimum} token ids, "
            f"got {tuple(tokens.shape)} {tokens.dtype}"
        )
    return tokens.long()


@torch.no_grad()
def perplexity(model, tokens, block_size: int, batch_size: int = 16) -> float:
    """Per-token perplexity exp(mean NLL) on consecutive, non-overlapping blocks of ``block_size`` tokens.

    Each block is scored on its own (no context carried over), so every token
    after the first of a block is predicted once; the ragged tail is dropped.
    """
    tokens = check_tokens("tokens", tokens, block_size)
    if not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an integer >= 2, got {block_size!r}")
    blocks = tokens[: tokens.numel() // block_size * block_size].view(-1, block_size)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in blocks.split(batch_size):
        logits = model(input_ids=batch).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
        )
        total += nll.item()
        count += batch[:, 1:].numel()
    model.train(was_training)
    return math.exp(total / count)


@torch.no_grad()
def sentence_nll(model, sentences) -> float:
    """The model's mean negative log-likelihood per predicted token over ``sentences`` (lists of
    token ids, at least 2 each), each scored on its own from its first token."""
    if len(sentences) == 0:
        raise ValueError("sentences must not be empty")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i, sentence in enumerate(sentences):
        ids = check_tokens(f"sentences[{i}]", sentence).view(1, -1)
        total += model(input_ids=ids, labels=ids).loss.item() * (ids.numel() - 1)
        count += ids.numel() - 1
    model.train(was_training)
    return total / count


def unigram_perplexity(train_tokens, eval_tokens, vocab_size: int) -> float:
    """Perplexity of add-one smoothed unigram frequencies of the training split."""
    train = check_tokens("train_tokens", train_tokens).numpy()
    evaluated = check_tokens("eval_tokens", eval_tokens).numpy()
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    probabilities = counts / counts.sum()
    return float(np.exp(-np.log(probabilities[evaluated[1:]]).mean()))


def bigram_perplexity(
    train_tokens, eval_tokens, vocab_size: int, weights: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95)
) -> float:
    """Perplexity of a bigram model interpolated with the unigram one (Jelinek–Mercer).

    p(b | a) = λ·count(a, b)/count(a) + (1 − λ)·p_unigram(b). The reported
    value is the best over the grid of λ, chosen on the evaluated split itself:
    a choice that favours the baseline.
    """
    train = check_tokens("train_tokens", train_tokens).numpy()
    evaluated = check_tokens("eval_tokens", eval_tokens).numpy()
    unigram = np.bincount(train, minlength=vocab_size) + 1.0
    unigram /= unigram.sum()
    pair_index = train[:-1].astype(np.int64) * vocab_size + train[1:]
    pairs, pair_counts = np.unique(pair_index, return_counts=True)
    first_counts = np.bincount(train[:-1], minlength=vocab_size)
    query = evaluated[:-1].astype(np.int64) * vocab_size + evaluated[1:]
    found = np.searchsorted(pairs, query)
    found = np.minimum(found, len(pairs) - 1)
    seen = pairs[found] == query
    conditional = np.where(seen, pair_counts[found], 0) / np.maximum(first_counts[evaluated[:-1]], 1)
    return min(float(np.exp(-np.log(w * conditional + (1 - w) * unigram[evaluated[1:]]).mean())) for w in weights)


@torch.no_grad()
def generate_text(
    model, tokenizer, prompt: str, max_new_tokens: int = 60, temperature: float = 0.8, top_k: int = 40, seed: int = 0
) -> str:
    """Sample a continuation of ``prompt`` (temperature and top-k sampling), reproducible for a seed."""
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not (isinstance(top_k, int) and top_k >= 1):
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    torch.manual_seed(seed)
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=float(temperature),
        top_k=top_k,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.decode(output[0], skip_special_tokens=True)
