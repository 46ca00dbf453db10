"""The cost of a call: wall time and the peak memory it added."""

from __future__ import annotations

import time

import pytest
import torch

import reprobook.resources as resources
from reprobook.resources import measure


def allocate():
    block = torch.ones(50_000_000)  # 200 MB, touched, then freed on return
    time.sleep(0.05)
    return float(block[-1])


@pytest.mark.parametrize("high_water_mark", [True, False], ids=["kernel-record", "sampled"])
def test_measure_sees_a_temporary_allocation_and_the_time_it_took(high_water_mark, monkeypatch):
    if high_water_mark and not resources.reset_high_water_mark():
        pytest.skip("this system keeps no resettable record of peak memory")
    if not high_water_mark:
        monkeypatch.setattr(resources, "reset_high_water_mark", lambda: False)
    result, cost = measure(allocate)
    assert result == 1.0
    assert cost.seconds >= 0.05
    assert 150e6 < cost.peak_bytes < 400e6
    _, small = measure(lambda: sum(range(1000)))
    assert small.peak_bytes < 20e6
