"""`make gpu-check`: every step runs at small shapes on the CPU, and without a GPU it says so and stops."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from conftest import ROOT


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tests" / "benchmarks" / "gpu_check.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclasses look their module up there
    spec.loader.exec_module(script)
    return script


def test_every_step_runs_on_the_cpu_and_agrees(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["steps"]) == list(gpu_check.STEPS)
    steps = report["steps"]
    assert all(step.get("ok", True) and "error" not in step for step in steps.values())
    assert "2 skipped" in steps["cuda tests"]["summary"]
    assert steps["ProxSparse on lab-tiny, device against CPU"]["differing_groups"] == 0
    assert steps["Krylov CRN, device against CPU"]["iterations"] == 20
    matmuls = steps["2:4 matmul against dense"]["rows"]
    assert len(matmuls) == 2 and all(row["relative_error"] == 0 and not row["kernel"] for row in matmuls)
    assert [row["lam"] for row in steps["prox_24 speed"]["rows"]] == gpu_check.STRENGTHS
    assert steps["Hessian-vector product"]["hvp_ms"] > 0
    assert "[FAILED]" not in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_a_gpu_it_stops_with_a_message(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "report.json")]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()
