"""Sweeps: a notebook run at many seeds and parameter values, on a Dask cluster.

``reprobook sweep`` plans the Cartesian product of seeds and parameter values,
validates every combination with the chapter's ``profiles.yml`` before any run
starts, and executes each combination as a papermill run on a Dask
``distributed`` cluster: by default a ``LocalCluster`` with one single-threaded
worker per core, or any cluster whose scheduler address is given.

Each run lives in ``<output>/runs/<key>/`` (the executed notebook and ``run.json``,
its record). The key hashes the chapter, notebook, parameters, seed and the code
version (:mod:`reprobook.book.provenance`: what the notebook's run executes), so a rerun
of the same sweep skips the runs already done, and a sweep whose code changed runs again. A failed run
keeps its partial notebook and its error and does not stop the others; a worker
that dies is retried once (Dask's ``allowed-failures``), then its run is recorded
as failed. :mod:`reprobook.book.sweep_report` turns the records into the report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reprobook.atomic import atomic_write_text
from reprobook.book.chapters import Chapter
from reprobook.book.notebooks import execute, read_ledger
from reprobook.book.profiles import CUSTOM_PROFILE, ParameterError, load_profiles
from reprobook.book.provenance import code_files, code_version

#: Parameters a sweep sets itself: the seed comes from ``--seeds``, the profile is always ``custom``.
RESERVED = ("seed", "profile")
RECORD_FILE = "run.json"
#: A chapter's committed sweeps live in ``chapters/<slug>/sweeps/<name>/``, each with its settings file.
SWEEPS_FOLDER = "sweeps"
SETTINGS_FILE = "sweep.json"
NOTEBOOK_FILE = "notebook.ipynb"


@dataclass(frozen=True)
class SweepRun:
    """One papermill run of a sweep: a notebook, the swept values and a seed."""

    chapter: str
    notebook: str
    seed: int
    swept: dict[str, Any]
    parameters: dict[str, Any]
    code_version: str
    key: str

    def label(self) -> str:
        values = "".join(f" {name}={value!r}" for name, value in self.swept.items())
        return f"{self.notebook} seed={self.seed}{values}"


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,5"`` or ``"0-4,7"`` as a sorted list of distinct seeds."""
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            low, high = int(first), int(last or first)
            if low < 0 or high < low:
                raise ValueError
            seeds.update(range(low, high + 1))
    except ValueError:
        raise ParameterError(
            f"--seeds must be seeds >= 0 as a range or a list, such as 0-9 or 0,3,5; got {text!r}"
        ) from None
    return sorted(seeds)


def split_values(text: str) -> list[str]:
    """Split ``"1,2,3"`` or ``"[1, 2],[3, 4]"`` at the commas outside brackets."""
    values, depth, current = [], 0, ""
    for character in text:
        depth += {"[": 1, "]": -1}.get(character, 0)
        if character == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += character
    values.append(current.strip())
    if depth != 0 or not all(values):
        raise ParameterError(f"the values {text!r} must be a comma-separated list, such as 0.1,0.3 or [1,2],[3]")
    return values


def plan_sweep(
    chapter: Chapter, notebooks: list[str], profile: str, seeds: list[int], grid: dict[str, list[str]]
) -> list[SweepRun]:
    """Every run of the sweep, each validated by the profile machinery; a bad value fails here, naming it.

    ``grid`` maps a parameter to its values as command-line text. Runs use the named
    ``profile``'s values, then the swept values and the seed, under the ``custom``
    profile, so that no run fails on a verdict: the report compares them instead.
    """
    if not seeds:
        raise ParameterError("--seeds must name at least one seed")
    profiles = load_profiles(chapter.profiles_file)
    runs = []
    for notebook in notebooks:
        spec = profiles[notebook]
        for name in grid:
            if name in RESERVED:
                raise ParameterError(f"-p {name}: a sweep sets {name!r} itself (use --seeds for seeds)")
        choices = {name: [spec.parse(name, text) for text in texts] for name, texts in grid.items()}
        base = spec.profile_values(profile)
        version = code_version(code_files(chapter, notebook))
        for values in itertools.product(*choices.values()):
            swept = dict(zip(choices, values))
            for seed in seeds:
                parameters = spec.validate({**base, **swept, "seed": seed, "profile": CUSTOM_PROFILE})
                identity = [chapter.slug, notebook, sorted(parameters.items()), seed, version]
                key = hashlib.sha256(json.dumps(identity, default=repr).encode()).hexdigest()[:16]
                runs.append(SweepRun(chapter.slug, notebook, seed, swept, parameters, version, key))
    return runs


def remove_other_versions(output: Path, runs: list[SweepRun]) -> int:
    """Delete the runs in ``output`` of the sweep's notebooks made by other code; return how many.

    They are no longer evidence of anything the book runs: a sweep whose code changed
    starts again (runs of the same code, at other seeds, are kept).
    """
    versions = {run.notebook: run.code_version for run in runs}
    removed = 0
    for path in sorted(output.glob(f"runs/*/{RECORD_FILE}")):
        record = json.loads(path.read_text())
        if record["notebook"] in versions and record.get("code_version") != versions[record["notebook"]]:
            shutil.rmtree(path.parent)
            removed += 1
    return removed


def run_folder(output: Path, run: SweepRun) -> Path:
    return output / "runs" / run.key


def read_record(output: Path, run: SweepRun) -> dict[str, Any] | None:
    """The record of a run written by an earlier or the current sweep, or None."""
    path = run_folder(output, run) / RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(output: Path, run: SweepRun, status: str, seconds: float, error: str | None, ledger) -> dict:
    """Write (atomically) and return the record of one run."""
    record = {**asdict(run), "status": status, "seconds": round(seconds, 1), "error": error, "ledger": ledger}
    atomic_write_text(run_folder(output, run) / RECORD_FILE, json.dumps(record, indent=1, default=repr) + "\n")
    return record


#: The variable through which Dask's nannies lower glibc's trim threshold for their workers.
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"


def execute_run(run: SweepRun, chapter_folder: Path, output: Path) -> dict[str, Any]:
    """Execute one run with papermill (on a worker) and record it; a failing notebook is recorded, not raised."""
    from papermill.exceptions import PapermillExecutionError

    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which hands freed memory
    # back to the system at once; a kernel that inherits it maps and unmaps its tensors' memory
    # at every step and spends half its time in the system (a training notebook ran 3x slower)
    os.environ.pop(MALLOC_TRIM, None)
    folder = run_folder(output, run)
    folder.mkdir(parents=True, exist_ok=True)
    notebook = folder / NOTEBOOK_FILE
    clock = time.perf_counter()
    try:
        executed = execute(
            chapter_folder / f"{run.notebook}.py", notebook, chapter_folder, run.parameters, progress=False
        )
    except PapermillExecutionError as error:
        message = f"{error.ename} in cell {error.exec_count}: {error.evalue}"
        return write_record(output, run, "failed", time.perf_counter() - clock, message, None)
    except Exception as error:  # the kernel died or could not start: still one failed run among many
        message = f"{type(error).__name__}: {error}"
        return write_record(output, run, "failed", time.perf_counter() - clock, message, None)
    ledger = read_ledger(executed)
    if ledger is None:
        return write_record(output, run, "failed", time.perf_counter() - clock, "the notebook reported no ledger", None)
    return write_record(output, run, "ok", time.perf_counter() - clock, None, ledger)


def execute_again(record: dict[str, Any], chapter_folder: Path, output: Path) -> dict[str, Any]:
    """Execute a recorded run again, with the same notebook, parameters and seed, into ``output``; its new record."""
    run = SweepRun(**{name: record[name] for name in SweepRun.__dataclass_fields__})
    return execute_run(run, chapter_folder, output)


def printed_ledger(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What a run's ledger prints, as data: each claim, its value to the claim's stable digits, its verdict."""
    return [(entry["claim"], entry["measured_text"], entry["observed"]) for entry in record["ledger"] or []]


def default_workers() -> int:
    """One single-threaded worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def connect(client_class, address):
    """A Dask client of the cluster at ``address``, or an error naming the address."""
    try:
        return client_class(address, timeout="10s")
    except (OSError, TimeoutError) as error:
        raise ValueError(f"--scheduler {address!r}: no Dask scheduler answers there ({error})") from None


def run_sweep(
    runs: list[SweepRun],
    chapter_folder: Path,
    output: Path,
    scheduler: str | None = None,
    workers: int | None = None,
    task: Callable[[SweepRun, Path, Path], dict] = execute_run,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run what is not done yet on a Dask cluster and return every run's record, in plan order.

    ``scheduler`` is the address of a running cluster (``tcp://host:8786``); without it a
    ``LocalCluster`` of ``workers`` single-threaded worker processes starts and stops here.
    """
    from dask import config
    from dask.distributed import Client, KilledWorker, LocalCluster, as_completed

    records = {run.key: read_record(output, run) for run in runs}
    todo = [run for run in runs if (records[run.key] or {}).get("status") != "ok"]
    progress(f"{len(runs)} runs: {len(runs) - len(todo)} already done, {len(todo)} to run")
    if not todo:
        return [records[run.key] for run in runs]
    settings = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with config.set(settings):
        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, dashboard_address=":0")
        try:
            with connect(Client, scheduler or cluster) as client:
                futures = {
                    client.submit(task, run, chapter_folder, output, key=f"run-{run.key}", pure=False): run
                    for run in todo
                }
                for done, future in enumerate(as_completed(futures), start=1):
                    run = futures[future]
                    try:
                        record = future.result()
                    except KilledWorker:
                        record = write_record(output, run, "failed", 0.0, "the worker died twice running it", None)
                    records[run.key] = record
                    shown = "ok" if record["status"] == "ok" else f"FAILED: {record['error']}"
                    progress(f"[{done}/{len(todo)}] {run.label()}: {shown} ({record['seconds']:.0f} s)")
        finally:
            if cluster is not None:
                cluster.close()
    return [records[run.key] for run in runs]
