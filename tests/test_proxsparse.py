"""ProxSparse on a tiny LLaMA: what is regularized, what is kept, the ablation, resuming, and errors."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import safetensors.torch
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM

import reprobook.sparse.proxsparse as proxsparse_module
from reprobook.lm.lab import load_causal_lm
from reprobook.lm.models import build_model, get_spec
from reprobook.sparse import audit_24, is_24, magnitude_mask, make_pruner, prox_24, prune_causal_lm, top2_mask
from reprobook.sparse.proxsparse import (
    CHECKPOINT,
    frozen_regularizer,
    mask_difference,
    proxsparse,
    rigid_projection,
    settling_ratio,
    targeted_linears,
)
from reprobook.sparse.proxsparse_launch import main as launch

OPTIONS = {"learning_rate": 1e-3, "log_every": 2, "progress": False}


@pytest.fixture(scope="module")
def tiny():
    model = build_model(get_spec("lab-tiny"), vocab_size=128, end_of_text=0, seed=0)
    calibration = torch.randint(0, 128, (6, 16), generator=torch.Generator().manual_seed(1))
    return model, calibration


def run(model, calibration, lam=30.0, **options):
    """A copy of ``model`` after ProxSparse, and the result."""
    copied = copy.deepcopy(model)
    return copied, proxsparse(copied, calibration, lam, **{**OPTIONS, **options})


def test_the_prox_meets_exactly_the_targeted_weights_with_lambda_as_is(tiny, monkeypatch):
    model, calibration = tiny
    seen = []

    def recording(weight, lam):
        seen.append((weight, lam))
        return prox_24(weight, lam)

    monkeypatch.setattr(proxsparse_module, "prox_24", recording)
    pruned = copy.deepcopy(model)
    mlp = targeted_linears(pruned, r"(gate|up|down)_proj$")
    assert sorted(mlp) == [f"layers.{b}.mlp.{n}_proj" for b in (0, 1) for n in ("down", "gate", "up")]
    result = proxsparse(pruned, calibration, 2.0, pattern=r"(gate|up|down)_proj$", **OPTIONS)
    steps = calibration.shape[0]  # batch size 1, one epoch
    assert len(seen) == steps * len(mlp)
    assert {id(weight) for weight, _ in seen} == {id(linear.weight) for linear in mlp.values()}
    assert {lam for _, lam in seen} == {2.0}  # the same strength at every step, whatever the learning rate
    assert sorted(result.masks) == sorted(mlp)
    for (name, before), after in zip(model.named_parameters(), pruned.parameters()):
        if "mlp" in name and name.endswith("proj.weight"):
            assert is_24(after) and not torch.equal(before, after)
        else:
            assert torch.equal(before, after)  # attention, embeddings, norms and the head: the original values


def test_the_final_model_is_the_original_weights_times_the_learned_mask(tiny):
    model, calibration = tiny
    pruned, result = run(model, calibration)
    targets = targeted_linears(pruned)
    assert len(targets) == 14 and sorted(result.masks) == sorted(targets)
    originals = dict(model.named_parameters())
    learned_differs = 0
    for name, parameter in pruned.named_parameters():
        key = name.removeprefix("model.").removesuffix(".weight")
        if key in result.masks:
            mask = result.masks[key]
            assert torch.equal(parameter, originals[name] * mask)  # bit for bit, nothing updated after the mask
            assert bool((mask.view(mask.shape[0], -1, 4).sum(-1) == 2).all())
            learned_differs += int((mask != magnitude_mask(originals[name])).any())
        else:
            assert torch.equal(parameter, originals[name])
    assert learned_differs > 0  # the training moved some mask away from magnitude pruning
    log = result.log
    assert list(log.step) == [2, 4, 6]
    assert list(log.columns) == ["step", "learning rate", "loss", "R", "fraction 2:4", "mask flips"]
    assert log["fraction 2:4"].is_monotonic_increasing and log["fraction 2:4"].iloc[-1] > 0.5
    assert log["learning rate"].iloc[-1] == 0.0
    assert all(torch.isin(change, torch.tensor([0, 2, 4, 6])).all() for change in result.last_change.values())
    assert sum(int((change > 0).sum()) for change in result.last_change.values()) > 0
    assert result.seconds["projections"] > 0 and result.seconds["training steps"] > 0


def test_the_rigid_ablation_differs_only_in_the_projection_step(tiny, monkeypatch):
    model, calibration = tiny
    rigid, rigid_result = run(model, calibration, projection="rigid")
    for linear in targeted_linears(rigid).values():
        assert is_24(linear.weight)
    _, prox_result = run(model, calibration, projection="prox")
    assert any(not torch.equal(mask, prox_result.masks[name]) for name, mask in rigid_result.masks.items())
    monkeypatch.setattr(proxsparse_module, "prox_24", lambda weight, lam: rigid_projection(weight))
    patched, patched_result = run(model, calibration, projection="prox")
    for name, mask in rigid_result.masks.items():
        assert torch.equal(mask, patched_result.masks[name])
    assert rigid_result.log.drop(columns="R").equals(patched_result.log.drop(columns="R"))
    assert rigid_result.log["fraction 2:4"].eq(1.0).all()


def test_rigid_projection_keeps_the_two_largest_entries():
    weight = torch.tensor([[0.1, -0.5, 0.3, 0.2, 1.0, 0.0, -2.0, 0.5]])
    expected = torch.tensor([[0.0, -0.5, 0.3, 0.0, 1.0, 0.0, -2.0, 0.0]])
    assert torch.equal(rigid_projection(weight), expected)
    assert torch.equal(top2_mask(weight.abs()), expected != 0)


def test_a_resumed_run_ends_with_the_same_mask_as_an_uninterrupted_one(tiny, monkeypatch, tmp_path):
    model, calibration = tiny
    _, whole = run(model, calibration, log_every=1)
    calls = []

    def failing(weight, lam):
        calls.append(1)
        if len(calls) == 3 * 14 + 5:  # in the fourth step, after three checkpoints
            raise KeyboardInterrupt
        return prox_24(weight, lam)

    monkeypatch.setattr(proxsparse_module, "prox_24", failing)
    with pytest.raises(KeyboardInterrupt):
        run(model, calibration, log_every=1, checkpoint_dir=tmp_path)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 3
    monkeypatch.setattr(proxsparse_module, "prox_24", prox_24)
    resumed_model, resumed = run(model, calibration, log_every=1, checkpoint_dir=tmp_path)
    for name, mask in whole.masks.items():
        assert torch.equal(mask, resumed.masks[name])
    pd_columns = ["step", "loss", "fraction 2:4", "mask flips"]
    assert whole.log[pd_columns].equals(resumed.log[pd_columns])
    with pytest.raises(ValueError, match="checkpoint_dir holds a run with other settings"):
        run(model, calibration, lam=40.0, log_every=1, checkpoint_dir=tmp_path)


def test_the_frozen_regularizer_against_its_formula():
    original = torch.tensor([[0.5, -0.25, 0.0, 2.0]])
    weight = torch.tensor([[0.4, -0.25, 0.1, 2.5]])
    epsilon = 0.5
    expected = sum(
        (w / (o + epsilon * (1.0 if o >= 0 else -1.0)) * (w - o)) ** 2
        for w, o in zip(weight[0].tolist(), original[0].tolist())
    )
    assert math.isclose(float(frozen_regularizer(weight, original, epsilon)), expected, rel_tol=1e-6)
    assert float(frozen_regularizer(original, original, epsilon)) == 0.0
    assert float(frozen_regularizer(torch.zeros_like(original), original, epsilon)) == 0.0


def test_the_frozen_regularizer_holds_the_learned_weights_near_the_original(tiny, monkeypatch):
    model, calibration = tiny
    learned = {}
    real_prox = prox_24

    def keeping(weight, lam):
        result = real_prox(weight, lam)
        learned[id(weight)] = result
        return result

    monkeypatch.setattr(proxsparse_module, "prox_24", keeping)
    distances = []
    for strength in (0.0, 100.0):
        learned.clear()
        copied = copy.deepcopy(model)
        ids = {name: id(linear.weight) for name, linear in targeted_linears(copied).items()}
        proxsparse(copied, calibration, 0.5, frozen_strength=strength, **OPTIONS)
        originals = {name: linear.weight for name, linear in targeted_linears(model).items()}
        distances.append(sum(float((learned[ids[n]] - originals[n]).detach().norm()) for n in ids))
    assert distances[1] < distances[0]


def test_bad_inputs_are_named(tiny):
    model, calibration = tiny
    with pytest.raises(ValueError, match="no linear layer in its blocks whose name matches pattern 'nothing'"):
        proxsparse(copy.deepcopy(model), calibration, 1.0, pattern="nothing", progress=False)
    for lam in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="lam must be a finite number > 0"):
            proxsparse(copy.deepcopy(model), calibration, lam, progress=False)
    with pytest.raises(ValueError, match="projection must be one of"):
        proxsparse(copy.deepcopy(model), calibration, 1.0, projection="hard", progress=False)
    with pytest.raises(ValueError, match="schedule must be one of"):
        proxsparse(copy.deepcopy(model), calibration, 1.0, schedule="cosine", progress=False)
    with pytest.raises(ValueError, match="batch_size must be at most the 6 calibration sequences"):
        proxsparse(copy.deepcopy(model), calibration, 1.0, batch_size=7, progress=False)
    with pytest.raises(ValueError, match="calibration must be a 2-D tensor of token ids"):
        proxsparse(copy.deepcopy(model), calibration.float(), 1.0, progress=False)
    config = LlamaConfig(
        vocab_size=32, hidden_size=30, intermediate_size=40, num_hidden_layers=1, num_attention_heads=3
    )
    odd = LlamaForCausalLM(config)
    with pytest.raises(ValueError, match=r"layers\.0\.self_attn\.q_proj must have an input dimension .* multiple of 4"):
        proxsparse(odd, calibration % 32, 1.0, progress=False)
    with pytest.raises(TypeError, match="model.model.layers"):
        proxsparse(torch.nn.Linear(4, 4), calibration, 1.0, progress=False)


def test_the_constant_schedule_keeps_the_peak_rate_after_the_warm_up_and_changes_only_the_rate(tiny):
    model, calibration = tiny
    steps = calibration.shape[0]  # batch 1, one epoch: warm-up ceil(0.1 * 6) = 1 step
    _, linear = run(model, calibration, log_every=1)
    _, constant = run(model, calibration, log_every=1, schedule="constant")
    assert linear.log["learning rate"].tolist() == pytest.approx(
        [1e-3 * (steps - s) / (steps - 1) for s in range(1, 7)]
    )
    assert constant.log["learning rate"].tolist() == pytest.approx([1e-3] * steps)
    # the first two steps run at the same rates (0 in the warm-up, then the peak), the third no longer
    assert constant.log["mask flips"].iloc[:2].tolist() == linear.log["mask flips"].iloc[:2].tolist()
    assert constant.log["loss"].iloc[:3].tolist() == linear.log["loss"].iloc[:3].tolist()
    assert constant.log["loss"].iloc[3:].tolist() != linear.log["loss"].iloc[3:].tolist()


def test_settling_ratio_counts_changes_in_the_two_halves_of_the_run():
    log = pd.DataFrame({"step": [2, 4, 6, 8], "mask flips": [10, 6, 3, 1]})
    assert settling_ratio(log) == 4 / 16
    odd = pd.DataFrame({"step": [3, 6, 9], "mask flips": [5, 2, 7]})  # half = 4.5: steps 3 | 6, 9
    assert settling_ratio(odd) == 9 / 5
    assert math.isnan(settling_ratio(pd.DataFrame({"step": [1, 2], "mask flips": [0, 4]})))
    with pytest.raises(ValueError, match="columns 'step' and 'mask flips'"):
        settling_ratio(pd.DataFrame({"step": [1]}))


def test_mask_difference_is_the_share_of_groups_off_the_magnitude_mask():
    weight = torch.tensor([[0.1, -0.5, 0.3, 0.2, 1.0, 0.0, -2.0, 0.5], [4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0]])
    mask = top2_mask(weight.abs())
    assert mask_difference({"a": mask}, {"a": weight}) == 0.0
    moved = mask.clone()
    moved[0, :4] = torch.tensor([True, False, False, True])  # one group of four moved, the others not
    moved[1, 4:] = torch.tensor([False, True, False, True])
    assert mask_difference({"a": moved, "b": mask}, {"a": weight, "b": weight}) == 2 / 8
    with pytest.raises(ValueError, match="must name the same layers"):
        mask_difference({"a": mask}, {"b": weight})
    with pytest.raises(ValueError, match="has shape"):
        mask_difference({"a": mask[:, :4]}, {"a": weight})


def test_the_launch_script_writes_the_pruned_model_its_masks_and_log(tmp_path):
    output = tmp_path / "run"
    arguments = ["--model", "lab-micro", "--sequences", "4", "--length", "32", "--lam", "1.0"]
    assert launch(arguments + ["--dtype", "float32", "--output", str(output)]) == 0
    masks = safetensors.torch.load_file(output / "masks.safetensors")
    pruned = AutoModelForCausalLM.from_pretrained(output / "model")
    original = load_causal_lm("lab-micro").model
    for name, linear in targeted_linears(pruned).items():
        assert torch.equal(linear.weight, targeted_linears(original)[name].weight * masks[name])
    assert len(pd.read_csv(output / "log.csv")) == 1
    assert json.loads((output / "result.json").read_text())["settings"]["lam"] == "1.0"
    assert (output / "checkpoint" / CHECKPOINT).is_file()


@pytest.mark.portability  # compares a run in worker processes with one in this process
def test_two_processes_learn_the_mask_of_one_with_the_same_global_batch(tmp_path):
    """Data-parallel through torch.distributed (gloo on the CPU), as ``accelerate launch`` runs it on GPUs."""
    arguments = ["--model", "lab-micro", "--sequences", "8", "--length", "32", "--lam", "1.0", "--batch", "2"]
    arguments += ["--dtype", "float32", "--output"]
    assert launch(arguments + [str(tmp_path / "one")]) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m"]
    command += ["reprobook.sparse.proxsparse_launch", *arguments, str(tmp_path / "two")]
    done = subprocess.run(command, env={**os.environ, "ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    one = safetensors.torch.load_file(tmp_path / "one" / "masks.safetensors")
    two = safetensors.torch.load_file(tmp_path / "two" / "masks.safetensors")
    assert one.keys() == two.keys() and all(torch.equal(one[name], two[name]) for name in one)
    logs = [pd.read_csv(tmp_path / run / "log.csv") for run in ("one", "two")]
    assert logs[0]["mask flips"].equals(logs[1]["mask flips"])
    assert abs(logs[0].loss.iloc[-1] - logs[1].loss.iloc[-1]) < 1e-5  # the loss of both halves of the batch


def test_an_opt_model_has_its_own_layer_names_and_is_pruned_the_same_way():
    config = OPTConfig(
        vocab_size=64,
        hidden_size=32,
        ffn_dim=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        word_embed_proj_dim=32,
    )
    torch.manual_seed(0)
    model = OPTForCausalLM(config)
    calibration = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    names = {name.split(".", 2)[2] for name in targeted_linears(model)}
    assert names == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2"}
    pruned, result = run(model, calibration)
    for name, linear in targeted_linears(pruned).items():
        assert torch.equal(linear.weight, targeted_linears(model)[name].weight * result.masks[name])
    one_shot = copy.deepcopy(model)
    prune_causal_lm(one_shot, calibration, make_pruner("wanda"), batch_size=2)
    assert audit_24(one_shot)["2:4"].all()
