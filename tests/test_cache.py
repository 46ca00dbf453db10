"""The cache under concurrency: one process builds, the others wait; a killed builder corrupts nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from reprobook.cache import build_once
from reprobook.lm.corpus import load_corpus
from reprobook.lm.lab import _entry_path, pretrained, verify_entry

pytestmark = pytest.mark.slow

# A process that asks for lab-micro in the cache argv[1], after all argv[2] processes are ready,
# and reports how many tokenizers and models it trained and the sha256 of the weights it got.
WORKER = textwrap.dedent("""\
    import hashlib, json, sys, time
    from pathlib import Path
    from reprobook.lm import lab, train
    from reprobook.lm.corpus import load_corpus

    cache, workers, slow = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    trained = {"tokenizers": 0, "models": 0}
    for name, counter in (("train_tokenizer", "tokenizers"), ("pretrain", "models")):
        original = getattr(lab, name)
        def counting(*args, _original=original, _counter=counter, **kwargs):
            trained[_counter] += 1
            return _original(*args, **kwargs)
        setattr(lab, name, counting)
    windows = train.random_windows
    def slow_windows(*args, **kwargs):
        time.sleep(slow)
        return windows(*args, **kwargs)
    train.random_windows = slow_windows
    corpus = load_corpus()
    (cache / f"ready-{time.time_ns()}").touch()
    while len(list(cache.glob("ready-*"))) < workers:
        time.sleep(0.01)
    model = lab.pretrained("lab-micro", corpus=corpus, cache=cache, progress=False, pinned=False)
    weights = b"".join(t.numpy().tobytes() for t in model.model.state_dict().values())
    print(json.dumps({**trained, "sha256": hashlib.sha256(weights).hexdigest()}))
""")


def start_worker(cache, workers: int, slow: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(cache), str(workers), str(slow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_asking_for_one_model_train_it_once(tmp_path):
    load_corpus()  # the corpus is built before the race, as the test suite's first user builds it
    workers = [start_worker(tmp_path, 2) for _ in range(2)]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["models"] for r in reports) == 1, reports
    assert sum(r["tokenizers"] for r in reports) == 1, reports
    assert reports[0]["sha256"] == reports[1]["sha256"]
    entry = _entry_path("lab-micro", load_corpus(), 0, tmp_path)
    left = sorted(path.name for path in (tmp_path / "models").iterdir())
    assert left == [entry.name, entry.name + ".lock"], "only the finished entry and its lock file are left"
    assert verify_entry(entry)


def test_a_killed_builder_leaves_nothing_corrupt_and_blocks_nobody(tmp_path):
    corpus = load_corpus()
    entry = _entry_path("lab-micro", corpus, 0, tmp_path)
    worker = start_worker(tmp_path, 1, slow=0.05)
    checkpoint = entry.with_name(entry.name + ".partial") / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the worker never wrote a checkpoint"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)  # in the middle of training, holding the entry's lock
    worker.wait()
    assert not entry.exists(), "an unfinished entry must never appear"
    resumed = pretrained("lab-micro", corpus=corpus, cache=tmp_path, progress=False, pinned=False)
    reference = pretrained("lab-micro", corpus=corpus, cache=tmp_path / "other", progress=False, pinned=False)
    assert verify_entry(entry) and not checkpoint.parent.exists()
    assert all(
        torch.equal(a, b) for a, b in zip(resumed.model.state_dict().values(), reference.model.state_dict().values())
    )


def test_build_once_reads_again_under_the_lock_and_reports_a_failed_build(tmp_path):
    entry = tmp_path / "entry.txt"
    reads = []

    def read():
        reads.append(1)
        return entry.read_text() if entry.exists() else None

    assert build_once(entry, read, lambda: entry.write_text("built")) == "built"
    assert len(reads) == 3  # a miss, a miss under the lock, then the built entry
    assert build_once(entry, read, lambda: pytest.fail("a present entry is not built again")) == "built"
    with pytest.raises(OSError, match="cannot be read back"):
        build_once(tmp_path / "never", lambda: None, lambda: None)
