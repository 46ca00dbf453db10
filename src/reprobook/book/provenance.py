"""What a chapter's runs execute, file by file: the code version of a sweep's runs.

A committed run is evidence for a verdict only while the code that produced it is the code
on the page. Hashing the whole library would make every change anywhere (the CLI, another
chapter's subpackage) stale every chapter's evidence, so :func:`code_files` follows what one
notebook's run really executes:

- the notebook's code cells (with their tags; its prose is not executed, so rewording the
  text stales nothing) and the chapter's ``profiles.yml``;
- the definitions its ledger judges with: each of the notebook's claims in ``claims.yml``,
  its fields that decide what a run records (its id, kind, profile, paper value, tests and
  digits), not its prose or the verdict, reason and sweep written after the runs;
- every module of the library it imports, transitively (found by reading the ``import``
  statements, including those inside functions and the names a package's
  ``lazy_loader.attach`` maps to its submodules), with the package ``__init__`` files Python
  runs on the way, and the data files shipped in those packages (the pinned models);
- the published data files it reads from the data folder (``$REPROBOOK_DATA``): whether each
  is there, since without it the notebook runs on a synthetic stand-in.

A change to any of these files changes the hash; a test names the files that changed.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

import reprobook
from reprobook.book.chapters import Chapter
from reprobook.book.claims import CLAIMS_SCHEMA, ClaimsFileError
from reprobook.book.yaml_files import read_yaml

LIBRARY = Path(reprobook.__file__).parent
PACKAGE = LIBRARY.name
#: The fields of a claim that decide what a run records in its ledger (the rest is prose, or written after the runs).
JUDGED_FIELDS = ("id", "kind", "notebook", "profile", "paper_value", "test", "direction", "digits", "roundoff")


def module_file(name: str) -> Path | None:
    """The source file of a library module (``reprobook.design.head``), or None if it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = LIBRARY.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def lazy_submodules(package: str) -> dict[str, str]:
    """The names a package's ``lazy_loader.attach(..., submod_attrs=...)`` maps, each to its submodule."""
    path = module_file(package)
    if path is None or path.name != "__init__.py":
        return {}
    names: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "submod_attrs" and isinstance(node.value, ast.Dict):
            for key, values in zip(node.value.keys, node.value.values, strict=True):
                submodule = ast.literal_eval(key)
                names[submodule] = f"{package}.{submodule}"
                for attribute in ast.literal_eval(values):
                    names[attribute] = f"{package}.{submodule}"
    return names


def imported_modules(source: str, module: str | None = None) -> set[str]:
    """The library modules a source imports anywhere in it (``module`` resolves relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
                found.update(lazy_submodules(alias.name).values())  # attributes used later: all of them
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = (module or "").split(".")
                parent = parent[: len(parent) - node.level + (1 if _is_package(module) else 0)]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            lazy = lazy_submodules(base)
            for alias in node.names:
                found.add(lazy.get(alias.name, f"{base}.{alias.name}"))
    return {name for name in found if module_file(name) is not None}


def _is_package(module: str | None) -> bool:
    path = module_file(module) if module else None
    return path is not None and path.name == "__init__.py"


def library_closure(roots: set[str]) -> set[str]:
    """The modules ``roots`` import, transitively, with every package Python initializes on the way."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported_modules(module_file(name).read_text(), name)
    return seen


def package_data(modules: set[str]) -> list[Path]:
    """The non-Python files shipped in the packages of ``modules`` (not in their Python subpackages)."""
    files = []
    for folder in {module_file(name).parent for name in modules}:
        for path in folder.rglob("*"):
            inside_subpackage = any(
                (parent / "__init__.py").is_file()
                for parent in path.parents
                if parent != folder and folder in parent.parents
            )
            if path.is_file() and path.suffix not in (".py", ".pyc") and not inside_subpackage:
                files.append(path)
    return files


def data_inputs(modules: set[str]) -> dict[str, str]:
    """The published data files the modules read from the data folder, each as found now.

    Only DopeWolfe's feature files live there; a run without them uses synthetic features,
    so "absent" and "published" runs must never be mixed in one sweep.
    """
    if "reprobook.design.data" not in modules:
        return {}
    from reprobook.cache import file_sha256
    from reprobook.design.data import DATA_ENVIRONMENT_VARIABLE, FEATURE_FILES, data_folder

    found = {}
    for expected in FEATURE_FILES.values():
        folder = data_folder()
        path = None if folder is None else folder / "dopewolfe" / expected.filename
        present = path is not None and path.is_file()
        status = "published" if present and file_sha256(path) == expected.sha256 else "absent or different"
        found[f"${DATA_ENVIRONMENT_VARIABLE}/dopewolfe/{expected.filename}"] = _digest(status.encode())
    return found


def claim_definitions(chapter: Chapter, notebook: str) -> bytes:
    """The notebook's claims as the ledger judges them: their :data:`JUDGED_FIELDS`."""
    claims = read_yaml(chapter.claims_file, CLAIMS_SCHEMA, ClaimsFileError, "claims")["claims"]
    kept = [
        {key: value for key, value in claim.items() if key in JUDGED_FIELDS}
        for claim in claims
        if claim["notebook"] == notebook
    ]
    return json.dumps(kept, sort_keys=True).encode()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def code_cells(source: Path) -> str:
    """The code a notebook's source runs: its code cells, each with its tags, in order."""
    import jupytext

    cells = jupytext.read(source).cells
    return "\n".join(
        json.dumps([cell.metadata.get("tags", []), cell.source]) for cell in cells if cell.cell_type == "code"
    )


def code_files(chapter: Chapter, notebook: str) -> dict[str, str]:
    """Each file one run of ``notebook`` executes, by its path in the book, with its content's hash."""
    source = chapter.source(notebook)
    modules = library_closure(imported_modules(source.read_text()))
    library_files = [module_file(name) for name in modules] + package_data(modules)
    prefix = f"chapters/{chapter.slug}"
    files = {
        f"{prefix}/{source.name} (code cells)": _digest(code_cells(source).encode()),
        f"{prefix}/{chapter.profiles_file.name}": _digest(chapter.profiles_file.read_bytes()),
        f"{prefix}/{chapter.claims_file.name} (claims of {notebook})": _digest(claim_definitions(chapter, notebook)),
    }
    for path in library_files:
        files[f"src/{path.relative_to(LIBRARY.parent).as_posix()}"] = _digest(path.read_bytes())
    files.update(data_inputs(modules))
    return dict(sorted(files.items()))


def code_version(files: dict[str, str]) -> str:
    """One hash of a run's :func:`code_files`: it changes when any of them does."""
    return _digest(json.dumps(files, sort_keys=True).encode())


def changed_files(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The files that differ between two :func:`code_files` maps, each marked changed, added or removed."""
    return [
        f"{path} ({'added' if path not in recorded else 'removed' if path not in current else 'changed'})"
        for path in sorted(set(recorded) | set(current))
        if recorded.get(path) != current.get(path)
    ]
