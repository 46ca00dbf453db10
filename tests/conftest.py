"""Shared fixtures: the book's root and its chapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobook.book.chapters import list_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = list_chapters(ROOT)
NOTEBOOKS = [(chapter, name) for chapter in CHAPTERS for name in chapter.notebooks()]


def notebook_id(item) -> str:
    chapter, name = item
    return f"{chapter.slug}/{name}"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
