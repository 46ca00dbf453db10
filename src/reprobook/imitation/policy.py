"""The behaviour-cloning policy: a small GPT-2 decoder over a window of past states.

The paper's policy (its Fig. 1) encodes the instruction with CLIP's text encoder, fuses it into
the observation tokens with FiLM, runs a 6-layer GPT-2 temporal decoder and predicts a
distribution over the next action. This chapter keeps that shape at laboratory size:

- a state encoder (a two-layer MLP) turns each of the last ``window`` observations into a token;
- a :class:`TaskHead` holds a learned embedding per task (in place of the CLIP text encoder),
  the FiLM fusion ``token * (1 + gamma(task)) + beta(task)``, and the Gaussian action head;
- a ``transformers`` ``GPT2Model`` is the temporal decoder, so that ``peft`` adapters apply to it.

Each position predicts the action taken at its own time step, with the Gaussian negative log
likelihood (the paper's Eq. 1 with L = NLL); acting uses the mean at the last position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import GPT2Config, GPT2Model

from reprobook.checks import check_count
from reprobook.imitation.tasks import ACTION_DIM, OBSERVATION_DIM

LOG_STD_RANGE = (-5.0, 1.0)
NEW_TASK_NOISE = 0.01  # spread of a new task's embedding around the known tasks' mean
MIN_STATE_SCALE = 0.05  # 5 cm, in the units of Meta-World's positions


@dataclass(frozen=True)
class PolicyConfig:
    """Sizes of the policy (the paper's decoder: 6 layers, width 768; this chapter's: see the profiles)."""

    window: int = 4
    width: int = 64
    layers: int = 2
    heads: int = 4
    inner: int = 256
    task_dim: int = 32

    def __post_init__(self):
        for name in ("window", "width", "layers", "heads", "inner", "task_dim"):
            check_count(name, getattr(self, name))
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")

    def decoder_config(self) -> GPT2Config:
        return GPT2Config(
            n_embd=self.width,
            n_layer=self.layers,
            n_head=self.heads,
            n_inner=self.inner,
            n_positions=self.window,
            vocab_size=1,  # the decoder reads embeddings, never token ids
            bos_token_id=None,
            eos_token_id=None,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )


class TaskHead(nn.Module):
    """The task-specific part of the policy: task embeddings, FiLM fusion and the action head."""

    def __init__(self, tasks: list[str], config: PolicyConfig):
        super().__init__()
        self.tasks = list(tasks)
        self.config = config
        self.embedding = nn.Embedding(len(tasks), config.task_dim)
        self.film = nn.Linear(config.task_dim, 2 * config.width)
        self.action = nn.Linear(config.width, 2 * ACTION_DIM)

    def index(self, tasks: list[str]) -> torch.Tensor:
        """The embedding rows of ``tasks``; a task this head does not know is an error."""
        unknown = sorted(set(tasks) - set(self.tasks))
        if unknown:
            raise KeyError(f"this policy head has no embedding for the tasks {unknown}; it knows {self.tasks}")
        return torch.tensor([self.tasks.index(task) for task in tasks])

    def fuse(self, tokens: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
        """FiLM: scale and shift every token of a sequence by its task's embedding."""
        gamma, beta = self.film(self.embedding(task_index)).chunk(2, dim=-1)
        return tokens * (1 + gamma[:, None]) + beta[:, None]

    def distribution(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log standard deviation of the Gaussian over each position's action."""
        mean, log_std = self.action(hidden).chunk(2, dim=-1)
        return mean, log_std.clamp(*LOG_STD_RANGE)

    def extended(self, tasks: list[str], generator: torch.Generator) -> TaskHead:
        """A copy of this head that also knows ``tasks``.

        A new task's embedding starts at the mean of the known tasks' embeddings plus a little
        noise (drawn from ``generator``): the policy first acts as on an average known task.
        """
        new = [task for task in tasks if task not in self.tasks]
        head = TaskHead(self.tasks + new, self.config).to(self.film.weight.dtype)
        head.film.load_state_dict(self.film.state_dict())
        head.action.load_state_dict(self.action.state_dict())
        with torch.no_grad():
            head.embedding.weight[: len(self.tasks)] = self.embedding.weight
            noise = NEW_TASK_NOISE * torch.randn(
                len(new), self.embedding.embedding_dim, generator=generator, dtype=torch.float64
            )
            head.embedding.weight[len(self.tasks) :] = self.embedding.weight.mean(dim=0) + noise.to(
                head.embedding.weight.dtype
            )
        return head


class BCPolicy(nn.Module):
    """State encoder, GPT-2 decoder and a task head; ``decoder`` may be wrapped by ``peft``."""

    def __init__(self, config: PolicyConfig, tasks: list[str]):
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(
            nn.Linear(OBSERVATION_DIM, config.width), nn.GELU(), nn.Linear(config.width, config.width)
        )
        self.decoder = GPT2Model(config.decoder_config())
        self.head = TaskHead(tasks, config)
        self.register_buffer("state_mean", torch.zeros(OBSERVATION_DIM))
        self.register_buffer("state_scale", torch.ones(OBSERVATION_DIM))

    def normalize_states(self, states: torch.Tensor) -> None:
        """Standardize observations with the mean and spread of ``states`` (the pretraining data).

        Meta-World's features are positions in metres that vary by centimetres; the encoder
        learns much faster from standardized inputs. A feature that barely varies in these tasks
        (an object that none of them moves) may vary in later ones, so no scale is below
        ``MIN_STATE_SCALE``: a later task's features are not blown up by a near-zero spread.
        """
        flat = states.reshape(-1, OBSERVATION_DIM)
        self.state_mean.copy_(flat.mean(dim=0))
        self.state_scale.copy_(flat.std(dim=0).clamp(min=MIN_STATE_SCALE))

    def forward(self, states: torch.Tensor, task_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian parameters of the action at every position of ``states`` (batch, window, 39)."""
        tokens = self.head.fuse(self.encoder((states - self.state_mean) / self.state_scale), task_index)
        hidden = self.decoder(inputs_embeds=tokens, position_ids=self.position_ids(states.shape[1])).last_hidden_state
        return self.head.distribution(hidden)

    def position_ids(self, length: int) -> torch.Tensor:
        """Positions 0 to ``length - 1``, the ones pretraining used, also behind prefix tuning.

        ``peft`` places prefix-tuning's virtual tokens at the first positions and shifts the
        given positions by their number; left to itself, the decoder would read a window's
        tokens at positions the frozen position table never learned.
        """
        peft_config = getattr(self.decoder, "active_peft_config", None)  # on peft's wrapper (prefix tuning)
        virtual_tokens = getattr(peft_config, "num_virtual_tokens", None) or 0  # None for other methods
        return (torch.arange(length) - virtual_tokens)[None]

    def loss(self, states: torch.Tensor, actions: torch.Tensor, task_index: torch.Tensor) -> torch.Tensor:
        """The behaviour-cloning loss: mean Gaussian negative log likelihood per action dimension."""
        mean, log_std = self(states, task_index)
        squared = ((actions - mean) / log_std.exp()) ** 2
        return (0.5 * squared + log_std + 0.5 * math.log(2 * math.pi)).mean()

    @torch.no_grad()
    def act(self, history: np.ndarray, task: str) -> np.ndarray:
        """The mean action after the observations ``history`` (oldest first) in ``task``."""
        states = torch.as_tensor(last_window(history, self.config.window), dtype=self.head.film.weight.dtype)
        mean, _ = self(states[None], self.head.index([task]))
        return mean[0, -1].numpy()

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The shared, pretrained parameters: the state encoder and the decoder (without adapters)."""
        decoder = [p for name, p in self.decoder.named_parameters() if not is_adapter_parameter(name)]
        return list(self.encoder.parameters()) + decoder


ADAPTER_MARKERS = ("lora_", "prompt_encoder", "bottleneck.")


def is_adapter_parameter(name: str) -> bool:
    """Whether a parameter belongs to an adapter: LoRA, a prefix encoder (both ``peft``) or bottlenecks."""
    return any(marker in name for marker in ADAPTER_MARKERS)


def last_window(history: np.ndarray, window: int) -> np.ndarray:
    """The last ``window`` rows of ``history``, padded in front by repeating its first row."""
    if len(history) >= window:
        return history[-window:]
    return np.concatenate([np.repeat(history[:1], window - len(history), axis=0), history])
