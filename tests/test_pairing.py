"""Each chapter's jupytext pairs: in sync, clean, shaped as the book's notebooks are."""

from __future__ import annotations

import json

import jupytext
import nbformat
import pytest
import yaml

from conftest import NOTEBOOKS, ROOT, notebook_id
from reprobook.book.notebooks import default_parameters, pair_differences


@pytest.mark.parametrize("item", NOTEBOOKS, ids=notebook_id)
def test_py_and_ipynb_hold_the_same_cells(item):
    chapter, name = item
    differences = pair_differences(chapter.source(name))
    assert not differences, "the pair is out of sync; edit the .py, then run `make reproduce`:\n" + "\n".join(
        differences
    )


@pytest.mark.parametrize("item", NOTEBOOKS, ids=notebook_id)
def test_parameters_found_by_their_marker_line_are_those_jupytext_reads(item):
    chapter, name = item
    source = chapter.source(name)
    cells = [c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", [])]
    namespace = {}
    exec(cells[0].source, {}, namespace)
    assert default_parameters(source) == namespace


@pytest.mark.parametrize("item", NOTEBOOKS, ids=notebook_id)
def test_executed_notebook_is_clean_and_complete(item):
    chapter, name = item
    raw = chapter.notebook(name).read_text()
    assert "papermill" not in json.loads(raw)["metadata"], "papermill metadata left in the notebook"
    assert '"injected-parameters"' not in raw, "a papermill run with -p was written over the notebook"
    notebook = nbformat.read(chapter.notebook(name), as_version=4)
    assert notebook.metadata.kernelspec.name == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell holds the parameters"
    assert "nbval-check-output" in code[-1].metadata.get("tags", []), "the last cell is the ledger"
    assert code[-1].source.strip() == "ledger.report()"
    assert all(c.execution_count is not None for c in code), "every cell ran, in one clean execution"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, "the committed notebook holds an error"
    stderr = [o.text[:200] for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"warnings or progress bars left in the committed outputs: {stderr}"


def test_table_of_contents_lists_every_notebook():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = json.dumps(toc)
    for chapter, name in NOTEBOOKS:
        assert f"chapters/{chapter.slug}/{name}" in files
        assert f"chapters/{chapter.slug}/index" in files


#: The widest code line the book's page shows without a scroll bar (see chapters/ruff.toml and
#: the browser check in test_book.py, which measures it); solutions sit in a narrower box.
CODE_WIDTH = 88
SOLUTION_WIDTH = 84


@pytest.mark.parametrize("item", NOTEBOOKS, ids=notebook_id)
def test_code_cells_fit_the_page(item):
    chapter, name = item
    cells = jupytext.read(chapter.source(name)).cells
    long = []
    for index, cell in enumerate(cells):
        width = SOLUTION_WIDTH if "solution" in cell.metadata.get("tags", []) else CODE_WIDTH
        if cell.cell_type == "code":
            long += [
                f"cell {index}: {len(line)} > {width} characters: {line.strip()[:60]}"
                for line in cell.source.splitlines()
                if len(line) > width
            ]
    assert not long, "code lines wider than the page's column (`make format`, then shorten):\n" + "\n".join(long)
