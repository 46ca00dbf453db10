"""Where the book's chapters live and what each holds.

A chapter is a folder ``chapters/<slug>/`` with ``index.md``, ``claims.yml``,
``profiles.yml`` and jupytext pairs ``NN_name.py`` + ``NN_name.ipynb``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_ENVIRONMENT_VARIABLE = "REPROBOOK_ROOT"


def find_book_root(start: str | os.PathLike | None = None) -> Path:
    """Return the book's root folder (the one holding ``_toc.yml`` and ``chapters/``).

    Walks up from ``start``; without ``start``, looks at ``$REPROBOOK_ROOT``
    first, then walks up from the current directory.
    """
    configured = os.environ.get(ROOT_ENVIRONMENT_VARIABLE)
    if start is None and configured:
        root = Path(configured).expanduser().resolve()
        if not (root / "chapters").is_dir():
            raise FileNotFoundError(
                f"{ROOT_ENVIRONMENT_VARIABLE}={configured} has no chapters/ folder; "
                "point it at the book's root (the folder with _toc.yml)"
            )
        return root
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "chapters").is_dir():
            return folder
    raise FileNotFoundError(
        f"no book found at or above {here}: run from the book's folder or set {ROOT_ENVIRONMENT_VARIABLE}"
    )


@dataclass(frozen=True)
class Chapter:
    """One chapter folder of the book."""

    slug: str
    folder: Path

    @property
    def claims_file(self) -> Path:
        return self.folder / "claims.yml"

    @property
    def profiles_file(self) -> Path:
        return self.folder / "profiles.yml"

    def notebooks(self) -> list[str]:
        """Names (without suffix) of the chapter's notebooks, in reading order."""
        return sorted(path.stem for path in self.folder.glob("[0-9][0-9]_*.py"))

    def source(self, notebook: str) -> Path:
        """The reviewed jupytext source ``NN_name.py`` of a notebook."""
        return self.folder / f"{notebook}.py"

    def notebook(self, notebook: str) -> Path:
        """The executed ``NN_name.ipynb`` of a notebook (the one the book renders)."""
        return self.folder / f"{notebook}.ipynb"

    def resolve_notebook(self, name: str) -> str:
        """Accept a notebook's full name, its number (``01``) or a unique prefix."""
        names = self.notebooks()
        matches = [n for n in names if n == name or n.startswith(name) or n.split("_", 1)[1] == name]
        if len(matches) != 1:
            raise ValueError(
                f"notebook {name!r} of chapter {self.slug!r} is "
                f"{'ambiguous' if matches else 'unknown'}; expected one of {names}"
            )
        return matches[0]


def list_chapters(root: Path | None = None) -> list[Chapter]:
    """All chapters of the book, sorted by slug."""
    root = root or find_book_root()
    folders = sorted(p for p in (root / "chapters").iterdir() if (p / "claims.yml").is_file())
    return [Chapter(slug=p.name, folder=p) for p in folders]


def get_chapter(slug: str, root: Path | None = None) -> Chapter:
    """The chapter named ``slug``, with a clear error when there is none."""
    chapters = list_chapters(root)
    for chapter in chapters:
        if chapter.slug == slug:
            return chapter
    raise ValueError(f"unknown chapter {slug!r}; expected one of {[c.slug for c in chapters]}")
