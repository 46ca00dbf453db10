"""Pre-logit token embeddings of sentences from a causal language model, cached.

FisherSFT (arXiv:2505.14826) selects sentences by the embeddings the model's head reads:
for token j of a sentence, the last hidden state x_j (after the final norm), which predicts
token j + 1 through the head, p = softmax(W x_j). :func:`sentence_embeddings` runs the model
over the sentences in batches (right-padded; a causal model's states at real tokens do not
see the padding) and returns them as padded blocks for :mod:`reprobook.design.greedy`, with
the next tokens as labels. The result is cached under a key of the model's weights and the
token ids, written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from reprobook.atomic import atomic_write_bytes
from reprobook.cache import build_once, cache_root, content_key
from reprobook.checks import check_count
from reprobook.lm.lab import weights_digest

PADDING_LABEL = -1


def _check_sentences(sentences: Sequence[Sequence[int]]) -> list[list[int]]:
    if len(sentences) == 0:
        raise ValueError("sentences must not be empty")
    checked = [list(map(int, s)) for s in sentences]
    short = [i for i, s in enumerate(checked) if len(s) < 2]
    if short:
        raise ValueError(
            f"every sentence needs at least 2 tokens (a token and its successor); sentence {short[0]} has fewer"
        )
    return checked


@torch.no_grad()
def _embed(model: torch.nn.Module, sentences: list[list[int]], batch_size: int) -> dict[str, np.ndarray]:
    device = next(model.parameters()).device
    longest = max(map(len, sentences)) - 1
    width = model.get_output_embeddings().in_features
    blocks = np.zeros((len(sentences), longest, width))
    labels = np.full((len(sentences), longest), PADDING_LABEL, dtype=np.int64)
    was_training = model.training
    model.eval()
    for start in range(0, len(sentences), batch_size):
        batch = sentences[start : start + batch_size]
        length = max(map(len, batch))
        ids = torch.zeros((len(batch), length), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, sentence in enumerate(batch):
            ids[row, : len(sentence)] = torch.tensor(sentence)
            mask[row, : len(sentence)] = 1
        hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        states = hidden.hidden_states[-1].double().cpu().numpy()
        for row, sentence in enumerate(batch):
            tokens = len(sentence) - 1
            blocks[start + row, :tokens] = states[row, :tokens]
            labels[start + row, :tokens] = sentence[1:]
    model.train(was_training)
    return {"blocks": blocks, "labels": labels, "lengths": np.array([len(s) - 1 for s in sentences])}


def sentence_embeddings(
    model: torch.nn.Module, sentences: Sequence[Sequence[int]], *, batch_size: int = 32, cache=None
) -> dict[str, np.ndarray]:
    """The pre-logit embeddings of every token but the last of each sentence, and the token each predicts.

    Returns ``blocks`` (N, M, d) with zero rows after a sentence's end, ``labels`` (N, M)
    with -1 there, and ``lengths`` (N,), the number of embedded tokens of each sentence.
    """
    sentences = _check_sentences(sentences)
    batch_size = check_count("batch_size", batch_size)
    key = content_key(weights_digest(model), sentences)
    path = cache_root(cache) / "embeddings" / f"{key}.npz"

    def read():
        if not path.is_file():
            return None
        with np.load(path) as stored:
            return {name: stored[name] for name in ("blocks", "labels", "lengths")}

    def build():
        buffer = io.BytesIO()
        np.savez(buffer, **_embed(model, sentences, batch_size))
        atomic_write_bytes(path, buffer.getvalue())

    return build_once(path, read, build)


def token_rows(embedded: dict[str, np.ndarray], indices=None) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings (tokens, d) and labels (tokens,) of the real tokens of the chosen sentences
    (all sentences when ``indices`` is None), in order, without the padding rows."""
    blocks, labels = embedded["blocks"], embedded["labels"]
    if indices is not None:
        chosen = np.asarray(indices, dtype=np.int64)
        blocks, labels = blocks[chosen], labels[chosen]
    real = labels != PADDING_LABEL
    return blocks[real], labels[real]
