"""Reruns: every notebook at the smoke profile, overrides, and bad parameters that must fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import papermill
import pytest

from conftest import CHAPTERS, NOTEBOOKS, ROOT
from reprobook.book.claims import parse_ledger
from reprobook.book.cli import main
from reprobook.book.notebooks import execution_seconds, printed_text, read_ledger
from reprobook.book.provenance import code_files, code_version
from reprobook.book.sweep import execute_again, printed_ledger

# Each test is a run of its own: any worker may take it (SPREAD_FILES in tests/conftest.py).
pytestmark = pytest.mark.slow


def reprobook(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reprobook.book.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_smoke_profile_runs_every_notebook(chapter, tmp_path, record_property):
    result = reprobook("run", chapter.slug, "--profile", "smoke", "--quiet", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, "the kernel's warnings must not reach the reader's terminal"
    for name in chapter.notebooks():
        output = tmp_path / f"{name}-smoke.ipynb"
        assert f"wrote {output}" in result.stdout
        executed = nbformat.read(output, as_version=4)
        record_property(f"smoke {chapter.slug}/{name}", execution_seconds(executed))  # for the time report
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
        ledger = printed_text(executed)
        assert "not judged at this profile" in ledger
        stored = read_ledger(executed)  # the same ledger as data, for programs such as `reprobook sweep`
        assert {e["claim"]: e["measured_text"] for e in stored} == parse_ledger(ledger)
        assert all(e["profile"] == "smoke" and not e["enforced"] for e in stored)


def test_one_committed_sweep_run_executes_again_to_the_same_ledger(tmp_path):
    """Every committed run can be reproduced, and one is on every commit: the one its hash picks."""
    records = sorted(ROOT.glob("chapters/*/sweeps/*/runs/*/run.json"))
    assert records, "the book commits the runs of its sweeps"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    path = records[int(commit or "0", 16) % len(records)]
    record = json.loads(path.read_text())
    chapter = next(c for c in CHAPTERS if c.slug == record["chapter"])
    assert record["code_version"] == code_version(code_files(chapter, record["notebook"])), f"{path} is stale"
    again = execute_again(record, chapter.folder, tmp_path)
    assert again["status"] == "ok", again["error"]
    assert printed_ledger(again) == printed_ledger(record), f"{path} did not reproduce"


def test_overrides_make_a_custom_run(tmp_path):
    chapter, name = NOTEBOOKS[0]
    result = reprobook(
        "run", chapter.slug, name[:2], "--profile", "smoke", "-p", "seed", "3", "--quiet", "--output", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (output,) = tmp_path.glob(f"{name}-smoke-custom-*.ipynb")
    assert f"wrote {output}" in result.stdout
    executed = nbformat.read(output, as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'profile = "custom"' in injected.source and "seed = 3" in injected.source
    assert "profile custom, seed 3" in executed.cells[injected_index(executed) + 1].outputs[0].text


def injected_index(notebook) -> int:
    return next(i for i, c in enumerate(notebook.cells) if "injected-parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize(
    "notebook, arguments, message",
    [
        ("fbipg/01", ["-p", "iterations", "-5"], "parameter 'iterations' of fbipg/01_method_and_rates must be"),
        ("fbipg/01", ["-p", "iteratons", "5"], "unknown parameter 'iteratons'"),
        ("fbipg/01", ["-p", "gamma", "fast"], "parameter 'gamma'"),
        ("proxsparse/01", ["-p", "lam", "0"], "parameter 'lam' of proxsparse/01_learning_masks must be a number >="),
        ("proxsparse/01", ["-p", "lams", "[0.1, -1.0]"], "parameter 'lams' of proxsparse/01_learning_masks"),
        ("proxsparse/02", ["-p", "training_batch", "0"], "parameter 'training_batch' of proxsparse/02"),
        ("mada/01", ["-p", "toy_lr", "0"], "parameter 'toy_lr' of mada/01_optimizer_space must be a number >="),
        ("mada/02", ["-p", "optimizers", "[adam, sgd]"], "parameter 'optimizers' of mada/02_language_modelling"),
        ("mada/03", ["-p", "beta2s", "[0.3, 0.9]"], "parameter 'beta2s' of mada/03_robustness"),
        ("c3dpo/02", ["-p", "penalty", "-0.1"], "parameter 'penalty' of c3dpo/02_collapse must be a number >="),
        ("c3dpo/03", ["-p", "characters", "z"], "parameter 'characters' of c3dpo/03_monotone_reward"),
        ("tail/01", ["-p", "lora_rank", "0"], "parameter 'lora_rank' of tail/01_parameters must be"),
        (
            "tail/02",
            ["-p", "adaptation_tasks", "[window-close-v3, fly-v3]"],
            "parameter 'adaptation_tasks' of tail/02_continual",
        ),
        ("tail/02", ["-p", "methods", "[fft, packnet]"], "parameter 'methods' of tail/02_continual"),
        ("tail/02", ["-p", "dtype", "float16"], "parameter 'dtype' of tail/02_continual"),
        ("lookahead_replicate/01", ["-p", "k_replicate", "0"], "parameter 'k_replicate' of lookahead_replicate/01"),
        ("lookahead_replicate/01", ["-p", "alpha", "-0.1"], "parameter 'alpha' of lookahead_replicate/01"),
        ("lookahead_replicate/02", ["-p", "games", "[breakout, pong]"], "parameter 'games' of lookahead_replicate/02"),
        ("lookahead_replicate/02", ["-p", "k_replicate", "0"], "parameter 'k_replicate' of lookahead_replicate/02"),
        ("lookahead_replicate/02", ["-p", "seeds", "1"], "parameter 'seeds' of lookahead_replicate/02_minatar"),
        ("fbipg/01", ["--profile", "nightly"], "invalid choice: 'nightly'"),
        ("fbipg/01", ["-p", "profile", "paper"], "-p profile: choose the profile with --profile"),
        ("fbipg/01", ["-p", "gammas", "[0.5, 1"], "-p gammas '[0.5, 1': expected ',' or ']'"),
        # parameters that name things: a model, a text, a local path
        (
            "prox24/03",
            ["-p", "model", "lab-huge"],
            "parameter 'model' of prox24/03_pruning_lab_llama must be a laboratory "
            "model name ['lab-comedy', 'lab-micro', 'lab-small', 'lab-tiny'] or an existing local "
            "checkpoint folder, got 'lab-huge'",
        ),
        ("prox24/03", ["-p", "evaluation_texts", "[validation, ~/no/such/text.txt]"], "parameter 'evaluation_texts'"),
        ("prox24/03", ["-p", "calibration_text", "training"], "a split of the book's corpus ['train', 'validation'"),
        ("prox24/03", ["--profile", "paper"], "an existing local checkpoint folder, got '~/models/Llama-2-7b-hf'"),
    ],
)
def test_bad_parameters_stop_the_cli_before_any_work(notebook, arguments, message, tmp_path):
    result = reprobook("run", *notebook.split("/"), "--quiet", "--output", str(tmp_path), *arguments)
    assert result.returncode == 2
    assert message in result.stderr
    assert not list(tmp_path.iterdir()), "nothing may run before the parameters are checked"


def test_unknown_chapter_and_notebook(capsys):
    assert main(["run", "nochapter"]) == 2
    assert "unknown chapter 'nochapter'" in capsys.readouterr().err
    assert main(["run", "fbipg", "07"]) == 2
    assert "notebook '07' of chapter 'fbipg' is unknown" in capsys.readouterr().err


def test_plain_papermill_with_a_bad_parameter_fails_in_the_setup_cell(tmp_path):
    chapter, name = next((c, n) for c, n in NOTEBOOKS if c.slug == "fbipg")
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(
            str(chapter.notebook(name)),
            str(tmp_path / "bad.ipynb"),
            parameters={"iterations": 0},
            cwd=str(chapter.folder),
            kernel_name="python3",
            progress_bar=False,
        )
    assert error.value.ename == "ParameterError"
    assert "parameter 'iterations' of fbipg/01_method_and_rates must be an integer >= 20" in error.value.evalue


def test_a_failed_run_keeps_its_partial_notebook(tmp_path):
    # fit_start beyond the last iteration passes validation but leaves no points to fit.
    result = reprobook(
        "run", "fbipg", "01", "--profile", "smoke", "-p", "fit_start", "100000", "--quiet", "--output", str(tmp_path)
    )
    assert result.returncode == 1
    (partial,) = tmp_path.glob("01_method_and_rates-smoke-custom-*.ipynb")
    assert f"the partial notebook is kept at {partial}" in result.stderr
    executed = nbformat.read(partial, as_version=4)
    assert any(o.output_type == "error" for c in executed.cells if c.cell_type == "code" for o in c.outputs)


def student_notebook(chapter) -> str:
    """The chapter's first notebook with an exercise (its solution removed), else its first."""
    for name in chapter.notebooks():
        if "{solution-start}" in chapter.notebook(name).read_text():
            return name
    return chapter.notebooks()[0]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_a_student_copy_runs_at_the_smoke_profile(chapter, tmp_path):
    """A student copy is a folder that runs: no solution, every file the notebook reads."""
    from reprobook.book.notebooks import execute
    from reprobook.book.profiles import load_profiles

    assert main(["--root", str(ROOT), "student", "--output", str(tmp_path)]) == 0
    folder = tmp_path / chapter.slug
    name = student_notebook(chapter)
    parameters = load_profiles(folder / "profiles.yml")[name].profile_values("smoke")
    executed = execute(folder / f"{name}.ipynb", tmp_path / "run.ipynb", cwd=folder, parameters=parameters)
    assert "not judged at this profile" in printed_text(executed)
