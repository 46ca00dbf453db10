"""This book's preference losses against TRL's ``DPOTrainer`` on the same batch and weights.

TRL (``trl``, a test-only dependency of the book: ``pip install -e ".[test]"``) computes its
losses inside ``DPOTrainer.compute_loss``. :func:`losses_against_trl` builds one trainer per
variant on a few text pairs, takes its first batch, and computes the same loss with
:func:`~reprobook.alignment.logprobs.response_logps` and
:func:`~reprobook.alignment.losses.preference_loss` from that batch's tokens and masks. TRL's
IPO averages the log-ratios over each completion's tokens, and so does the comparison.

TRL 1.16's ``sigmoid`` loss ignores ``label_smoothing``: at ε > 0 it returns plain DPO's
value, not cDPO's (its ``robust`` and ``exo_pair`` losses do read ε). The default variants
compare DPO at ε = 0 only; the book's cDPO is checked against its closed form instead, the
cross-entropy with the soft label (the chapter's first notebook and the tests).
"""

from __future__ import annotations

import warnings

import torch

from reprobook.alignment.logprobs import PackedBatch, response_logps
from reprobook.alignment.losses import preference_loss

#: TRL's ``loss_type`` for each of this book's losses that TRL also has.
TRL_NAMES = {"dpo": "sigmoid", "hinge": "hinge", "ipo": "ipo", "robust": "robust", "exo": "exo_pair"}
#: The variants compared by default: (loss, label smoothing).
VARIANTS = (("dpo", 0.0), ("hinge", 0.0), ("ipo", 0.0), ("robust", 0.1), ("exo", 0.1))


def losses_against_trl(
    policy,
    reference,
    tokenizer,
    examples: dict[str, list[str]],
    output_dir: str,
    beta: float = 0.5,
    variants: tuple[tuple[str, float], ...] = VARIANTS,
) -> list[dict[str, float | str]]:
    """For each (loss, label smoothing): TRL's loss and this book's on TRL's first batch of ``examples``.

    ``examples`` holds the lists ``prompt``, ``chosen`` and ``rejected``. The trainers run on the
    CPU in the models' own precision (``bf16=False``: otherwise TRL computes in bfloat16).
    """
    try:
        import datasets
        import trl
    except ImportError as error:
        raise ImportError('the comparison with TRL needs trl: pip install -e ".[test]"') from error
    data = datasets.Dataset.from_dict(examples)
    datasets.disable_progress_bars()  # TRL's dataset preparation would print progress for each variant
    try:
        with warnings.catch_warnings():  # transformers' notices about renamed training arguments
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
            return [_compare(trl, data, policy, reference, tokenizer, output_dir, beta, *v) for v in variants]
    finally:
        datasets.enable_progress_bars()


def _compare(trl, data, policy, reference, tokenizer, output_dir, beta, loss, smoothing) -> dict[str, float | str]:
    """TRL's loss and this book's for one variant, on the first batch of a fresh trainer."""
    if loss not in TRL_NAMES:
        raise ValueError(f"variants: TRL has no {loss!r} loss; expected one of {list(TRL_NAMES)}")
    args = trl.DPOConfig(
        output_dir=output_dir,
        beta=beta,
        loss_type=TRL_NAMES[loss],
        label_smoothing=smoothing,
        per_device_train_batch_size=len(data),
        report_to="none",
        use_cpu=True,
        bf16=False,
        logging_strategy="no",
        save_strategy="no",
    )
    trainer = trl.DPOTrainer(policy, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        expected = trainer.compute_loss(policy, batch).item()
        packed = PackedBatch(batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        chosen, rejected = response_logps(policy, packed).chunk(2)
        reference_chosen, reference_rejected = response_logps(reference, packed).chunk(2)
    if loss == "ipo":
        tokens_chosen, tokens_rejected = batch["completion_mask"].sum(dim=1).double().chunk(2)
        chosen, reference_chosen = chosen / tokens_chosen, reference_chosen / tokens_chosen
        rejected, reference_rejected = rejected / tokens_rejected, reference_rejected / tokens_rejected
    book, _ = preference_loss(chosen, rejected, reference_chosen, reference_rejected, beta, loss, smoothing)
    return {"loss": loss, "label smoothing": smoothing, "TRL": expected, "book": book.item()}
