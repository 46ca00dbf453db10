"""TAIL's adapters on the policy's GPT-2 decoder (the paper's Eqs. 2 and 3 and prefix tokens).

- **LoRA** (parallel, Eq. 2): ``h_out = W^T h_in + (alpha / r) W_up^T W_down^T h_in`` on the
  attention's input projection, through ``peft``. GPT-2 fuses the query, key and value
  projections into one matrix ``c_attn`` (width d -> 3d), so the low-rank update covers all three;
  the paper adapts W_Q and W_V separately. Both add ``4 r d`` parameters per layer.
- **Prefix** tuning: ``m`` learned virtual tokens whose keys and values every layer attends to,
  re-parametrized through a small projection (the paper: 30 tokens, rank 16), through ``peft``.
- **Bottleneck** (sequential, Eq. 3): ``h + W_up^T phi(W_down^T h)`` after each block's attention
  output and after its feed-forward network. ``peft`` has no such adapter, so
  :class:`BottleneckAdapters` is written here; ``W_up`` starts at zero, so a new adapter is the
  identity.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, PrefixTuningConfig, get_peft_model, inject_adapter_in_model
from torch import nn

from reprobook.checks import check_count
from reprobook.imitation.policy import BCPolicy, is_adapter_parameter

ADAPTER_STYLES = ("lora", "prefix", "bottleneck")


class Bottleneck(nn.Module):
    """``h + up(gelu(down(h)))``: a residual bottleneck of ``size`` units, the identity at start."""

    def __init__(self, width: int, size: int):
        super().__init__()
        self.down = nn.Linear(width, size)
        self.up = nn.Linear(size, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(nn.functional.gelu(self.down(hidden)))


class BottleneckAdapters(nn.Module):
    """One :class:`Bottleneck` after each attention output and each feed-forward network."""

    def __init__(self, policy: BCPolicy, size: int):
        super().__init__()
        width = policy.config.width
        self.adapters = nn.ModuleList(Bottleneck(width, size) for _ in range(2 * policy.config.layers))
        for block, after_attention, after_mlp in zip(
            policy.decoder.h, self.adapters[::2], self.adapters[1::2], strict=True
        ):
            block.attn.c_proj.register_forward_hook(lambda _module, _inputs, out, a=after_attention: a(out))
            block.mlp.register_forward_hook(lambda _module, _inputs, out, a=after_mlp: a(out))


def add_adapter(
    policy: BCPolicy,
    style: str,
    *,
    rank: int = 8,
    alpha: float = 8.0,
    prefix_tokens: int = 30,
    prefix_projection: int = 16,
    bottleneck: int = 32,
) -> BCPolicy:
    """Insert an adapter of ``style`` into ``policy``'s decoder, in the policy's floating-point type."""
    if style not in ADAPTER_STYLES:
        raise ValueError(f"style must be one of {ADAPTER_STYLES}, got {style!r}")
    dtype = policy.head.film.weight.dtype
    if style == "lora":
        check_count("rank", rank)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True)
        inject_adapter_in_model(config, policy.decoder)
        return policy.to(dtype)
    if style == "prefix":
        check_count("prefix_tokens", prefix_tokens)
        check_count("prefix_projection", prefix_projection)
        config = PrefixTuningConfig(
            task_type="FEATURE_EXTRACTION",
            num_virtual_tokens=prefix_tokens,
            prefix_projection=True,
            encoder_hidden_size=prefix_projection,
        )
        policy.decoder = get_peft_model(policy.decoder, config)
        return policy.to(dtype)
    check_count("bottleneck", bottleneck)
    policy.bottleneck = BottleneckAdapters(policy, bottleneck)
    return policy.to(dtype)


def adapter_state(policy: BCPolicy) -> dict[str, torch.Tensor]:
    """Copies of the adapter's weights (empty when the policy has none)."""
    names = adapter_names(policy)
    return {name: p.detach().clone() for name, p in policy.named_parameters() if name in names}


def adapter_names(policy: BCPolicy) -> set[str]:
    """Names of the policy's adapter parameters (LoRA, prefix encoder or bottlenecks)."""
    return {name for name, _ in policy.named_parameters() if is_adapter_parameter(name)}


def load_adapter_state(policy: BCPolicy, state: dict[str, torch.Tensor]) -> None:
    """Put ``state`` (from :func:`adapter_state`) into the policy's adapter."""
    parameters = dict(policy.named_parameters())
    if set(state) != adapter_names(policy):
        raise KeyError("the stored adapter does not match the policy's adapter parameters")
    with torch.no_grad():
        for name, value in state.items():
            parameters[name].copy_(value)


def location(name: str) -> str:
    """Where in the policy the parameter called ``name`` sits (for counting by location)."""
    if name.startswith("head."):
        return "task head: embeddings, FiLM, action"
    if "lora_" in name:
        return "beside attention's q/k/v (LoRA)"
    if "prompt_encoder" in name:
        return "virtual tokens' keys and values (prefix)"
    if name.startswith("bottleneck."):
        index = int(name.split(".")[2])
        return "after attention output (bottleneck)" if index % 2 == 0 else "after feed-forward (bottleneck)"
    if name.startswith("encoder."):
        return "state encoder"
    return "GPT-2 decoder"


def count_by_location(policy: BCPolicy, parameters: list[torch.nn.Parameter]) -> dict[str, int]:
    """How many of ``parameters`` sit at each :func:`location` of the policy."""
    chosen = {id(p) for p in parameters}
    counts: dict[str, int] = {}
    for name, p in policy.named_parameters():
        if id(p) in chosen:
            counts[location(name)] = counts.get(location(name), 0) + p.numel()
    return counts
