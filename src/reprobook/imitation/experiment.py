"""The chapter's experiment: a pretraining suite, then adaptation suites of unseen tasks, per method."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reprobook.bootstrap import percentile_interval
from reprobook.checks import check_count
from reprobook.imitation.continual import ContinualConfig, ContinualResult, Pretrained, Suite, run_method
from reprobook.imitation.demos import load_suite
from reprobook.imitation.evaluate import transfer, transfer_many
from reprobook.imitation.tasks import check_tasks
from reprobook.imitation.windows import suite_windows


def make_suites(
    pretraining: list[str],
    adaptation: list[list[str]],
    demos: int,
    window: int,
    validation_share: float = 0.2,
    max_steps: int = 500,
    dtype: torch.dtype = torch.float64,
) -> tuple[Suite, list[Suite]]:
    """The pretraining suite and the adaptation suites, each with its demonstrations' windows.

    The windows are tensors of ``dtype``, which must be the policy's.

    Every task appears in one suite only: the adaptation suites hold tasks the pretrained policy
    has never seen.
    """
    check_tasks(pretraining, "pretraining")
    if not adaptation:
        raise ValueError("adaptation must list at least one suite of tasks")
    for k, tasks in enumerate(adaptation):
        check_tasks(tasks, f"adaptation suite {k + 1}")
    check_tasks(pretraining + [task for tasks in adaptation for task in tasks], "the suites together")

    def suite(name: str, tasks: list[str]) -> Suite:
        train, validation = suite_windows(
            load_suite(tasks, demos, max_steps=max_steps), window, validation_share, dtype
        )
        return Suite(name, tasks, train, validation)

    return suite("pretraining", pretraining), [suite(f"suite {k + 1}", tasks) for k, tasks in enumerate(adaptation)]


def compare_methods(
    methods: list[str],
    pretrained: Pretrained,
    suites: list[Suite],
    config: ContinualConfig,
    seed: int,
    library_root: str | Path | None = None,
) -> dict[str, ContinualResult]:
    """Run each method over the suites from the same pretrained policy (libraries in a temporary folder)."""
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(library_root or temporary)
        return {method: run_method(method, pretrained, suites, config, seed, root / method) for method in methods}


def transfer_table(results: dict[str, ContinualResult]) -> pd.DataFrame:
    """FWT, BWT, trainable parameters and their share, one row per method."""
    rows = []
    for method, result in results.items():
        forward, backward = transfer(result.matrix())
        rows.append(
            {
                "method": method,
                "FWT": forward,
                "BWT": backward,
                "trainable": result.trainable,
                "share": result.trainable / result.total,
            }
        )
    return pd.DataFrame(rows).set_index("method")


def resampled_matrices(result: ContinualResult, episodes: np.ndarray) -> np.ndarray:
    """Success matrices ``(resamples, K, K)`` with each cell's episodes taken at the indices ``episodes``.

    ``episodes`` is ``(resamples, n)``: indices into the ``n`` reported episodes of every cell.
    Every cell was evaluated from the same seeds, so one set of indices serves them all (the
    resampling keeps the pairing of methods and suites on an initial state).
    """
    suites = len(result.suites)
    matrices = np.full((len(episodes), suites, suites), np.nan)
    for (after, suite), cell in result.success.groupby(["after", "suite"]):
        solved = np.stack(cell["outcomes"].to_list())  # (tasks, n)
        matrices[:, after, suite] = solved[:, episodes].mean(axis=(0, 2))
    return matrices


def transfer_interval(
    results: dict[str, ContinualResult],
    statistic: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], np.ndarray],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval of ``statistic(fwt, bwt)`` over the evaluation episodes.

    ``fwt`` and ``bwt`` map each method to its FWT and BWT, one value per resample; the
    statistic returns one value per resample, such as ``bwt["fft"]`` or
    ``fwt["tail-lora"] - fwt["fft"]``. The initial states of the evaluation are resampled (the
    same ones for every method and suite); the training runs stay as they are, so the interval
    is the evaluation's uncertainty for this training seed, not the spread over training seeds.
    With one episode per cell there is nothing to resample, and the interval is NaN.
    """
    counts = {len(o) for r in results.values() for o in r.success["outcomes"]}
    if len(counts) != 1:
        raise ValueError(f"every cell must hold the same number of evaluation episodes, got {sorted(counts)}")
    (episodes,) = counts
    if episodes < 2:  # one episode per cell: nothing to resample
        return float("nan"), float("nan")

    def resampled(indices: np.ndarray, axis: int = -1) -> np.ndarray:
        indices = np.asarray(indices)
        flat = indices.reshape(-1, episodes)
        transfers = {method: transfer_many(resampled_matrices(r, flat)) for method, r in results.items()}
        fwt = {method: value[0] for method, value in transfers.items()}
        bwt = {method: value[1] for method, value in transfers.items()}
        return np.asarray(statistic(fwt, bwt)).reshape(indices.shape[:-1])

    return percentile_interval((np.arange(episodes),), resampled, confidence, resamples, seed)


def validation_rise(history: pd.DataFrame, last: int = 3) -> float:
    """How far the validation loss ends above its lowest level, mean over suites.

    For each suite the logged validation losses are smoothed by a running mean over ``last``
    logs (the step-to-step noise of a constant learning rate would otherwise count as a
    rise); the rise is the last smoothed value minus the lowest one. It is 0 while the loss
    still falls and positive when it rose after its minimum (overfitting).
    """
    check_count("last", last)
    logged = history.dropna(subset=["validation_loss"])
    if "suite" not in logged:
        logged = logged.assign(suite=0)

    def rise(losses: pd.Series) -> float:
        smooth = losses.rolling(last, min_periods=1).mean()
        return float(smooth.iloc[-1] - smooth.min())

    return float(logged.groupby("suite")["validation_loss"].apply(rise).mean())
