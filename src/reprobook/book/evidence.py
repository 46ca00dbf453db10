"""Verdicts from evidence: a claim judged over the runs of a committed sweep.

A claim with ``sweep: NAME`` in ``claims.yml`` is judged on the runs in
``chapters/<slug>/sweeps/NAME/runs/*/run.json``: its notebook at the claim's profile, at
many seeds (``reprobook sweep``). The rule, written once here and stated on the scoreboard:

- ``reproduced`` when the claim's test passes in at least 80 % of the runs **and** the 95 %
  interval of the median (a percentile bootstrap over the runs) lies on the test's side of
  its threshold;
- ``reproduced-in-direction`` by the same rule on the direction test;
- ``not-reproduced`` when the weakest test (the direction test, else the test) fails in at
  least 80 % of the runs and the interval lies on its failing side;
- otherwise ``inconclusive``: at this scale the runs cannot separate the outcomes.

Everything is derived from the runs' records by code, never edited: a test recomputes
every swept claim's verdict and compares it with the one recorded in ``claims.yml``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprobook.book.chapters import Chapter
from reprobook.book.claims import INCONCLUSIVE, WITHIN, Claim, Test, load_claims
from reprobook.book.provenance import changed_files, code_files, code_version
from reprobook.book.sweep import RECORD_FILE, SETTINGS_FILE, SWEEPS_FOLDER
from reprobook.bootstrap import percentile_interval

#: A verdict needs this share of the runs on its side, and the interval too.
MAJORITY = 0.8
CONFIDENCE = 0.95
#: Resamples of the bootstrap, and its seed: the interval is the same on every machine.
RESAMPLES = 9999
BOOTSTRAP_SEED = 0
#: The fewest runs a verdict may rest on.
MIN_RUNS = 5


@dataclass(frozen=True)
class Evidence:
    """A claim's values over the runs of its sweep, their summary, and the verdict the rule gives."""

    claim: Claim
    values: tuple[float, ...]
    median: float
    low: float
    high: float
    verdict: str
    decided_by: int  # runs on the verdict's side of the test that decided it (all runs' verdicts if inconclusive)

    @property
    def runs(self) -> int:
        return len(self.values)

    def interval_text(self) -> str:
        """``0.738 [0.70, 0.80]``: the median and its interval, each to the claim's stable digits."""
        shown = [self.claim.measured_text(v) for v in (self.median, self.low, self.high)]
        return f"{shown[0]} [{shown[1]}, {shown[2]}]"

    def runs_text(self) -> str:
        """``9 of 10 runs``: how many runs are on the verdict's side; every run's verdict when inconclusive."""
        if self.verdict != INCONCLUSIVE:
            return f"{self.decided_by} of {self.runs} runs"
        counts = {}
        for value in self.values:
            verdict = self.claim.judge(value)
            counts[verdict] = counts.get(verdict, 0) + 1
        return ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items())) + f" of {self.runs} runs"


def median_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile-bootstrap interval of the median of ``values`` (NaN if any value is NaN).

    The values are sorted first, so that the interval depends on the runs, not on the order
    their records are read in.
    """
    values = np.sort(values)
    if np.isnan(values).any():
        return math.nan, math.nan
    if np.ptp(values) == 0:  # every run gave the same value: the bootstrap has nothing to resample
        return float(values[0]), float(values[0])
    return percentile_interval((values,), np.median, CONFIDENCE, RESAMPLES, BOOTSTRAP_SEED)


def interval_passes(test: Test, low: float, high: float, reference: float | None) -> bool:
    """Whether every value of ``[low, high]`` passes ``test`` (its ends suffice: a test's passing set is convex)."""
    return test.passes(low, reference) and test.passes(high, reference)


def interval_fails(test: Test, low: float, high: float, reference: float | None) -> bool:
    """Whether no value of ``[low, high]`` passes ``test``."""
    if math.isnan(low) or math.isnan(high):
        return False
    if test.compare == WITHIN:
        return high < reference - test.threshold or low > reference + test.threshold
    return not test.passes(low, reference) and not test.passes(high, reference)


def judge_runs(claim: Claim, values: list[float]) -> Evidence:
    """The verdict the rule (module docstring) gives ``claim`` from its values over a sweep's runs."""
    if len(values) < MIN_RUNS:
        raise ValueError(f"claim {claim.id!r}: a verdict needs at least {MIN_RUNS} runs, got {len(values)}")
    array = np.asarray(values, dtype=float)
    low, high = median_interval(array)
    reference = claim.paper_value

    def share(test: Test, passing: bool) -> tuple[int, bool]:
        count = sum(test.passes(value, reference) == passing for value in values)
        return count, count >= MAJORITY * len(values)

    verdict, decided_by = INCONCLUSIVE, len(values)
    weakest = claim.direction or claim.test
    for name, test in (("reproduced", claim.test), ("reproduced-in-direction", claim.direction)):
        if test is None:
            continue
        count, enough = share(test, passing=True)
        if enough and interval_passes(test, low, high, reference):
            verdict, decided_by = name, count
            break
    else:
        count, enough = share(weakest, passing=False)
        if enough and interval_fails(weakest, low, high, reference):
            verdict, decided_by = "not-reproduced", count
    return Evidence(claim, tuple(values), float(np.median(array)), low, high, verdict, decided_by)


def sweep_folder(chapter: Chapter, name: str) -> Path:
    return chapter.folder / SWEEPS_FOLDER / name


def read_sweep(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A committed sweep's settings (``sweep.json``) and its runs' records, sorted by key."""
    settings_path = folder / SETTINGS_FILE
    if not settings_path.is_file():
        raise FileNotFoundError(f"sweep {folder} has no {SETTINGS_FILE}: run its `reprobook sweep` command to the end")
    records = [json.loads(path.read_text()) for path in sorted(folder.glob(f"runs/*/{RECORD_FILE}"))]
    return json.loads(settings_path.read_text()), records


def claim_values(claim: Claim, settings: dict[str, Any], records: list[dict[str, Any]], where: Path) -> list[float]:
    """The claim's measured value in each run of its sweep; a sweep that cannot judge it is an error."""
    if settings["profile"] != claim.profile or settings["grid"]:
        raise ValueError(
            f"claim {claim.id!r} is judged at profile {claim.profile!r} over seeds only, but sweep {where} "
            f"ran profile {settings['profile']!r} with grid {settings['grid']}"
        )
    runs = [record for record in records if record["notebook"] == claim.notebook]
    failed = [record["key"] for record in runs if record["status"] != "ok"]
    if failed:
        raise ValueError(f"sweep {where}: runs {failed} of {claim.notebook} failed; rerun its command")
    return [entry["measured"] for record in runs for entry in record["ledger"] if entry["claim"] == claim.id]


def chapter_evidence(chapter: Chapter) -> dict[str, Evidence]:
    """Every swept claim of a chapter with the evidence of its sweep, in the order of ``claims.yml``."""
    claims = [claim for claim in load_claims(chapter.claims_file).claims if claim.sweep is not None]
    sweeps = {name: read_sweep(sweep_folder(chapter, name)) for name in {claim.sweep for claim in claims}}
    return {
        claim.id: judge_runs(claim, claim_values(claim, *sweeps[claim.sweep], sweep_folder(chapter, claim.sweep)))
        for claim in claims
    }


def stale_sweeps(chapter: Chapter) -> list[str]:
    """For each committed sweep of a chapter whose runs no longer match the code, what changed and how to refresh it."""
    problems = []
    for folder in sorted((chapter.folder / SWEEPS_FOLDER).glob(f"*/{SETTINGS_FILE}")):
        folder = folder.parent
        settings, records = read_sweep(folder)
        for notebook in settings["notebooks"]:
            recorded = settings.get("code_files", {}).get(notebook, {})
            current = code_files(chapter, notebook)
            changed = changed_files(recorded, current)
            versions = {r["code_version"] for r in records if r["notebook"] == notebook} - {code_version(current)}
            if changed or versions:
                what = "; ".join(changed) or f"runs of code versions {sorted(versions)}"
                problems.append(
                    f"sweep {chapter.slug}/{folder.name} ({notebook}) is stale: {what}. Refresh it: "
                    f"{settings['command']}"
                )
    return problems
