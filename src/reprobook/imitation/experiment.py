"""The chapter's experiment: a pretraining suite, then adaptation suites of unseen tasks, per method."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import torch

from reprobook.imitation.continual import ContinualConfig, ContinualResult, Pretrained, Suite, run_method
from reprobook.imitation.demos import load_suite
from reprobook.imitation.evaluate import transfer
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
