"""The book's laboratory language models: tiny LLaMA-architecture causal LMs.

Each named model fixes its tokenizer, its architecture and its pretraining
recipe. Every linear layer has both dimensions a multiple of 64, so the 2:4
semi-structured sparse GPU kernels apply to all of them.

| name | tokenizer | hidden | MLP | layers | heads | context | meant for |
|---|---|---|---|---|---|---|---|
| ``lab-micro`` | char | 64 | 128 | 1 | 1 | 64 | tests and smoke runs (seconds) |
| ``lab-tiny`` | bpe-2048 | 128 | 384 | 2 | 2 | 128 | chapters on a CPU (minutes) |
| ``lab-small`` | bpe-4096 | 256 | 704 | 4 | 4 | 256 | chapters that need a stronger model |
| ``lab-comedy`` | bpe-2048 | 64 | 192 | 2 | 1 | 64 | fine-tuning on an unseen genre (minutes) |

Every model but ``lab-comedy`` is pretrained on the whole training split; ``lab-comedy``
sees only its comedies (its ``domain``), so the tragedies are a genre it has not read.
All models of one tokenizer share it, trained on the whole training split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model table is read without importing PyTorch (``reprobook list`` checks names)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM


@dataclass(frozen=True)
class TrainingRecipe:
    """How a model is pretrained: AdamW with a cosine schedule after a linear warm-up.

    ``threads`` is part of the recipe: the same seed and thread count give
    bit-identical weights on one machine, another thread count does not.
    """

    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 50
    eval_batches: int = 8
    threads: int = 1


@dataclass(frozen=True)
class ModelSpec:
    """A named laboratory model: tokenizer, architecture, pretraining recipe."""

    name: str
    tokenizer: str
    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    context: int
    training: TrainingRecipe
    #: the sub-corpus of pretraining and validation, one of ``reprobook.lm.corpus.DOMAINS``
    domain: str = "all"

    def as_dict(self) -> dict:
        return asdict(self)


MODEL_SPECS = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="lab-micro",
            tokenizer="char",
            hidden_size=64,
            intermediate_size=128,
            layers=1,
            heads=1,
            context=64,
            training=TrainingRecipe(
                steps=60, batch_size=8, learning_rate=3e-3, warmup_steps=6, eval_every=20, eval_batches=2
            ),
        ),
        ModelSpec(
            name="lab-tiny",
            tokenizer="bpe-2048",
            hidden_size=128,
            intermediate_size=384,
            layers=2,
            heads=2,
            context=128,
            training=TrainingRecipe(steps=6000, batch_size=16, learning_rate=2e-3, warmup_steps=300, eval_every=250),
        ),
        ModelSpec(
            name="lab-small",
            tokenizer="bpe-4096",
            hidden_size=256,
            intermediate_size=704,
            layers=4,
            heads=4,
            context=256,
            training=TrainingRecipe(
                steps=900, batch_size=16, learning_rate=1e-3, warmup_steps=45, eval_every=100, threads=2
            ),
        ),
        ModelSpec(
            name="lab-comedy",
            tokenizer="bpe-2048",
            hidden_size=64,
            intermediate_size=192,
            layers=2,
            heads=1,
            context=64,
            training=TrainingRecipe(steps=2000, batch_size=16, learning_rate=3e-3, warmup_steps=100, eval_every=200),
            domain="comedies",
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The named model, with a clear error for an unknown name."""
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown laboratory model {name!r}; expected one of {sorted(MODEL_SPECS)}")
    return MODEL_SPECS[name]


def llama_config(spec: ModelSpec, vocab_size: int, end_of_text: int) -> LlamaConfig:
    """The ``transformers`` configuration of a named model (tied input and output embeddings).

    The vocabulary is padded to a multiple of 64, so the output layer is 2:4-ready too.
    """
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=-(-vocab_size // 64) * 64,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.context,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
        bos_token_id=end_of_text,
        eos_token_id=end_of_text,
        pad_token_id=end_of_text,
    )


def build_model(spec: ModelSpec, vocab_size: int, end_of_text: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialized model, identical for the same seed."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(spec, vocab_size, end_of_text))
    linear_shapes = [m.weight.shape for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if any(d % 64 for shape in linear_shapes for d in shape):
        raise ValueError(f"model {spec.name!r} has a linear layer whose shape is not a multiple of 64")
    return model


def parameter_count(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
