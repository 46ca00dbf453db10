"""Verdicts from evidence: the rule against hand-made run tables, the code a run executes, staleness,
and the committed sweeps of the book (their verdicts recomputed, their code current)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import CHAPTERS
from reprobook.book.chapters import Chapter
from reprobook.book.claims import INCONCLUSIVE, ClaimsFileError, _claim_from_dict, load_claims
from reprobook.book.evidence import (
    BOOTSTRAP_SEED,
    RESAMPLES,
    chapter_evidence,
    judge_runs,
    median_interval,
    read_sweep,
    stale_sweeps,
)
from reprobook.book.provenance import changed_files, code_files, code_version, imported_modules, library_closure
from reprobook.book.sweep_report import write_report


def claim(test, direction=None, paper_value=None, sweep="seeds", **fields):
    item = {
        "id": "demo",
        "kind": "reproduction",
        "notebook": "01_demo",
        "statement": "a demonstration claim",
        "paper_value": paper_value,
        "paper_source": "the test's own construction",
        "metric": "a value per run",
        "profile": "book",
        "test": dict(zip(("compare", "threshold"), test)),
        "fails_if": "the value is on the wrong side",
        "verdict": "reproduced",
        "reason": "made by hand",
        "sweep": sweep,
        **fields,
    }
    if direction:
        item["direction"] = dict(zip(("compare", "threshold"), direction))
    return _claim_from_dict(item)


AT_MOST = claim(("<=", 0.7), ("<", 1.0))
DEMO_CLAIM = {
    "id": "demo",
    "kind": "reproduction",
    "notebook": "01_demo",
    "statement": "a demonstration claim",
    "paper_value": None,
    "paper_source": "the test's own construction",
    "metric": "a value per run",
    "profile": "book",
    "test": {"compare": "<=", "threshold": 0.7},
    "direction": {"compare": "<", "threshold": 1.0},
    "fails_if": "the value is on the wrong side",
    "verdict": "reproduced",
    "reason": "made by hand",
    "sweep": "seeds",
}


@pytest.mark.parametrize(
    "values, verdict, runs",
    [
        ([0.5, 0.55, 0.6, 0.52, 0.58, 0.61, 0.49, 0.57, 0.6, 0.54], "reproduced", "10 of 10 runs"),
        # 8 of 10 pass, but a resample with five of the two large values moves the median above 0.7
        ([0.69] * 8 + [0.9, 0.95], "reproduced-in-direction", "10 of 10 runs"),
        ([0.8, 0.85, 0.9, 0.82, 0.88], "reproduced-in-direction", "5 of 5 runs"),
        ([0.65, 0.8, 0.85, 0.9, 0.82, 0.88], "reproduced-in-direction", "6 of 6 runs"),
        ([1.2, 1.3, 1.1, 1.25, 1.4], "not-reproduced", "5 of 5 runs"),
        ([0.5, 1.2, 0.6, 1.3, 0.55, 1.1], INCONCLUSIVE, "3 not-reproduced, 3 reproduced of 6 runs"),
        ([0.5, 0.5, 0.5, 0.5, math.nan], INCONCLUSIVE, "1 not-reproduced, 4 reproduced of 5 runs"),
    ],
)
def test_the_rule_on_hand_made_runs(values, verdict, runs):
    evidence = judge_runs(AT_MOST, values)
    assert evidence.verdict == verdict
    assert evidence.runs_text() == runs


def test_the_rule_without_a_direction_test_and_with_within():
    strict = claim((">=", 1.0))
    crossing = judge_runs(claim(("<=", 0.7)), [0.69] * 8 + [0.9, 0.95])  # 8 of 10 pass; the interval crosses 0.7
    assert crossing.verdict == INCONCLUSIVE and crossing.high > 0.7
    assert crossing.runs_text() == "2 not-reproduced, 8 reproduced of 10 runs"
    assert judge_runs(strict, [0.4, 0.5, 0.45, 0.6, 0.55]).verdict == "not-reproduced"
    assert judge_runs(strict, [0.9, 1.1, 0.95, 1.05, 1.0, 0.97]).verdict == INCONCLUSIVE
    near = claim(("within", 0.1), ("within", 0.3), paper_value=1.0)
    assert judge_runs(near, [1.02, 0.98, 1.05, 0.99, 1.01]).verdict == "reproduced"
    assert judge_runs(near, [1.2, 1.25, 1.15, 1.22, 1.18]).verdict == "reproduced-in-direction"
    assert judge_runs(near, [0.5, 0.4, 0.45, 0.5, 0.42]).verdict == "not-reproduced"
    assert judge_runs(near, [0.5, 1.5, 0.6, 1.4, 0.55, 1.45]).verdict == INCONCLUSIVE  # both sides of the window
    with pytest.raises(ValueError, match="at least 5 runs, got 4"):
        judge_runs(strict, [1.0, 1.1, 1.2, 1.3])


def test_the_interval_is_the_percentile_bootstrap_of_the_median():
    values = np.array([0.3, 0.1, 0.7, 0.4, 0.9, 0.2, 0.5, 0.8, 0.6, 0.35])
    low, high = median_interval(values)
    generator = np.random.default_rng(BOOTSTRAP_SEED)  # the same draws, written out by hand
    medians = np.median(values[generator.integers(0, len(values), size=(RESAMPLES, len(values)))], axis=1)
    assert (low, high) == pytest.approx(tuple(np.percentile(medians, [2.5, 97.5])), abs=0.03)
    assert values.min() <= low <= np.median(values) <= high <= values.max()
    assert median_interval(np.full(6, 0.25)) == (0.25, 0.25)
    assert median_interval(values) == (low, high), "the same interval on every call"
    assert median_interval(values[::-1]) == (low, high), "and in whatever order the runs are read"


def test_an_interval_that_touches_the_threshold_passes_only_when_the_test_admits_it():
    assert judge_runs(claim(("<=", 0.5)), [0.5] * 5).verdict == "reproduced"
    assert judge_runs(claim(("<", 0.5)), [0.5] * 5).verdict == "not-reproduced"
    assert judge_runs(claim(("<", 0.5)), [0.4] * 5).verdict == "reproduced"


def test_inconclusive_needs_a_sweep(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    source = """\
chapter: demo
claims:
  - id: demo
    kind: reproduction
    notebook: 01_demo
    statement: a demonstration claim
    paper_value: null
    paper_source: the test's own construction
    metric: a value per run
    profile: book
    test: {compare: "<", threshold: 1.0}
    fails_if: the value reaches one
    verdict: inconclusive
    reason: made by hand
"""
    (folder / "claims.yml").write_text(source)
    with pytest.raises(ClaimsFileError, match="'inconclusive' comes from a sweep; name it in 'sweep'"):
        load_claims(folder / "claims.yml")
    (folder / "claims.yml").write_text(source + "    sweep: seeds\n")
    assert load_claims(folder / "claims.yml").claims[0].sweep == "seeds"


# --- the code a run executes -------------------------------------------------------------------


def test_imports_follow_lazy_names_functions_and_relative_imports():
    source = """
from reprobook.design import dopewolfe
import reprobook.checks

def later():
    from reprobook.sparse.prox import prox_24
"""
    assert imported_modules(source) == {
        "reprobook.design",
        "reprobook.design.frank_wolfe",
        "reprobook.checks",
        "reprobook.sparse.prox",
    }
    assert imported_modules("from . import logdet", "reprobook.design.frank_wolfe") == {
        "reprobook.design",
        "reprobook.design.logdet",
    }
    closure = library_closure({"reprobook.design.frank_wolfe"})
    assert {"reprobook", "reprobook.design", "reprobook.design.logdet", "reprobook.checks"} <= closure
    assert not any(name.startswith(("reprobook.sparse", "reprobook.rl", "reprobook.book")) for name in closure)


def test_a_chapters_code_is_what_its_notebooks_import():
    dopewolfe = next(c for c in CHAPTERS if c.slug == "dopewolfe")
    files = code_files(dopewolfe, "01_design_problem")
    assert (
        "src/reprobook/design/frank_wolfe.py" in files
        and "chapters/dopewolfe/01_design_problem.py (code cells)" in files
    )
    assert "src/reprobook/book/claims.py" in files and "src/reprobook/lm/pinned/pins.json" in files
    unrelated = (
        "src/reprobook/book/cli.py",
        "src/reprobook/book/evidence.py",
        "src/reprobook/sparse/",
        "src/reprobook/rl/",
    )
    assert not [path for path in files if path.startswith(unrelated)]
    assert not [path for path in files if "02_section61" in path]


DEMO = """\
# %% tags=["parameters"]
profile = "book"
seed = 0

# %%
from reprobook.book.claims import ClaimsLedger

ledger = ClaimsLedger.for_notebook("01_demo", profile=profile)
ledger.record("demo", 0.5)
ledger.report()
"""


COMMAND = "reprobook sweep demo --profile book --seeds 0-4 --output chapters/demo/sweeps/seeds"


@pytest.fixture
def swept_chapter(tmp_path) -> Chapter:
    """A chapter with one notebook, one claim judged on a committed sweep of five runs."""
    folder = tmp_path / "chapters" / "demo"
    (folder / "sweeps" / "seeds").mkdir(parents=True)
    (folder / "01_demo.py").write_text(DEMO)
    (folder / "profiles.yml").write_text("chapter: demo\nnotebooks: {}\n")
    claims = {"chapter": "demo", "claims": [DEMO_CLAIM]}
    (folder / "claims.yml").write_text(json.dumps(claims))
    chapter = Chapter(slug="demo", folder=folder)
    files = code_files(chapter, "01_demo")
    settings = {"chapter": "demo", "notebooks": ["01_demo"], "profile": "book", "seeds": "0-4", "grid": {},
                "code_version": {"01_demo": code_version(files)}, "code_files": {"01_demo": files},
                "command": COMMAND}  # fmt: skip
    (folder / "sweeps" / "seeds" / "sweep.json").write_text(json.dumps(settings))
    for seed, value in enumerate([0.5, 0.6, 0.55, 0.62, 0.58]):
        record = {"notebook": "01_demo", "seed": seed, "key": f"k{seed}", "status": "ok", "swept": {},
                  "code_version": code_version(files), "ledger": [{"claim": "demo", "measured": value}]}  # fmt: skip
        run = folder / "sweeps" / "seeds" / "runs" / f"k{seed}"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps(record))
    return chapter


def test_a_swept_claim_is_judged_on_its_runs(swept_chapter):
    evidence = chapter_evidence(swept_chapter)["demo"]
    assert evidence.verdict == "reproduced" and evidence.runs == 5
    assert evidence.interval_text().startswith("0.580 [")
    runs = swept_chapter.folder / "sweeps" / "seeds" / "runs"
    failed = json.loads((runs / "k3" / "run.json").read_text()) | {"status": "failed", "ledger": None}
    (runs / "k3" / "run.json").write_text(json.dumps(failed))
    with pytest.raises(ValueError, match=r"runs \['k3'\] of 01_demo failed"):
        chapter_evidence(swept_chapter)
    settings = swept_chapter.folder / "sweeps" / "seeds" / "sweep.json"
    settings.write_text(json.dumps(json.loads(settings.read_text()) | {"grid": {"scale": ["1", "2"]}}))
    with pytest.raises(ValueError, match="over seeds only"):
        chapter_evidence(swept_chapter)


def test_a_sweep_goes_stale_when_the_code_its_runs_executed_changes(swept_chapter):
    assert stale_sweeps(swept_chapter) == []
    claims_file = swept_chapter.claims_file
    recorded = json.loads(claims_file.read_text())
    recorded["claims"][0]["verdict"], recorded["claims"][0]["reason"] = "not-reproduced", "written after the runs"
    claims_file.write_text(json.dumps(recorded))
    recorded["claims"][0]["statement"] = "reworded: prose decides nothing a run records"
    claims_file.write_text(json.dumps(recorded))
    assert stale_sweeps(swept_chapter) == [], (
        "the recorded verdict, its reason and the prose are not what a run executes"
    )
    source = swept_chapter.source("01_demo")
    source.write_text(source.read_text() + "\n# %% [markdown]\n# Prose a run does not execute.\n")
    assert stale_sweeps(swept_chapter) == [], "rewording the text stales nothing"
    recorded["claims"][0]["test"]["threshold"] = 0.6
    claims_file.write_text(json.dumps(recorded))
    source.write_text(source.read_text() + "\n# %%\nprint('changed')\n")
    (problem,) = stale_sweeps(swept_chapter)
    assert "sweep demo/seeds (01_demo) is stale" in problem
    assert (
        "chapters/demo/01_demo.py (code cells) (changed)" in problem
        and "claims.yml (claims of 01_demo) (changed)" in problem
    )
    assert problem.endswith(f"Refresh it: {COMMAND}")
    assert changed_files({"a": "1", "b": "2"}, {"b": "3", "c": "4"}) == ["a (removed)", "b (changed)", "c (added)"]


# --- the book's committed sweeps ---------------------------------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_committed_sweeps_ran_the_code_on_the_page(chapter):
    assert stale_sweeps(chapter) == []


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_recorded_verdicts_are_the_rule_applied_to_the_sweeps(chapter):
    for claim_id, evidence in chapter_evidence(chapter).items():
        assert evidence.claim.verdict == evidence.verdict, (
            f"{chapter.slug}/{claim_id}: claims.yml records {evidence.claim.verdict!r}, its sweep gives "
            f"{evidence.verdict!r} ({evidence.interval_text()}, {evidence.runs_text()})"
        )


COMMITTED_SWEEPS = sorted(path.parent for chapter in CHAPTERS for path in chapter.folder.glob("sweeps/*/sweep.json"))


@pytest.mark.parametrize("folder", COMMITTED_SWEEPS, ids=lambda f: f"{f.parents[1].name}/{f.name}")
def test_committed_reports_are_computed_from_the_runs(folder, tmp_path):
    settings, records = read_sweep(folder)
    write_report(tmp_path, settings, records, folder.parents[1] / "claims.yml")
    for name in ("report.md", "runs.csv", "robustness.csv", "sweep.json"):
        assert (tmp_path / name).read_text() == (folder / name).read_text(), f"{name} differs: rerun its command"
