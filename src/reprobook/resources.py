"""Wall time and peak memory of one call, for the tables that compare methods' costs.

On a CUDA device the peak is PyTorch's own count of the memory it allocated during the
call. On the CPU it is the process's resident memory at its highest during the call minus
what it held before: on Linux the kernel's high-water mark (``VmHWM``), reset before the
call through ``/proc/self/clear_refs``, so measuring costs nothing while the call runs.
Memory that earlier work freed but the C allocator kept is handed back first (glibc's
``malloc_trim``); otherwise a call could reuse it and seem to need nothing.
Where that is not available, a background thread samples the resident memory every 10
milliseconds (shorter peaks can be missed, and the thread takes a little time).
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Cost:
    """What one call cost: seconds of wall time and the peak of the memory it added, in bytes."""

    seconds: float
    peak_bytes: int


def measure(function: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[Any, Cost]:
    """Call ``function()`` and return its result with its wall time and peak added memory on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        result = function()
        torch.cuda.synchronize(device)
        return result, Cost(time.perf_counter() - start, torch.cuda.max_memory_allocated(device) - before)
    release_freed_memory()
    before = psutil.Process().memory_info().rss
    watch = _high_water_mark if reset_high_water_mark() else _sampled_peak
    start = time.perf_counter()
    result, peak = watch(function)
    return result, Cost(time.perf_counter() - start, max(peak - before, 0))


def release_freed_memory() -> None:
    """Collect garbage and return the C allocator's free memory to the system, where glibc allows it."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to hand back
        pass


def reset_high_water_mark() -> bool:
    """Reset the kernel's record of the process's peak resident memory; False where there is none."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _high_water_mark(function: Callable[[], Any]) -> tuple[Any, int]:
    result = function()
    line = next(line for line in STATUS.read_text().splitlines() if line.startswith("VmHWM:"))
    return result, int(line.split()[1]) * 1024


def _sampled_peak(function: Callable[[], Any]) -> tuple[Any, int]:
    process = psutil.Process()
    peak = [process.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = function()
    finally:
        done.set()
        sampler.join()
    return result, max(peak[0], process.memory_info().rss)
