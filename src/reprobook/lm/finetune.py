"""Supervised fine-tuning through LoRA adapters (Hu et al., 2022), with the book's training loop.

``peft`` wraps the model's attention projections with low-rank adapters W + (α/r) B A, B
starting at zero, so the adapted model starts as the pretrained one; only A and B train,
through :func:`reprobook.lm.train.pretrain`. The caller's model is left unchanged.
"""

from __future__ import annotations

import copy
import warnings

import torch
from peft import LoraConfig, get_peft_model

from reprobook.checks import check_count
from reprobook.lm.models import TrainingRecipe
from reprobook.lm.train import pretrain

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


def lora_finetune(
    model,
    train_tokens: torch.Tensor,
    validation_tokens: torch.Tensor,
    recipe: TrainingRecipe,
    context: int,
    seed: int,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    targets: tuple[str, ...] = ATTENTION_PROJECTIONS,
    progress: bool = False,
):
    """A copy of ``model`` with LoRA adapters of rank ``rank`` on ``targets``, fine-tuned on ``train_tokens``.

    Returns the adapted model and the training history of :func:`~reprobook.lm.train.pretrain`.
    The adapters' A matrices are drawn from ``seed``, so a run is reproducible.
    """
    rank = check_count("rank", rank)
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none")
    with warnings.catch_warnings():  # peft asks transformers a question it has deprecated
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        adapted = get_peft_model(copy.deepcopy(model), config)
    history = pretrain(
        adapted,
        train_tokens,
        validation_tokens,
        recipe,
        context,
        seed,
        progress=progress,
        description="LoRA fine-tuning",
    )
    return adapted, history
