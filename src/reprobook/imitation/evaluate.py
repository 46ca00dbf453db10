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

#: Episodes that choose a checkpoint start from seeds from here on, disjoint from the reported
#: episodes' seeds (``EVALUATION_SEED_BASE`` upwards) and from the demonstrations' (below both).
SELECTION_SEED_BASE = EVALUATION_SEED_BASE + 500_000


@cache
def environment(task: str):
    """One environment per task and process, reused by every evaluation episode (each is reset by seed)."""
    return make_env(task)


def episode_outcomes(
    policy, task: str, episodes: int, max_steps: int, first_seed: int = EVALUATION_SEED_BASE
) -> np.ndarray:
    """Whether the policy solves each of ``episodes`` episodes of ``task`` within ``max_steps``.

    Episode ``i`` starts from seed ``first_seed + i``: by default a seed of the reported
    evaluation, never used for demonstrations; :data:`SELECTION_SEED_BASE` gives the separate
    seeds on which checkpoints are chosen. No gradient is recorded while acting.
    """
    check_count("episodes", episodes)
    if not EVALUATION_SEED_BASE <= first_seed:
        raise ValueError(f"first_seed must be at least {EVALUATION_SEED_BASE} (seeds below it make demonstrations)")
    policy.eval()
    with torch.no_grad():
        solved = [
            run_episode(environment(task), lambda history: policy.act(history, task), first_seed + i, max_steps).success
            for i in range(episodes)
        ]
    return np.array(solved, dtype=bool)


def success_rate(policy, task: str, episodes: int, max_steps: int, first_seed: int = EVALUATION_SEED_BASE) -> float:
    """Share of ``episodes`` evaluation episodes of ``task`` that the policy solves (:func:`episode_outcomes`)."""
    return float(np.mean(episode_outcomes(policy, task, episodes, max_steps, first_seed)))


_POLICY_FOR_WORKERS = None  # the policy forked worker processes evaluate (it is never pickled)


def _worker_outcomes(task: str, episodes: int, max_steps: int, first_seed: int) -> np.ndarray:
    torch.set_num_threads(1)
    return episode_outcomes(_POLICY_FOR_WORKERS, task, episodes, max_steps, first_seed)


def task_outcomes(
    policy,
    tasks: list[str],
    episodes: int,
    max_steps: int,
    workers: int = 1,
    first_seed: int = EVALUATION_SEED_BASE,
) -> dict[str, np.ndarray]:
    """:func:`episode_outcomes` of each task; with ``workers`` > 1, tasks run in that many processes.

    The tasks are independent, so each worker (forked: it shares the policy as it is now, with
    its adapters, and needs no copy) evaluates whole tasks with one thread. The outcomes equal
    the serial ones, since every episode depends only on its seed and the policy.
    """
    global _POLICY_FOR_WORKERS
    check_count("workers", workers)
    if workers == 1 or len(tasks) < 2:
        return {task: episode_outcomes(policy, task, episodes, max_steps, first_seed) for task in tasks}
    _POLICY_FOR_WORKERS = policy
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
            outcomes = pool.map(_worker_outcomes, tasks, repeat(episodes), repeat(max_steps), repeat(first_seed))
            return dict(zip(tasks, outcomes))
    finally:
        _POLICY_FOR_WORKERS = None


def success_rates(
    policy,
    tasks: list[str],
    episodes: int,
    max_steps: int,
    workers: int = 1,
    first_seed: int = EVALUATION_SEED_BASE,
) -> dict[str, float]:
    """The success rate of each task (:func:`task_outcomes`)."""
    outcomes = task_outcomes(policy, tasks, episodes, max_steps, workers, first_seed)
    return {task: float(np.mean(solved)) for task, solved in outcomes.items()}


def transfer(matrix: np.ndarray) -> tuple[float, float]:
    """Forward and backward transfer of a success matrix (after LIBERO, which the paper follows).

    ``matrix[t, k]`` is the success on suite k after training on suites 1..t (t >= k), and
    ``matrix[k, k]`` is the success of the checkpoint kept while training on suite k. With K
    suites:

        FWT = (1/K) sum_k c_{k,k}
        BWT = 1/(K-1) sum_{k<K} [ 1/(K-k) sum_{t>k} (c_{t,k} - c_{k,k}) ]

    FWT is how well a method learns each new suite; BWT is how much it then loses on the earlier
    ones (0: nothing forgotten; negative: forgetting). BWT needs two suites or more.

    BWT is LIBERO's definition (Liu et al. 2023, Section 5). LIBERO's FWT_k is instead the mean
    success over every evaluation made while training on suite k, the untrained one included,
    with the evaluations after the best one replaced by the best: an area under the learning
    curve, at most c_{k,k}. This FWT is the kept checkpoint's success alone.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be a square K x K success matrix, got shape {matrix.shape}")
    if np.isnan(np.tril(matrix)).any():
        raise ValueError("matrix must hold a success rate at every entry on and below the diagonal")
    forward, backward = transfer_many(matrix[None])
    return float(forward[0]), float(backward[0])


def transfer_many(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`transfer` of a stack of success matrices ``(..., K, K)``, unchecked (for resampling)."""
    matrices = np.asarray(matrices, dtype=float)
    suites = matrices.shape[-1]
    forward = np.diagonal(matrices, axis1=-2, axis2=-1).mean(axis=-1)
    if suites == 1:
        return forward, np.full(forward.shape, np.nan)
    losses = [(matrices[..., k + 1 :, k] - matrices[..., k, k, None]).mean(axis=-1) for k in range(suites - 1)]
    return forward, np.mean(losses, axis=0)


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
