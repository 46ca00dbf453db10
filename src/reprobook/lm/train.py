"""Pretraining of the laboratory models: deterministic, resumable, with a progress bar.

AdamW (or any optimizer built by a given factory), a linear warm-up then a cosine decay (``transformers``'
``get_cosine_schedule_with_warmup``), gradient-norm clipping. Batches are
random windows of the training token stream drawn from a seeded generator,
so a run is identical for a seed and a thread count. A checkpoint holding the
model, optimizer, schedule, generator and loss history is written atomically
every ``eval_every`` steps; a run that finds one resumes from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from reprobook.atomic import atomic_torch_save
from reprobook.lm.models import TrainingRecipe

CHECKPOINT = "checkpoint.pt"


def random_windows(tokens: torch.Tensor, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` windows of ``length`` consecutive tokens at random offsets."""
    if tokens.ndim != 1 or tokens.numel() <= length:
        raise ValueError(
            f"tokens must be a 1-D stream longer than the context {length}, got shape {tuple(tokens.shape)}"
        )
    starts = torch.randint(0, tokens.numel() - length, (batch_size,), generator=generator)
    return torch.stack([tokens[s : s + length] for s in starts.tolist()])


@torch.no_grad()
def estimate_loss(model, tokens: torch.Tensor, length: int, batches: int, batch_size: int, seed: int) -> float:
    """Mean next-token loss on ``batches`` fixed random batches of a split (the same batches every call)."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses = [
        model(input_ids=batch, labels=batch).loss.item()
        for batch in (random_windows(tokens, batch_size, length, generator).to(device) for _ in range(batches))
    ]
    model.train(was_training)
    return sum(losses) / len(losses)


def pretrain(
    model,
    train_tokens: torch.Tensor,
    validation_tokens: torch.Tensor,
    recipe: TrainingRecipe,
    context: int,
    seed: int,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    description: str = "pretraining",
    optimizer: Callable[[list[dict], float], torch.optim.Optimizer] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` by next-token prediction; returns the loss history.

    Batches go to the model's device (windows are drawn on the CPU, so a seed gives the same
    batches everywhere). ``optimizer(param_groups, learning_rate)`` builds the optimizer from the parameter groups
    (weight decay on matrices only) and the recipe's peak learning rate; the default is AdamW
    with betas (0.9, 0.95). The schedule sets the groups' ``lr`` before every step.

    History: ``step`` and ``train_loss`` of every step; ``eval_step``,
    ``eval_train_loss`` and ``eval_validation_loss`` every ``eval_every`` steps
    and at the end (fixed batches, so curves are comparable). Runs with the
    recipe's thread count and restores the caller's afterwards.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _pretrain(
            model,
            train_tokens,
            validation_tokens,
            recipe,
            context,
            seed,
            checkpoint_dir,
            progress,
            description,
            optimizer or _adamw,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _adamw(param_groups: list[dict], learning_rate: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups, lr=learning_rate, betas=(0.9, 0.95))


def _pretrain(
    model, train_tokens, validation_tokens, recipe, context, seed, checkpoint_dir, progress, description, make_optimizer
):
    from transformers import get_cosine_schedule_with_warmup  # imported by a run: it imports peft

    optimizer = make_optimizer(_parameter_groups(model, recipe.weight_decay), recipe.learning_rate)
    schedule = get_cosine_schedule_with_warmup(optimizer, recipe.warmup_steps, recipe.steps)
    generator = torch.Generator().manual_seed(seed)
    history = {"step": [], "train_loss": [], "eval_step": [], "eval_train_loss": [], "eval_validation_loss": []}
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    start = _resume(path, model, optimizer, schedule, generator, history)
    model.train()
    bar = tqdm(
        range(start, recipe.steps),
        initial=start,
        total=recipe.steps,
        desc=description,
        disable=not progress,
        mininterval=2.0,
    )
    device = next(model.parameters()).device
    for step in bar:
        batch = random_windows(train_tokens, recipe.batch_size, context, generator).to(device)
        loss = model(input_ids=batch, labels=batch).loss
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the training loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        schedule.step()
        history["step"].append(step + 1)
        history["train_loss"].append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
            for split, tokens in (("train", train_tokens), ("validation", validation_tokens)):
                history[f"eval_{split}_loss"].append(
                    estimate_loss(model, tokens, context, recipe.eval_batches, recipe.batch_size, seed + 1)
                )
            history["eval_step"].append(step + 1)
            if path is not None:
                _save(path, model, optimizer, schedule, generator, history)
    model.eval()
    return history


def _parameter_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only, not on norms (the usual split for transformers); frozen weights stay out."""
    trained = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in trained if p.ndim >= 2]
    vectors = [p for p in trained if p.ndim < 2]
    return [{"params": matrices, "weight_decay": weight_decay}, {"params": vectors, "weight_decay": 0.0}]


def _save(path: Path, model, optimizer, schedule, generator, history) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "generator": generator.get_state(),
        "history": history,
    }
    atomic_torch_save(path, state)


def _resume(path: Path | None, model, optimizer, schedule, generator, history) -> int:
    """Load a checkpoint if there is one; return the step to continue from."""
    if path is None or not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    generator.set_state(state["generator"])
    history.update(state["history"])
    return history["step"][-1] if history["step"] else 0
