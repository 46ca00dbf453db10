"""`reprobook sweep`: runs on a local Dask cluster, failures, resuming, validation, and the report.

The sweeps run a tiny demo chapter (one notebook, one claim whose value is known in closed form)
in a book made for the test, so every recorded number can be checked against what it must be.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from reprobook.book.chapters import Chapter
from reprobook.book.claims import parse_ledger
from reprobook.book.cli import main
from reprobook.book.notebooks import printed_text, read_ledger
from reprobook.book.provenance import code_files, code_version
from reprobook.book.sweep import (
    MALLOC_TRIM,
    NOTEBOOK_FILE,
    execute_run,
    parse_seeds,
    plan_sweep,
    run_folder,
    run_sweep,
    split_values,
)
from reprobook.book.sweep_report import committed_robustness, robustness, write_report

pytestmark = pytest.mark.slow

NOTEBOOK = "01_demo"
DEMO_SOURCE = """\
# %% tags=["parameters"]
profile = "book"
seed = 0
scale = 1.0
fail = False

# %%
import numpy as np

from reprobook.book.claims import ClaimsLedger

if fail:
    raise RuntimeError("this combination fails on purpose")
ledger = ClaimsLedger.for_notebook("01_demo", profile=profile)
ledger.record("below-one", scale * np.random.default_rng(seed).uniform())

# %% tags=["nbval-check-output"]
ledger.report()
"""
DEMO_PROFILES = """\
chapter: demo
notebooks:
  01_demo:
    parameters:
      scale:
        type: float
        min: 0.0
        max: 10.0
        help: factor on the uniform draw
      fail:
        type: bool
        help: raise before the ledger
    profiles:
      smoke: {scale: 0.5}
      book: {}
      paper: {}
"""
DEMO_CLAIMS = """\
chapter: demo
claims:
  - id: below-one
    kind: reproduction
    notebook: 01_demo
    statement: a scaled uniform draw stays below one
    paper_value: null
    paper_source: the test's own construction
    metric: scale times a uniform draw of the run's seed
    profile: book
    test: {compare: "<", threshold: 1.0}
    digits: 3
    fails_if: the scaled draw reaches one
    verdict: reproduced
    reason: a uniform draw is below one
"""


def expected_value(scale: float, seed: int) -> float:
    return scale * np.random.default_rng(seed).uniform()


@pytest.fixture
def demo(tmp_path) -> Chapter:
    """A book with one chapter, ``demo``, in ``tmp_path/book``."""
    root = tmp_path / "book"
    folder = root / "chapters" / "demo"
    folder.mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (folder / f"{NOTEBOOK}.py").write_text(DEMO_SOURCE)
    (folder / "profiles.yml").write_text(DEMO_PROFILES)
    (folder / "claims.yml").write_text(DEMO_CLAIMS)
    return Chapter(slug="demo", folder=folder)


def sweep(demo: Chapter, output: Path, *arguments: str) -> int:
    return main(["--root", str(demo.folder.parents[1]), "sweep", "demo", "01", *arguments, "--output", str(output)])


def test_a_sweep_records_every_run_and_its_table_matches_the_ledgers(demo, tmp_path, capsys):
    output = tmp_path / "sweep"
    assert sweep(demo, output, "--seeds", "0-1", "-p", "scale", "0.5,3", "--workers", "2") == 0
    shown = capsys.readouterr().out
    assert "4 runs: 0 already done, 4 to run" in shown and "[4/4]" in shown
    table = pd.read_csv(output / "runs.csv")
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    for _, row in table.iterrows():
        value = expected_value(row["scale"], row["seed"])
        assert row["below-one"] == pytest.approx(value, rel=1e-12)
        assert row["below-one verdict"] == ("reproduced" if value < 1 else "not-reproduced")
    runs = plan_sweep(demo, [NOTEBOOK], "smoke", [0, 1], {"scale": ["0.5", "3"]})
    for run in runs:
        record = json.loads((run_folder(output, run) / "run.json").read_text())
        executed = nbformat.read(run_folder(output, run) / NOTEBOOK_FILE, as_version=4)
        assert record["ledger"] == read_ledger(executed)  # the ledger the notebook stored as data
        printed = parse_ledger(printed_text(executed))
        assert printed == {"below-one": record["ledger"][0]["measured_text"]}
        assert record["parameters"] == {"profile": "custom", "scale": run.swept["scale"], "seed": run.seed}
    counts = pd.read_csv(output / "robustness.csv")
    assert list(counts["holds"]) == ["2 of 2", "0 of 2"]  # three times these two draws exceeds one
    assert (output / "plots" / "below-one-scale.png").stat().st_size > 1000
    report = (output / "report.md").read_text()
    assert "| below-one" in report and "![below-one against scale](plots/below-one-scale.png)" in report

    before = {run.key: (run_folder(output, run) / "run.json").stat().st_mtime_ns for run in runs}
    assert sweep(demo, output, "--seeds", "0-1", "-p", "scale", "0.5,3") == 0
    assert "4 runs: 4 already done, 0 to run" in capsys.readouterr().out
    assert before == {run.key: (run_folder(output, run) / "run.json").stat().st_mtime_ns for run in runs}
    assert sweep(demo, output, "--seeds", "0-2", "-p", "scale", "0.5,3", "--workers", "1") == 0
    assert "6 runs: 4 already done, 2 to run" in capsys.readouterr().out
    assert len(pd.read_csv(output / "runs.csv")) == 6
    settings = json.loads((output / "sweep.json").read_text())
    assert settings["code_files"][NOTEBOOK] == code_files(demo, NOTEBOOK)
    assert settings["code_version"][NOTEBOOK] == record["code_version"] == runs[0].code_version

    source = demo.source(NOTEBOOK)  # the code changes: its runs are no longer evidence, and go
    source.write_text(source.read_text().replace("scale * np.random", "1.0 * scale * np.random"))
    assert sweep(demo, output, "--seeds", "0", "-p", "scale", "0.5", "--workers", "1") == 0
    shown = capsys.readouterr().out
    assert "removed 6 runs made by an earlier version of the code" in shown and "1 runs: 0 already done" in shown
    assert len(list(output.glob("runs/*/run.json"))) == 1


def test_a_failing_combination_is_recorded_and_the_others_complete(demo, tmp_path, capsys):
    output = tmp_path / "sweep"
    assert sweep(demo, output, "--seeds", "3", "-p", "fail", "false,true", "--workers", "2") == 1
    assert "1 of 2 runs failed" in capsys.readouterr().out
    table = pd.read_csv(output / "runs.csv").set_index("fail")
    assert table.loc[False, "status"] == "ok" and table.loc[True, "status"] == "failed"
    assert table.loc[False, "below-one"] == pytest.approx(expected_value(0.5, 3), rel=1e-12)  # the smoke scale
    failed = plan_sweep(demo, [NOTEBOOK], "smoke", [3], {"fail": ["true"]})[0]
    record = json.loads((run_folder(output, failed) / "run.json").read_text())
    assert record["error"].startswith("RuntimeError in cell") and "fails on purpose" in record["error"]
    partial = nbformat.read(run_folder(output, failed) / NOTEBOOK_FILE, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in partial.cells if c.cell_type == "code" for o in c.outputs)
    assert "fails on purpose" in (output / "report.md").read_text()


def test_a_runs_kernel_keeps_the_systems_memory_trimming(demo, tmp_path, monkeypatch):
    """A Dask worker's low trim threshold would make the kernel map and unmap memory at every step."""
    seen = []
    monkeypatch.setenv(MALLOC_TRIM, "65536")  # as Dask's nannies set it for their workers

    def execute(*args, **kwargs):
        seen.append(os.environ.get(MALLOC_TRIM))
        raise RuntimeError("stop before any kernel starts")

    monkeypatch.setattr(sys.modules[execute_run.__module__], "execute", execute)
    record = execute_run(plan_sweep(demo, [NOTEBOOK], "smoke", [0], {})[0], demo.folder, tmp_path)
    assert seen == [None] and record["error"] == "RuntimeError: stop before any kernel starts"


def dies_at_seed_one(run, chapter_folder, output):
    """A task whose worker process dies on the run of seed 1, every time it is tried."""
    if run.seed == 1:
        os._exit(1)
    return execute_run(run, chapter_folder, output)


def test_a_worker_that_dies_is_retried_once_then_its_run_is_recorded_as_failed(demo, tmp_path):
    runs = plan_sweep(demo, [NOTEBOOK], "smoke", [0, 1], {})
    lines = []
    records = run_sweep(runs, demo.folder, tmp_path, workers=2, task=dies_at_seed_one, progress=lines.append)
    assert [r["status"] for r in records] == ["ok", "failed"]
    assert records[1]["error"] == "the worker died twice running it"
    assert json.loads((run_folder(tmp_path, runs[1]) / "run.json").read_text())["status"] == "failed"
    assert records[0]["ledger"][0]["measured"] == pytest.approx(expected_value(0.5, 0), rel=1e-12)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["-p", "scale", "0.5,11"], "parameter 'scale' of demo/01_demo must be a number >= 0.0 and <= 10.0, got 11.0"),
        (["-p", "scales", "1"], "unknown parameter 'scales' for demo/01_demo"),
        (["-p", "seed", "1,2"], "-p seed: a sweep sets 'seed' itself"),
        (["--seeds", "4-2"], "--seeds must be seeds >= 0"),
        (["-p", "scale", "0.5,,1"], "must be a comma-separated list"),
        (["--workers", "0"], "--workers must be a positive number"),
        (["-p", "scale", "0.5,{1"], "-p scale '{1': expected ',' or '}'"),
        (["-p", "profile", "paper"], "-p profile: choose the profile with --profile"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler 'tcp://127.0.0.1:1': no Dask scheduler answers there"),
    ],
)
def test_bad_input_fails_before_any_run(demo, tmp_path, capsys, arguments, message):
    output = tmp_path / "sweep"
    assert sweep(demo, output, *arguments) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_keys_follow_parameters_seed_and_code():
    chapter = Chapter(slug="prox24", folder=Path(__file__).resolve().parents[1] / "chapters" / "prox24")
    runs = plan_sweep(chapter, ["02_toy_layers"], "smoke", [0, 1], {"strength": ["0.01", "0.03"], "rhos": ["[0.9]"]})
    assert len({run.key for run in runs}) == 4
    assert runs == plan_sweep(
        chapter, ["02_toy_layers"], "smoke", [0, 1], {"strength": ["0.01", "0.03"], "rhos": ["[0.9]"]}
    )
    assert runs[0].parameters["rhos"] == [0.9] and runs[0].parameters["out_features"] == 8  # the smoke value
    assert runs[0].code_version == code_version(code_files(chapter, "02_toy_layers"))
    assert runs[0].code_version != code_version(code_files(chapter, "01_prox_operator"))
    assert parse_seeds("0-2,5,1") == [0, 1, 2, 5]
    assert split_values("[1, 2],[3],4") == ["[1, 2]", "[3]", "4"]


def test_report_counts_match_a_hand_made_ledger_table(tmp_path):
    def record(key, seed, scale, value, observed):
        entry = {
            "claim": "below-one",
            "kind": "reproduction",
            "measured": value,
            "compare": "<",
            "threshold": 1.0,
            "paper_value": None,
            "observed": observed,
            "recorded": "reproduced",
            "recorded_at": "book",
        }
        return {"key": key, "notebook": NOTEBOOK, "seed": seed, "swept": {"scale": scale}, "status": "ok",
                "error": None, "ledger": [{"notebook": NOTEBOOK, **entry}]}  # fmt: skip

    records = [
        record("a", 0, 1.0, 0.2, "reproduced"),
        record("b", 1, 1.0, 0.9, "reproduced"),
        record("c", 2, 1.0, 1.3, "not-reproduced"),
        record("d", 0, 2.0, 1.8, "not-reproduced"),
        record("e", 1, 2.0, 0.4, "reproduced"),
        {
            "key": "f",
            "notebook": NOTEBOOK,
            "seed": 2,
            "swept": {"scale": 2.0},
            "status": "failed",
            "error": "ZeroDivisionError in cell 2: boom",
            "ledger": None,
        },  # fmt: skip
    ]
    folder = tmp_path / "chapter" / "sweeps" / "scale"
    settings = {"chapter": "demo", "notebooks": [NOTEBOOK], "profile": "smoke", "seeds": "0-2",
                "grid": {"scale": ["1", "2"]}, "command": "reprobook sweep demo"}  # fmt: skip
    write_report(folder, settings, records)
    table = pd.read_csv(folder / "robustness.csv")
    assert list(table["holds"]) == ["2 of 3", "1 of 2"]
    assert list(table["median"]) == [0.9, pytest.approx(1.1)] and list(table["max"]) == [1.3, 1.8]
    assert committed_robustness(tmp_path / "chapter") == {"below-one": "3 of 5 runs (sweep `scale`)"}
    report = (folder / "report.md").read_text()
    assert "6 runs, 5 finished, 1 failed" in report and "- `f`: ZeroDivisionError in cell 2: boom" in report
    runs = pd.read_csv(folder / "runs.csv")
    assert list(runs["below-one verdict"].fillna("-")) == [r["ledger"][0]["observed"] for r in records[:5]] + ["-"]
    claims_file = tmp_path / "demo" / "claims.yml"  # recorded since the runs: the report compares with it
    claims_file.parent.mkdir()
    claims_file.write_text(DEMO_CLAIMS.replace("verdict: reproduced", "verdict: not-reproduced"))
    write_report(tmp_path / "again", settings, records, claims_file)
    again = pd.read_csv(tmp_path / "again" / "robustness.csv")
    assert list(again["holds"]) == ["1 of 3", "1 of 2"] and set(again["recorded"]) == {"not-reproduced"}
    claims = pd.DataFrame([{**r["ledger"][0], "seed": r["seed"], **r["swept"]} for r in records[:5]])
    claims["held"] = claims["observed"] == claims["recorded"]
    assert robustness(claims, ["scale"])["held"].tolist() == [2, 1]
