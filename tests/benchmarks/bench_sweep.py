"""Throughput of `reprobook sweep` on 2 local Dask workers against the same runs one after another.

The same smoke runs (one notebook at several seeds) execute twice: with papermill one after
another in this process, then as a sweep on a LocalCluster of 2 single-threaded workers (its
start and stop included). Printed: both wall times, their ratio, and the sweep's overhead per
run, the worker time not spent executing a notebook: (2 x sweep wall - run time) / runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from reprobook.book.chapters import find_book_root, get_chapter
from reprobook.book.notebooks import execute
from reprobook.book.sweep import plan_sweep, run_sweep

WORKERS = 2


def main(quick: bool = False) -> list[str]:
    chapter = get_chapter("lookahead_replicate" if quick else "fbipg", find_book_root(Path(__file__)))
    notebook = chapter.resolve_notebook("01")
    runs = plan_sweep(chapter, [notebook], "smoke", list(range(2 if quick else 8)), {})
    with tempfile.TemporaryDirectory() as folder:
        clock = time.perf_counter()
        for run in runs:
            output = Path(folder) / f"sequential-{run.seed}.ipynb"
            execute(chapter.source(notebook), output, chapter.folder, run.parameters, progress=False)
        sequential = time.perf_counter() - clock
        clock = time.perf_counter()
        records = run_sweep(runs, chapter.folder, Path(folder) / "sweep", workers=WORKERS, progress=lambda _: None)
        swept = time.perf_counter() - clock
    assert all(record["status"] == "ok" for record in records), [r["error"] for r in records]
    executing = sum(record["seconds"] for record in records)
    overhead = (WORKERS * swept - executing) / len(runs)
    return [
        f"{chapter.slug}/{notebook} smoke, {len(runs)} seeds: one after another {sequential:.1f} s, "
        f"sweep on {WORKERS} workers {swept:.1f} s",
        f"sweep/sequential throughput {sequential / swept:.2f}x; overhead {overhead:.2f} s per run "
        f"(notebooks ran {executing / len(runs):.1f} s each in the sweep, "
        f"{sequential / len(runs):.1f} s one after another)",
    ]
