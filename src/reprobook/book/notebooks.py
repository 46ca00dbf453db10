"""Jupytext pairs and executed notebooks: pairing, execution, cleaning, student copies.

The ``.py`` (py:percent) file of a pair is the reviewed source; the ``.ipynb``
holds the same cells with the outputs the book renders and nbval checks.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jupytext
import nbformat

from reprobook.atomic import atomic_write_text
from reprobook.book.claims import LEDGER_FILE_VARIABLE

if TYPE_CHECKING:
    from traitlets.config import Config

KERNEL = "python3"
#: Where an executed notebook keeps its claims ledger as data: ``notebook.metadata[METADATA_KEY]["ledger"]``.
METADATA_KEY = "reprobook"
SOLUTION_TAG = "solution"
INJECTED_TAG = "injected-parameters"
#: A py:percent cell's first line, and that of the cell tagged ``parameters``.
CELL_MARKER = re.compile(r"^# %%.*$", re.MULTILINE)
PARAMETERS_MARKER = re.compile(r'^# %%.*\btags=\[[^\]]*"parameters"[^\]]*\].*$', re.MULTILINE)


def cell_signature(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of each cell, the part of a notebook both sides of a pair share."""
    return [
        (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", [])))
        for cell in notebook.cells
        if INJECTED_TAG not in cell.metadata.get("tags", [])
    ]


def pair_differences(source: Path) -> list[str]:
    """Describe how the ``.ipynb`` beside ``source`` (a ``.py``) differs from it; empty when in sync."""
    executed = source.with_suffix(".ipynb")
    if not executed.is_file():
        return [f"{executed} is missing"]
    left = cell_signature(jupytext.read(source))
    right = cell_signature(nbformat.read(executed, as_version=4))
    if len(left) != len(right):
        return [f"{source.name} has {len(left)} cells, {executed.name} has {len(right)}"]
    return [
        f"cell {index}: {a[0]} {a[2]} in {source.name} vs {b[0]} {b[2]} in {executed.name}:\n"
        f"  {a[1][:120]!r}\n  {b[1][:120]!r}"
        for index, (a, b) in enumerate(zip(left, right))
        if a != b
    ]


def execute(
    source: Path, output: Path, cwd: Path, parameters: dict[str, Any] | None = None, progress: bool = True
) -> nbformat.NotebookNode:
    """Execute the py:percent ``source`` with papermill into ``output``.

    Papermill writes ``output`` after every cell, so a failed run leaves its
    partial notebook there, error included. The kernel is reached through Unix
    sockets in a private temporary folder (where the system has them), not over
    TCP on localhost: nothing else on the machine can talk to it.

    The claims ledger the notebook reports is stored, as data, in the executed
    notebook's metadata (read it back with :func:`read_ledger`).
    """
    import papermill  # imported here: it takes a noticeable part of a second

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as folder:
        unexecuted = Path(folder) / source.with_suffix(".ipynb").name
        ledger_file = Path(folder) / "ledger.json"
        nbformat.write(notebook, unexecuted)
        with _kernel_environment({LEDGER_FILE_VARIABLE: str(ledger_file)}):
            executed = papermill.execute_notebook(
                str(unexecuted),
                str(output),
                parameters=parameters or {},
                cwd=str(cwd),
                kernel_name=KERNEL,
                progress_bar=progress,
                log_output=False,
                config=_kernel_transport(Path(folder)),
            )
        if ledger_file.is_file():
            executed.metadata[METADATA_KEY] = {"ledger": json.loads(ledger_file.read_text())}
            atomic_write_text(output, nbformat.writes(executed) + "\n")
    return executed


def printed_text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's code cells printed, in order (a kernel may split one print in chunks)."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


def execution_seconds(notebook: nbformat.NotebookNode) -> float:
    """The seconds an executed notebook spent in its code cells (papermill's timings; kernel start excluded)."""
    return sum(
        cell.metadata.get("papermill", {}).get("duration") or 0.0 for cell in notebook.cells if cell.cell_type == "code"
    )


def read_ledger(notebook: nbformat.NotebookNode) -> list[dict[str, Any]] | None:
    """The claims ledger an executed notebook stored (one dict per claim), or None if it has none."""
    return notebook.metadata.get(METADATA_KEY, {}).get("ledger")


@contextmanager
def _kernel_environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel papermill starts (it inherits this process's)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _kernel_transport(folder: Path) -> Config:
    """IPC sockets under ``folder`` for the kernel, where the system has Unix sockets."""
    from traitlets.config import Config

    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "kernel")}})


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop papermill's metadata and timings and the ledger's data, and number the cell ids, so reruns diff cleanly."""
    notebook.metadata.pop("papermill", None)
    notebook.metadata.pop(METADATA_KEY, None)
    for index, cell in enumerate(notebook.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.id = f"cell-{index:03d}"
    return notebook


def reproduce(source: Path, progress: bool = True) -> Path:
    """Re-execute a pair in place at its ``book`` profile (the parameters cell's values).

    The ``.ipynb`` is replaced atomically only after the whole notebook ran.
    """
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / source.with_suffix(".ipynb").name
        executed = clean(execute(source, output, cwd=source.parent, progress=progress))
    return atomic_write_text(source.with_suffix(".ipynb"), nbformat.writes(executed) + "\n")


def student_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without its solution cells and without any outputs."""
    copy = nbformat.from_dict(notebook)
    copy.cells = [c for c in copy.cells if SOLUTION_TAG not in c.metadata.get("tags", [])]
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return copy


def default_parameters(source: Path) -> dict[str, Any]:
    """The values assigned in the cell tagged ``parameters`` of a py:percent source.

    The cell is found by its marker line (``# %% tags=["parameters"]``) rather than by
    parsing the whole notebook, so that ``reprobook list`` reads thirty notebooks at once.
    """
    text = source.read_text(encoding="utf-8")
    markers = list(PARAMETERS_MARKER.finditer(text))
    if len(markers) != 1:
        raise ValueError(f"{source} must have exactly one cell tagged 'parameters', found {len(markers)}")
    cell = CELL_MARKER.split(text[markers[0].end() :], maxsplit=1)[0]
    values = {}
    for statement in ast.parse(cell).body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            raise ValueError(f"the parameters cell of {source} may only hold 'name = literal' lines")
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    return values
