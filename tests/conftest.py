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


def kind_of_test(nodeid: str) -> str:
    """What a test checks, for the time report: a notebook under nbval, a smoke run, the book, or a unit."""
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        return "nbval"
    return {"tests/test_runs.py": "smoke", "tests/test_book.py": "book"}.get(path, "unit")


#: The order in which the kinds are handed out: the longest first (the book build is one task of
#: minutes, then the notebooks), the many short tests last, so that both workers end together.
SCHEDULE_ORDER = ("book", "nbval", "smoke", "unit")
#: Files whose tests are independent runs of seconds that any worker may take: the smoke and
#: bad-parameter runs of every notebook.
SPREAD_FILES = {"tests/test_runs.py"}


def pytest_collection_modifyitems(config, items):
    """Hand out the longest kinds first (``SCHEDULE_ORDER``); mark what `make portability` reruns.

    The notebooks are marked ``portability``, as are the tests of kernels and threads.
    """
    for item in items:
        if kind_of_test(item.nodeid) == "nbval":  # every checked output must hold on every CPU
            item.add_marker(pytest.mark.portability)
    items.sort(key=lambda item: SCHEDULE_ORDER.index(kind_of_test(item.nodeid)))


def pytest_xdist_make_scheduler(config, log):
    """`make test`'s schedule: a file's tests stay on one worker, in the order collected.

    A notebook's cells share one kernel, and a module's fixtures are built once; the tests of
    ``SPREAD_FILES`` go to whichever worker is free.
    """
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return nodeid if path in SPREAD_FILES else path

    return FileScheduling(config, log)


#: Seconds per file, every phase of every test (setup, call, teardown: a module's fixtures count).
FILE_SECONDS: defaultdict[str, float] = defaultdict(float)
#: Each notebook's smoke run: its cells' seconds (``test_runs`` records them as user properties).
SMOKE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Collect the time report (on the controller, from every worker's reports)."""
    FILE_SECONDS[report.nodeid.split("::")[0]] += report.duration
    SMOKE_SECONDS.update(
        (name.removeprefix("smoke "), value) for name, value in report.user_properties if name.startswith("smoke ")
    )


def pytest_terminal_summary(terminalreporter):
    """The slowest files (a notebook under nbval, a test module), the time of each kind of test, the smoke runs."""
    if not FILE_SECONDS:
        return
    terminalreporter.section("slowest files (seconds, summed over their tests' setup, call and teardown)")
    for path, total in sorted(FILE_SECONDS.items(), key=lambda item: -item[1])[:SLOWEST_SHOWN]:
        terminalreporter.write_line(f"{total:8.1f}  {path}")
    kinds = defaultdict(float)
    for path, total in FILE_SECONDS.items():
        kinds[kind_of_test(path)] += total
    terminalreporter.section("time per kind of test (seconds, summed over the workers)")
    for kind in SCHEDULE_ORDER:
        terminalreporter.write_line(f"{kinds[kind]:8.1f}  {kind}")
    terminalreporter.write_line(f"{sum(kinds.values()):8.1f}  total")
    if SMOKE_SECONDS:
        terminalreporter.section("smoke runs: each notebook's own work (seconds in its cells, kernel start excluded)")
        for name, value in sorted(SMOKE_SECONDS.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{value:8.1f}  {name}")
