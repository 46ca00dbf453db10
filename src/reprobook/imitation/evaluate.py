"""Evaluation: success rates in the simulator, forward and backward transfer, parameter counts."""

from __future__ import annotations

import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from itertools import repeat

import numpy as np
import torch

from reprobook.checks import check_count
from reprobook.imitation.demos import EVALUATION_SEED_BASE
from reprobook.imitation.tasks import make_env, run_episode


@cache
def environment(task: str):
    """One environment per task and process, reused by every evaluation episode (each is reset by seed)."""
    return make_env(task)


def success_rate(policy, task: str, episodes: int, max_steps: int) -> float:
    """Share of ``episodes`` evaluation episodes of ``task`` that the policy solves within ``max_steps``.

    Episode ``i`` starts from seed ``EVALUATION_SEED_BASE + i``, a seed never used for demonstrations.
    """
    policy.eval()
    solved = [
        run_episode(
            environment(task), lambda history: policy.act(history, task), EVALUATION_SEED_BASE + i, max_steps
        ).success
        for i in range(episodes)
    ]
    return float(np.mean(solved))


_POLICY_FOR_WORKERS = None  # the policy forked worker processes evaluate (it is never pickled)


def _worker_success_rate(task: str, episodes: int, max_steps: int) -> float:
    torch.set_num_threads(1)
    return success_rate(_POLICY_FOR_WORKERS, task, episodes, max_steps)


def success_rates(policy, tasks: list[str], episodes: int, max_steps: int, workers: int = 1) -> dict[str, float]:
    """:func:`success_rate` of each task; with ``workers`` > 1, tasks run in that many processes.

    The tasks are independent, so each worker (forked: it shares the policy as it is now, with
    its adapters, and needs no copy) evaluates whole tasks with one thread. The rates equal the
    serial ones, since every episode depends only on its seed and the policy.
    """
    global _POLICY_FOR_WORKERS
    check_count("workers", workers)
    if workers == 1 or len(tasks) < 2:
        return {task: success_rate(policy, task, episodes, max_steps) for task in tasks}
    _POLICY_FOR_WORKERS = policy
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
            return dict(zip(tasks, pool.map(_worker_success_rate, tasks, repeat(episodes), repeat(max_steps))))
    finally:
        _POLICY_FOR_WORKERS = None


def transfer(matrix: np.ndarray) -> tuple[float, float]:
    """Forward and backward transfer of a success matrix (the LIBERO definitions the paper uses).

    ``matrix[t, k]`` is the success on suite k after training on suites 1..t (t >= k), and
    ``matrix[k, k]`` is the best success reached while training on suite k. With K suites:

        FWT = (1/K) sum_k c_{k,k}
        BWT = 1/(K-1) sum_{k<K} [ 1/(K-k) sum_{t>k} (c_{t,k} - c_{k,k}) ]

    FWT is how well a method learns each new suite; BWT is how much it then loses on the earlier
    ones (0: nothing forgotten; negative: forgetting). BWT needs two suites or more.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be a square K x K success matrix, got shape {matrix.shape}")
    suites = matrix.shape[0]
    if np.isnan(np.tril(matrix)).any():
        raise ValueError("matrix must hold a success rate at every entry on and below the diagonal")
    forward = float(np.mean(np.diag(matrix)))
    if suites == 1:
        return forward, float("nan")
    backward = np.mean([np.mean(matrix[k + 1 :, k] - matrix[k, k]) for k in range(suites - 1)])
    return forward, float(backward)


def parameter_count(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters of ``module`` (only those that train, if ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """A sha256 of a state dict's names and tensor bytes: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def clip_counts(rank: int = 8, alpha: float = 8.0) -> dict[str, int]:
    """Parameter counts of the paper's CLIP ViT-B/16 and of LoRA on its q/v projections (Table 3).

    The model is built from its configuration on the ``meta`` device: no weights are allocated or
    downloaded, only the shapes are counted.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import CLIPConfig, CLIPModel

    with torch.device("meta"):
        clip = CLIPModel(CLIPConfig(vision_config={"patch_size": 16}))
        counts = {
            "total": parameter_count(clip),
            "vision": parameter_count(clip.vision_model),
            "text": parameter_count(clip.text_model),
        }
        lora = get_peft_model(clip, LoraConfig(r=rank, lora_alpha=alpha, target_modules=["q_proj", "v_proj"]))
        counts["lora"] = parameter_count(lora, trainable_only=True)
    return counts
