"""Shared fixtures and the suite's habits: one thread per test process, a time report per file."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

from reprobook.book.chapters import list_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = list_chapters(ROOT)
NOTEBOOKS = [(chapter, name) for chapter in CHAPTERS for name in chapter.notebooks()]
#: How many of the slowest files the summary lists.
SLOWEST_SHOWN = 12


def notebook_id(item) -> str:
    chapter, name = item
    return f"{chapter.slug}/{name}"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def pytest_configure(config):
    """Every test process computes on one thread: `make test` runs one process per core."""
    torch.set_num_threads(1)
    threadpool_limits(limits=1)


def pytest_terminal_summary(terminalreporter):
    """The slowest files (a notebook under nbval, a test module), their tests' times summed."""
    seconds = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            if hasattr(report, "duration") and hasattr(report, "nodeid") and report.nodeid:
                seconds[report.nodeid.split("::")[0]] += report.duration
    if not seconds:
        return
    terminalreporter.section("slowest files (seconds, summed over their tests)")
    for path, total in sorted(seconds.items(), key=lambda item: -item[1])[:SLOWEST_SHOWN]:
        terminalreporter.write_line(f"{total:8.1f}  {path}")
