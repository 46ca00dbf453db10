"""Training a laboratory language model with each optimizer of the MADA chapter.

Every run goes through the book's one training loop, :func:`reprobook.lm.train.pretrain`
(random windows, linear warm-up then cosine decay, gradient clipping, weight decay on
matrices), with the optimizer built by :func:`reprobook.optim.adaptive.make_optimizer`. The
model is a laboratory architecture trained from its seed, on a tokenization of the book's
corpus (the character-level one for the paper's Shakespeare experiment). Runs are
independent, so they can go to parallel processes, one thread each.

Learning rates are tuned the same way for every optimizer: each runs over one grid of peak
learning rates, the rate with the lowest final validation loss is kept
(:func:`tuned_learning_rates`), and the comparison is judged on the test split, which no
choice has seen (``RunResult.test_loss``).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.stats
import torch

from reprobook.lm.corpus import load_corpus
from reprobook.lm.lab import encode, load_tokenizer
from reprobook.lm.models import ModelSpec, TrainingRecipe, build_model, get_spec
from reprobook.lm.tokenizer import END_OF_TEXT
from reprobook.lm.train import estimate_loss, pretrain
from reprobook.optim.adaptive import OPTIMIZERS, make_optimizer
from reprobook.optim.mada import COEFFICIENTS

#: The seed of the fixed test batches every run is measured on.
TEST_SEED = 12345


@dataclass(frozen=True)
class LanguageModelTask:
    """What every run trains: an architecture, its recipe, and the token streams."""

    spec: ModelSpec
    recipe: TrainingRecipe
    train_tokens: torch.Tensor
    validation_tokens: torch.Tensor
    vocab_size: int
    end_of_text: int
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    test_tokens: torch.Tensor | None = None
    test_batches: int = 0


@dataclass(frozen=True)
class RunConfig:
    """One run: the optimizer, the seed, the initial (β1, β2), and MADA's options if any.

    ``learning_rate`` is the run's peak learning rate (``None``: the task's recipe's).
    """

    optimizer: str
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.95)
    mada: dict = field(default_factory=dict)
    label: str = ""
    learning_rate: float | None = None

    @property
    def name(self) -> str:
        return self.label or self.optimizer


@dataclass
class RunResult:
    """The loss history of a run, MADA's coefficient trace (empty for the others), its time.

    ``test_loss`` is the final model's loss on the task's test split (NaN when the task has
    none); ``learning_rate`` the peak learning rate it trained at.
    """

    config: RunConfig
    history: dict[str, list[float]]
    coefficient_trace: list[dict[str, float]]
    seconds: float
    test_loss: float = math.nan
    learning_rate: float = math.nan

    @property
    def final_train_loss(self) -> float:
        return self.history["eval_train_loss"][-1]

    @property
    def final_validation_loss(self) -> float:
        return self.history["eval_validation_loss"][-1]


def language_model_task(
    model: str,
    recipe: TrainingRecipe,
    architecture: dict | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    corpus=None,
    cache=None,
    test_batches: int = 0,
) -> LanguageModelTask:
    """The tokenizer and architecture of the laboratory model ``model``, with another recipe.

    Each run trains the model from scratch; only its tokenizer and shape are the named
    model's (``lab-micro`` is character-level). ``architecture`` overrides fields of the
    shape (``hidden_size``, ``intermediate_size``, ``layers``, ``heads``, ``context``).
    ``dtype`` is the runs' floating-point type: ``float64`` makes a short run's losses the same
    to many digits on CPUs whose kernels round differently (float32 round-off, amplified by
    training, moves them in the second decimal). ``test_batches`` > 0 adds the corpus's test
    split: every run then ends with its loss on that many fixed test batches.
    """
    if dtype not in ("float32", "float64", "bfloat16"):
        raise ValueError(f"dtype must be 'float32', 'float64' or 'bfloat16', got {dtype!r}")
    spec = get_spec(model)
    architecture = dict(architecture or {})
    unknown = sorted(set(architecture) - {"hidden_size", "intermediate_size", "layers", "heads", "context"})
    if unknown:
        raise ValueError(f"architecture has unknown fields {unknown}")
    for name, value in architecture.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"architecture[{name!r}] must be a positive integer, got {value!r}")
    if architecture.get("hidden_size", spec.hidden_size) % architecture.get("heads", spec.heads):
        raise ValueError("architecture: hidden_size must be a multiple of heads")
    if isinstance(test_batches, bool) or not isinstance(test_batches, int) or test_batches < 0:
        raise ValueError(f"test_batches must be a non-negative integer, got {test_batches!r}")
    corpus = corpus or load_corpus(cache=cache)
    tokenizer = load_tokenizer(spec.tokenizer, corpus, cache)
    return LanguageModelTask(
        spec=replace(spec, **architecture, training=recipe),
        recipe=recipe,
        train_tokens=encode(tokenizer, corpus, "train", cache=cache),
        validation_tokens=encode(tokenizer, corpus, "validation", cache=cache),
        vocab_size=len(tokenizer),
        end_of_text=tokenizer.convert_tokens_to_ids(END_OF_TEXT),
        device=device,
        dtype=getattr(torch, dtype),
        test_tokens=encode(tokenizer, corpus, "test", cache=cache) if test_batches else None,
        test_batches=test_batches,
    )


def unigram_loss(task: LanguageModelTask) -> float:
    """The validation loss of the unigram model of the training split: the plateau of early training.

    A language model first learns the tokens' frequencies; its loss then sits near this value
    until it starts to use the context. Tokens unseen in training get one count each.
    """
    vocab = task.vocab_size
    counts = torch.bincount(task.train_tokens, minlength=vocab).double() + 1.0
    log_probabilities = torch.log(counts / counts.sum())
    targets = task.validation_tokens
    return float(-log_probabilities[targets].mean())


def causal_lm_loss(logits, labels, vocab_size: int, ignore_index: int = -100, **kwargs) -> torch.Tensor:
    """Next-token cross-entropy, as ``transformers``' causal-LM loss, but float64 logits stay float64.

    ``transformers`` casts the logits to float32 before the loss; in a float64 run that cast
    brings float32 round-off, and with it the CPU's kernels, back into every gradient.
    """
    logits = logits if logits.dtype == torch.float64 else logits.float()
    targets = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, vocab_size), targets.reshape(-1).to(logits.device), ignore_index=ignore_index
    )


def initialize_portably(model: torch.nn.Module, seed: int) -> None:
    """LLaMA's initialization, normal(0, initializer_range) matrices and unit norms, drawn by NumPy.

    ``torch``'s vectorized normal sampler rounds differently under different CPU kernels (AVX2,
    AVX-512, none), and training amplifies that into the printed losses; NumPy's generator gives
    the same numbers on every CPU. (The LLaMA layers have no biases.)
    """
    generator = np.random.default_rng(seed)
    std = model.config.initializer_range
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim >= 2:
                values = generator.normal(0.0, std, size=tuple(parameter.shape))
                parameter.copy_(torch.from_numpy(values))
            else:
                parameter.fill_(1.0)


def train_run(task: LanguageModelTask, config: RunConfig) -> RunResult:
    """Train a fresh model (initialized from ``config.seed``) with the configured optimizer.

    With a test split in the task, the final model's test loss is measured on fixed batches
    (drawn from a seed of their own, the same for every run).
    """
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {config.optimizer!r}")
    recipe = task.recipe
    if config.learning_rate is not None:
        if not (isinstance(config.learning_rate, int | float) and 0 < config.learning_rate < math.inf):
            raise ValueError(f"learning_rate must be a positive number, got {config.learning_rate!r}")
        recipe = replace(recipe, learning_rate=float(config.learning_rate))
    built: list[torch.optim.Optimizer] = []

    def optimizer(param_groups, learning_rate):
        built.append(make_optimizer(config.optimizer, param_groups, learning_rate, config.betas, **config.mada))
        return built[0]

    model = build_model(task.spec, task.vocab_size, task.end_of_text, config.seed)
    model = model.to(device=task.device, dtype=task.dtype)
    initialize_portably(model, config.seed)
    model.loss_function = causal_lm_loss
    start = time.perf_counter()
    history = pretrain(
        model,
        task.train_tokens,
        task.validation_tokens,
        recipe,
        task.spec.context,
        config.seed,
        progress=False,
        optimizer=optimizer,
    )
    trace = getattr(built[0], "coefficient_trace", [])
    seconds = time.perf_counter() - start
    test_loss = math.nan
    if task.test_tokens is not None and task.test_batches:
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(recipe.threads)
        try:
            test_loss = estimate_loss(
                model, task.test_tokens, task.spec.context, task.test_batches, recipe.batch_size, TEST_SEED
            )
        finally:
            torch.set_num_threads(previous_threads)
    return RunResult(config, history, list(trace), seconds, test_loss, recipe.learning_rate)


def train_runs(task: LanguageModelTask, configs: list[RunConfig], workers: int = 1) -> list[RunResult]:
    """Every run of ``configs``, in order; ``workers`` > 1 spreads them over processes.

    Each run uses the recipe's thread count, so results do not depend on ``workers``.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if workers == 1:
        return [train_run(task, config) for config in configs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(train_run, [task] * len(configs), configs))


def results_frame(results: list[RunResult]) -> pd.DataFrame:
    """One row per run: name, seed, initial (β1, β2), learning rate, final losses, seconds."""
    return pd.DataFrame(
        [
            {
                "optimizer": r.config.name,
                "seed": r.config.seed,
                "beta1": r.config.betas[0],
                "beta2": r.config.betas[1],
                "learning rate": r.learning_rate,
                "train loss": r.final_train_loss,
                "validation loss": r.final_validation_loss,
                "test loss": r.test_loss,
                "seconds": r.seconds,
            }
            for r in results
        ]
    )


def gains_over(frame: pd.DataFrame, baseline: str = "adam", loss: str = "validation loss") -> pd.DataFrame:
    """Per optimizer: the mean final loss, and the gain L_baseline − L_X paired by seed (mean, std, wins).

    The gain is positive where the optimizer ends below the baseline trained from the same seed.
    """
    losses = frame.pivot_table(index="seed", columns="optimizer", values=loss)
    if baseline not in losses:
        raise ValueError(f"baseline {baseline!r} is not among the runs {sorted(losses)}")
    gains = -losses.sub(losses[baseline], axis=0)
    table = pd.DataFrame(
        {
            loss: losses.mean(),
            "gain": gains.mean(),
            "gain std": gains.std(ddof=1) if len(gains) > 1 else 0.0,
            "seeds with a gain": (gains > 0).sum(),
        }
    )
    order = list(dict.fromkeys(frame["optimizer"]))
    return table.loc[order]


def tuned_learning_rates(frame: pd.DataFrame, loss: str = "validation loss") -> dict[str, float]:
    """Per optimizer, the learning rate of the grid with the lowest ``loss`` (mean over its seeds).

    ``frame`` is :func:`results_frame` of the tuning runs, every optimizer over the same grid;
    a tie goes to the smaller rate. Refuses a frame whose optimizers did not run the same grid.
    """
    if not np.isfinite(frame[loss].to_numpy(dtype=float)).all():
        raise ValueError(f"every tuning run must end with a finite {loss}")
    means = frame.groupby(["optimizer", "learning rate"], sort=False)[loss].mean().unstack()
    grids = {name: tuple(sorted(row.dropna().index)) for name, row in means.iterrows()}
    if len(set(grids.values())) != 1:
        raise ValueError(f"every optimizer must run the same grid of learning rates, got {grids}")
    means = means[sorted(means.columns)]
    order = list(dict.fromkeys(frame["optimizer"]))
    return {name: float(means.loc[name].idxmin()) for name in order}


def final_state_config(result: RunResult, label: str = "mada final state") -> RunConfig:
    """The "MADA final state" ablation of a MADA run: its final coefficients, frozen, from the start.

    It trains at the MADA run's learning rate.
    """
    if not result.coefficient_trace:
        raise ValueError(f"run {result.config.name!r} has no coefficient trace: it is not a MADA run")
    final = dict(result.coefficient_trace[-1])
    betas = (final.pop("beta1"), final.pop("beta2"))
    options = {k: v for k, v in result.config.mada.items() if k not in ("hyper_lr", "hyper_start", *final)}
    return RunConfig(
        "mada",
        seed=result.config.seed,
        betas=betas,
        mada={**options, **final, "hyper_lr": {}},
        label=label,
        learning_rate=result.config.learning_rate,
    )


def optimizer_options(
    mada_start: list[float], hyper_lrs: list[float], hyper_start: int, zeroed_previous_grad: bool = False
) -> dict[str, dict]:
    """The options of MADA and HyperAdam for :class:`RunConfig`, from a notebook's parameters.

    ``mada_start`` is MADA's initial (β3, ρ, c, γ), ``hyper_lrs`` the hyper-learning rates of
    (β1, β2, β3, ρ, c, γ); HyperAdam keeps its own (β1 and β2 only, at the official rates).
    ``zeroed_previous_grad`` gives MADA the official training loop's look-ahead gradient
    (:mod:`reprobook.optim.mada`); it is passed only when set.
    """
    if len(mada_start) != 4 or len(hyper_lrs) != len(COEFFICIENTS):
        raise ValueError(
            f"mada_start must hold (beta3, rho, c, gamma) and hyper_lrs one rate per coefficient "
            f"{list(COEFFICIENTS)}; got {len(mada_start)} and {len(hyper_lrs)} values"
        )
    return {
        "mada": {
            **dict(zip(COEFFICIENTS[2:], mada_start)),
            "hyper_lr": dict(zip(COEFFICIENTS, hyper_lrs)),
            "hyper_start": hyper_start,
            **({"zeroed_previous_grad": True} if zeroed_previous_grad else {}),
        },
        "hyperadam": {"hyper_start": hyper_start},
    }


def paired_t(frame: pd.DataFrame, better: str, than: str, loss: str = "validation loss") -> float:
    """The paired t statistic of L_than − L_better over the seeds (``scipy.stats.ttest_rel``).

    Positive when ``better`` ends lower; at 3 seeds, 2.92 is the one-sided 5% point.
    """
    losses = frame.pivot_table(index="seed", columns="optimizer", values=loss)
    missing = sorted({better, than} - set(losses))
    if missing or len(losses) < 2:
        raise ValueError(f"paired_t needs both optimizers {missing or [better, than]} over at least 2 seeds")
    return float(scipy.stats.ttest_rel(losses[than], losses[better]).statistic)
