"""Tokenizers trained offline on the book's corpus, wrapped for ``transformers``.

- ``bpe-<size>``: byte-level BPE (the GPT-2 scheme) with ``size`` tokens, trained
  with the ``tokenizers`` library on the training split; deterministic.
- ``char``: one token per character seen in the training split, plus ``<unk>``.

Both come back as :class:`transformers.PreTrainedTokenizerFast` with an
end-of-text token that separates documents.
"""

from __future__ import annotations

import re

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"
UNKNOWN = "<unk>"
_BPE_NAME = re.compile(r"^bpe-(\d+)$")


def check_tokenizer_name(name: str) -> str:
    """Accept ``char`` or ``bpe-<size>`` with 256 < size <= 65536; else raise ValueError."""
    match = _BPE_NAME.match(name) if isinstance(name, str) else None
    if name == "char" or (match and 256 < int(match[1]) <= 65536):
        return name
    raise ValueError(f"tokenizer must be 'char' or 'bpe-<size>' with 256 < size <= 65536, got {name!r}")


def train_tokenizer(name: str, text: str) -> PreTrainedTokenizerFast:
    """Train the tokenizer ``name`` on ``text`` (the training split)."""
    check_tokenizer_name(name)
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty string to train a tokenizer on")
    core = _char_tokenizer(text) if name == "char" else _bpe_tokenizer(int(name.split("-")[1]), text)
    return wrap(core)


def _bpe_tokenizer(vocab_size: int, text: str) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = text.splitlines(keepends=True)
    tokenizer.train_from_iterator(lines, trainer=trainer, length=len(lines))
    return tokenizer


def _char_tokenizer(text: str) -> Tokenizer:
    symbols = [END_OF_TEXT, UNKNOWN, *sorted(set(text))]
    tokenizer = Tokenizer(models.BPE(vocab={s: i for i, s in enumerate(symbols)}, merges=[], unk_token=UNKNOWN))
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


def wrap(core: Tokenizer) -> PreTrainedTokenizerFast:
    """A ``transformers`` fast tokenizer around a ``tokenizers`` one, end-of-text as eos, bos and pad."""
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=END_OF_TEXT,
        bos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        unk_token=UNKNOWN if UNKNOWN in core.get_vocab() else None,
        clean_up_tokenization_spaces=False,
    )
