"""Layer-wise pruners against direct computations, the toy problems, the model driver and 2:4 execution."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from reprobook.lm.models import build_model, get_spec
from reprobook.sparse import (
    ProxPath,
    SemiStructuredLinear,
    audit_24,
    audit_summary,
    calibration_hessian,
    compress_24,
    compressed_linear,
    decompress_24,
    deploy_semi_structured,
    exact_refit,
    is_24,
    local_loss,
    magnitude_mask,
    make_pruner,
    masked_refit,
    prox_prune,
    prune_causal_lm,
    semi_structured_available,
    sparsegpt_24,
    top2_mask,
    wanda_mask,
)
from reprobook.sparse.model import block_linears
from reprobook.sparse.toy import FAMILIES, all_masks, correlated_layer, optimal_24, toy_covariance


@pytest.fixture(scope="module")
def layer():
    return correlated_layer(in_features=16, out_features=12, samples=256, rho=0.8, seed=3)


def test_magnitude_and_wanda_keep_the_two_largest_scores_of_each_group(layer):
    W0, H = layer
    norms = (torch.diagonal(H) * 256).sqrt()  # ||X_j||: Wanda's scale is irrelevant within a row
    for mask, scores in ((magnitude_mask(W0), W0.abs()), (wanda_mask(W0, H), W0.abs() * norms)):
        for r in range(W0.shape[0]):
            for g in range(4):
                kept = set(torch.nonzero(mask[r, 4 * g : 4 * g + 4]).flatten().tolist())
                assert kept == set(torch.topk(scores[r, 4 * g : 4 * g + 4], 2).indices.tolist())


def sparsegpt_reference(W0, H, damping=0.01):
    """SparseGPT from its definition, one column at a time with explicit inverses of the trailing blocks of H."""
    W = W0.clone()
    H = H + damping * torch.diagonal(H).mean() * torch.eye(H.shape[0], dtype=H.dtype)
    d = H.shape[0]
    inverse_diag = torch.tensor([torch.linalg.inv(H[k:, k:])[0, 0] for k in range(d)], dtype=H.dtype)
    mask = torch.zeros_like(W, dtype=torch.bool)
    for j in range(d):
        if j % 4 == 0:
            for r in range(W.shape[0]):
                scores = W[r, j : j + 4] ** 2 / inverse_diag[j : j + 4]
                mask[r, j + torch.topk(scores, 2).indices] = True
        inverse = torch.linalg.inv(H[j:, j:])
        delta = torch.where(mask[:, j], 0.0, -W[:, j])  # the change of column j: remove a pruned weight
        W[:, j:] += (delta / inverse[0, 0])[:, None] * inverse[0][None, :]  # optimal compensation on columns >= j
    return W * mask


@pytest.mark.parametrize("block_size", [4, 8, 128])
def test_sparsegpt_equals_its_column_by_column_definition(layer, block_size):
    W0, H = layer
    torch.testing.assert_close(
        sparsegpt_24(W0, H, block_size=block_size), sparsegpt_reference(W0, H), rtol=1e-9, atol=1e-9
    )


def test_masked_refit_decreases_the_loss_and_converges_to_the_exact_fit(layer):
    W0, H = layer
    mask = wanda_mask(W0, H)
    losses, W = [], W0 * mask
    for _ in range(30):
        W = masked_refit(W, mask, W0, H, steps=1, accelerated=False)
        losses.append(local_loss(W, W0, H))
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))
    exact = exact_refit(mask, W0, H)
    for r in range(W0.shape[0]):  # least squares on each row's support, directly
        support = torch.nonzero(mask[r]).flatten()
        solution = torch.linalg.solve(H[support][:, support], (H @ W0[r])[support])
        torch.testing.assert_close(exact[r, support], solution)
    long_run = masked_refit(W0 * mask, mask, W0, H, steps=3000)
    torch.testing.assert_close(long_run, exact, rtol=1e-6, atol=1e-6)
    assert bool((long_run[~mask] == 0).all())


def test_the_optimal_mask_is_optimal_and_every_method_is_24_and_no_better(layer):
    W0, H = layer
    best = optimal_24(W0, H)
    assert is_24(best)
    optimum = local_loss(best, W0, H)
    row_losses = []  # brute force for one row, with an independent loss computation
    for mask in all_masks(16):
        full = torch.zeros(1, 16, dtype=torch.bool)
        full[0] = mask
        W = exact_refit(full, W0[:1], H)
        row_losses.append(local_loss(W, W0[:1], H))
    assert local_loss(best[:1], W0[:1], H) == pytest.approx(min(row_losses), rel=1e-10)
    for method in ("magnitude", "wanda", "sparsegpt", "prox"):
        for refit in (0, 50):
            W = make_pruner(method, refit)(W0, H)
            assert is_24(W)
            assert local_loss(W, W0, H) >= optimum - 1e-9


def test_prox_prune_records_its_path_and_beats_sparsegpt_on_a_correlated_layer():
    W0, H = correlated_layer(in_features=16, out_features=32, samples=512, rho=0.9, seed=0)
    path = ProxPath()
    W = prox_prune(W0, H, path=path)
    assert is_24(W)
    assert path.fraction_24[-1] == 1.0 and path.fraction_24[0] < 1.0
    assert all(b > a for a, b in zip(path.lams, path.lams[1:]))
    assert local_loss(W, W0, H) < local_loss(sparsegpt_24(W0, H), W0, H)
    with pytest.raises(RuntimeError, match="max_rounds"):
        prox_prune(W0, H, max_rounds=1, strength=1e-6)


def test_prox_prune_with_an_overwhelming_weight_is_magnitude_pruning_then_refit(layer):
    # At W = W0 the gradient of the local loss vanishes, so the first step is prox(W0); with a huge
    # weight that is the two largest entries of each group, already 2:4: magnitude pruning.
    W0, H = layer
    mask = magnitude_mask(W0)
    torch.testing.assert_close(prox_prune(W0, H, strength=1e6, inner_steps=1, refit_steps=0), W0 * mask, rtol=0, atol=0)
    torch.testing.assert_close(
        prox_prune(W0, H, strength=1e6, inner_steps=1, refit_steps=30), masked_refit(W0 * mask, mask, W0, H, 30)
    )


def test_pruners_name_their_bad_inputs(layer):
    W0, H = layer
    with pytest.raises(ValueError, match="hessian must be a \\(16, 16\\)"):
        sparsegpt_24(W0, H[:8, :8])
    with pytest.raises(ValueError, match="block_size must be a multiple of 4"):
        sparsegpt_24(W0, H, block_size=6)
    with pytest.raises(ValueError, match="mask must keep at most 2"):
        masked_refit(W0, torch.ones_like(W0, dtype=torch.bool), W0, H)
    with pytest.raises(ValueError, match="method must be one of"):
        make_pruner("random")
    with pytest.raises(ValueError, match="growth must be"):
        prox_prune(W0, H, growth=1.0)
    with pytest.raises(ValueError, match="multiple of 4"):
        wanda_mask(W0[:, :6], H[:6, :6])


@pytest.fixture(scope="module")
def micro_model():
    torch.manual_seed(0)
    spec = get_spec("lab-tiny")
    model = build_model(spec, vocab_size=128, end_of_text=0, seed=0)
    calibration = torch.randint(0, 128, (6, 32), generator=torch.Generator().manual_seed(1))
    return model, calibration


def test_the_driver_prunes_every_block_to_24_and_keeps_the_kept_weights(micro_model):
    model, calibration = micro_model
    pruned = copy.deepcopy(model)
    report = prune_causal_lm(pruned, calibration, make_pruner("wanda"), batch_size=4)
    audit = audit_24(pruned)
    assert audit["2:4"].all() and len(report) == len(audit) == 2 * 7
    summary = audit_summary({"wanda": pruned, "dense": model})
    groups = sum(m.weight.numel() // 4 for block in model.model.layers for m in block_linears(block).values())
    assert summary.loc["wanda"].tolist() == [0, 0, groups, 0, 0, True]
    assert summary.loc["dense", "4 non-zeros"] == groups and not summary.loc["dense", "2:4"]
    assert (report.relative_loss > 0).all() and (report.relative_loss < 1).all()
    for (name, before), after in zip(model.named_parameters(), pruned.parameters()):
        if name.endswith("proj.weight"):
            kept = after != 0
            assert bool((after[kept] == before[kept]).all())  # Wanda only removes weights
            assert float(kept.float().mean()) == 0.5
        else:
            assert torch.equal(before, after)  # embeddings, norms and the head stay dense


def test_each_block_is_calibrated_on_the_outputs_of_the_pruned_blocks_before_it(micro_model):
    model, calibration = micro_model
    pruned = copy.deepcopy(model)
    seen = {}

    def recording(original, hessian):
        seen[len(seen)] = hessian.clone()
        return original * magnitude_mask(original)

    prune_causal_lm(pruned, calibration, recording, batch_size=4)
    # The input of block 1's first linear layer in the finished model depends only on block 0, already pruned.
    second_block_first_linear = next(iter(block_linears(pruned.model.layers[1]).values()))
    captured = []
    handle = second_block_first_linear.register_forward_pre_hook(lambda m, args: captured.append(args[0]))
    with torch.no_grad():
        pruned(input_ids=calibration, use_cache=False)
    handle.remove()
    X = captured[0].reshape(-1, captured[0].shape[-1]).double()
    torch.testing.assert_close(seen[7], calibration_hessian(X), rtol=1e-5, atol=1e-7)


def test_a_deployed_model_computes_the_same_function(micro_model):
    model, calibration = micro_model
    pruned = copy.deepcopy(model)
    prune_causal_lm(pruned, calibration, make_pruner("wanda"), batch_size=4)
    deployed = copy.deepcopy(pruned)
    layers = deploy_semi_structured(deployed)
    assert len(layers) == 14 and not any(layer.uses_kernel for layer in layers)
    assert not any(isinstance(m, torch.nn.Linear) for block in deployed.model.layers for m in block.modules())
    with torch.no_grad():
        torch.testing.assert_close(
            deployed(input_ids=calibration).logits, pruned(input_ids=calibration).logits, rtol=0, atol=0
        )
    dense = copy.deepcopy(model)
    with pytest.raises(ValueError, match="block 0 .* is not 2:4"):
        deploy_semi_structured(dense)
    assert all(isinstance(m, torch.nn.Linear) for m in block_linears(dense.model.layers[0]).values())  # untouched


def test_the_driver_names_bad_calibration(micro_model):
    model, _ = micro_model
    with pytest.raises(ValueError, match="calibration must be a 2-D tensor of token ids"):
        prune_causal_lm(model, torch.zeros(8, dtype=torch.long), make_pruner("magnitude"))
    with pytest.raises(TypeError, match="model.model.layers"):
        prune_causal_lm(torch.nn.Linear(4, 4), torch.zeros(2, 4, dtype=torch.long), make_pruner("magnitude"))


def test_compressed_format_round_trip_and_product():
    torch.manual_seed(4)
    weight = torch.randn(64, 128)
    weight = weight * top2_mask(weight.abs())
    weight[0, :4] = torch.tensor([0.0, 0.0, 0.0, 3.0])  # a group with a single non-zero
    values, positions = compress_24(weight)
    assert values.shape == (64, 64) and positions.dtype == torch.uint8
    assert torch.equal(decompress_24(values, positions), weight)
    x = torch.randn(5, 7, 128)
    torch.testing.assert_close(compressed_linear(x, values, positions), x @ weight.T, rtol=1e-5, atol=1e-5)


def test_the_semi_structured_layer_falls_back_to_the_dense_masked_product():
    torch.manual_seed(5)
    linear = torch.nn.Linear(128, 64)
    with torch.no_grad():
        linear.weight.mul_(top2_mask(linear.weight.abs()))
    layer = SemiStructuredLinear.from_linear(linear)
    assert not layer.uses_kernel and "dense masked fallback" in repr(layer)
    assert not semi_structured_available("cpu", torch.float16)
    x = torch.randn(3, 9, 128)
    torch.testing.assert_close(layer(x), linear(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="weight must be 2:4"):
        SemiStructuredLinear(torch.randn(64, 128))
    with pytest.raises(ValueError, match="positions must be uint8"):
        decompress_24(torch.zeros(2, 2), torch.zeros(2, 2))


@pytest.mark.skipif(
    not semi_structured_available("cuda", torch.float16), reason="needs a CUDA GPU of capability >= 8.0"
)
def test_the_semi_structured_kernel_matches_the_dense_product_on_a_gpu():
    torch.manual_seed(6)
    weight = torch.randn(256, 512, device="cuda", dtype=torch.float16)
    weight = weight * top2_mask(weight.abs())
    layer = SemiStructuredLinear(weight)
    x = torch.randn(64, 512, device="cuda", dtype=torch.float16)
    assert layer.uses_kernel
    torch.testing.assert_close(layer(x), x @ weight.T, rtol=1e-2, atol=1e-2)


def test_toy_correlation_shapes():
    correlation = {}
    for family in FAMILIES:
        covariance = toy_covariance(family, 16, 0.9, np.random.default_rng(0))
        scales = np.sqrt(np.diag(covariance))
        correlation[family] = covariance / np.outer(scales, scales)
        assert np.linalg.eigvalsh(covariance).min() > 0
    neighbours = np.diag(correlation["ar1"], 1)
    np.testing.assert_allclose(neighbours, 0.9)  # neighbours share a group of four
    # shuffling moves the same correlations away from the diagonal
    np.testing.assert_allclose(np.sort(correlation["ar1-shuffled"].ravel()), np.sort(correlation["ar1"].ravel()))
    assert np.abs(np.diag(correlation["ar1-shuffled"], 1)).mean() < neighbours.mean()
    off_diagonal = correlation["factor"][~np.eye(16, dtype=bool)]
    assert np.abs(off_diagonal).max() <= 0.9 + 1e-12 and (off_diagonal < 0).any()
    with pytest.raises(ValueError, match="family must be one of"):
        correlated_layer(family="blocks")
