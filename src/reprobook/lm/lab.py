"""Named laboratory models: pinned artifacts shipped with the book, or trained once and cached.

**Pinned artifacts.** Training amplifies floating-point round-off: the same seed
and recipe give different weights on CPUs whose kernels round differently (AVX2
against AVX-512, say), and the third digit of a pruned model's perplexity moves.
So the small models the chapters use are shipped with the book, in
``reprobook/lm/pinned/<name>/``, and pinned: ``pins.json`` holds the sha256 of each
artifact's manifest, and the manifest the sha256 of every file. ``pretrained(name)``
loads the pinned artifact whenever one exists for that name and seed, was trained
with the current spec and on the same corpus; a chapter downstream of it then starts
from the same bytes on every machine. ``reprobook models --pin NAME`` trains and
pins a model again after its recipe changed (a test fails until it is re-pinned).

**The cache.** Every other model (another seed, your own corpus, a model without a
pin, or ``pinned=False``) is trained once and kept in a content-addressed cache:
``<cache>/models/<name>-<key>/``, where the key hashes the model's spec, the
corpus, the seed and the torch version. Its ``manifest.json``, written last, lists
the sha256 of every file. An entry without a manifest, or whose files do not match
it, is deleted and rebuilt, never loaded; an interrupted training resumes from its
checkpoint. One process trains while the others wait (:func:`reprobook.cache.build_once`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import safetensors.torch
import torch
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from reprobook.atomic import atomic_torch_save, atomic_write_text
from reprobook.cache import build_once, cache_root, content_key, file_sha256
from reprobook.checks import check_count
from reprobook.lm.corpus import Corpus, load_corpus
from reprobook.lm.models import MODEL_SPECS, ModelSpec, build_model, get_spec, parameter_count
from reprobook.lm.tokenizer import END_OF_TEXT, train_tokenizer, wrap
from reprobook.lm.train import pretrain

# Loading and saving these small models is instant: their progress bars would only clutter the notebooks.
transformers_logging.disable_progress_bar()

#: Bump when the training code changes in a way that changes the weights.
FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
#: The artifacts shipped with the book, and their pins (sha256 of each manifest).
PINNED_FOLDER = Path(__file__).parent / "pinned"
PINS = PINNED_FOLDER / "pins.json"


@dataclass
class LabModel:
    """A trained laboratory model with its tokenizer, loss history and facts about it."""

    name: str
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerFast
    history: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def corpus_fingerprint(corpus: Corpus) -> str:
    """sha256 of the corpus's three splits: what the models were trained and evaluated on."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(corpus.text(split).encode("utf-8") + b"\0")
    return digest.hexdigest()


def load_tokenizer(name: str, corpus: Corpus, cache: str | os.PathLike | None = None) -> PreTrainedTokenizerFast:
    """The tokenizer ``name`` trained on the corpus's training split, from the cache or trained now."""
    path = cache_root(cache) / "tokenizers" / f"{name}-{content_key(name, corpus_fingerprint(corpus))}.json"

    def read() -> PreTrainedTokenizerFast | None:
        try:
            return wrap(Tokenizer.from_file(str(path)))
        except Exception:  # missing or unreadable: train it again
            return None

    def build() -> None:
        atomic_write_text(path, train_tokenizer(name, corpus.text("train")).backend_tokenizer.to_str())

    return build_once(path, read, build)


def encode(
    tokenizer: PreTrainedTokenizerFast,
    corpus: Corpus,
    split: str,
    domain: str = "all",
    cache: str | os.PathLike | None = None,
) -> torch.Tensor:
    """The token ids of a split (or of its works in ``domain``), the works separated by the end-of-text token.

    Tokenizing the training split takes seconds, so the ids are kept in the book's cache,
    keyed by the tokenizer, the corpus, the split and the domain.
    """
    tokenizer_sha = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()
    key = content_key("token-ids", tokenizer_sha, corpus_fingerprint(corpus), split, domain)
    path = cache_root(cache) / "token-ids" / f"{split}-{domain}-{key}.pt"

    def read() -> torch.Tensor | None:
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # missing or unreadable: tokenize again
            return None

    def build() -> None:
        eos = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
        texts = [work.text for work in corpus.domain(domain, split)]
        ids: list[int] = []
        for encoding in tokenizer.backend_tokenizer.encode_batch_fast(texts, add_special_tokens=False):
            ids += encoding.ids + [eos]  # the fast batch skips the character offsets, which nothing here reads
        atomic_torch_save(path, torch.tensor(ids, dtype=torch.long))

    return build_once(path, read, build)


def speeches(
    tokenizer: PreTrainedTokenizerFast,
    corpus: Corpus,
    split: str,
    domain: str = "all",
    *,
    min_tokens: int = 8,
    max_tokens: int = 32,
) -> list[list[int]]:
    """The token ids of every speech (a paragraph between blank lines) of a split's works in ``domain``.

    Each is cut to its first ``max_tokens`` tokens; speeches shorter than ``min_tokens`` (a
    speaker's name, a stage direction) are left out. The sentences of FisherSFT's selection.
    """
    min_tokens, max_tokens = check_count("min_tokens", min_tokens), check_count("max_tokens", max_tokens)
    if min_tokens > max_tokens:
        raise ValueError(f"min_tokens must be at most max_tokens {max_tokens}, got {min_tokens}")
    paragraphs = [paragraph for work in corpus.domain(domain, split) for paragraph in work.text.split("\n\n")]
    encodings = tokenizer.backend_tokenizer.encode_batch_fast(paragraphs, add_special_tokens=False)
    return [encoding.ids[:max_tokens] for encoding in encodings if len(encoding.ids) >= min_tokens]


def text_tokens(tokenizer: PreTrainedTokenizerFast, text: str, corpus: Corpus | None = None) -> torch.Tensor:
    """The token ids of ``text``: a split of the book's corpus (see :func:`encode`) or a local text file.

    The value of a notebook parameter of type ``text`` (``reprobook.book.profiles``).
    """
    if text in SPLITS:
        return encode(tokenizer, corpus or load_corpus(), text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"text must be a split of the book's corpus {list(SPLITS)} or a local text file, got {text!r}")
    ids = tokenizer(path.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def model_key(name: str, corpus: Corpus, seed: int, steps: int | None = None) -> str:
    """The cache key of a trained model: everything that determines its weights."""
    return content_key(
        FORMAT_VERSION,
        spec_with_steps(name, steps).as_dict(),
        corpus_fingerprint(corpus),
        seed,
        torch.__version__.split("+")[0],
    )


def spec_with_steps(name: str, steps: int | None = None) -> ModelSpec:
    """The spec of the named model, its training shortened or lengthened to ``steps`` optimizer steps.

    The rest of the recipe is kept, its warm-up capped at ``steps``. ``None``, or the
    recipe's own number of steps, gives the named model's spec itself.
    """
    spec = get_spec(name)
    if steps is None:
        return spec
    steps = check_count("steps", steps)
    if steps == spec.training.steps:
        return spec
    training = replace(spec.training, steps=steps, warmup_steps=min(spec.training.warmup_steps, steps))
    return replace(spec, training=training)


def pretrained(
    name: str,
    seed: int = 0,
    corpus: Corpus | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
    pinned: bool = True,
    steps: int | None = None,
) -> LabModel:
    """The named laboratory model trained with ``seed``.

    The pinned artifact when one matches (unless ``pinned=False``), else the cache
    entry, else a model trained now and cached.

    ``steps`` trains it for that many optimizer steps instead of its recipe's (see
    :func:`spec_with_steps`): another model, cached under its own key and never the
    pinned artifact. ``None``, or the recipe's own number, is the named model.
    """
    spec = spec_with_steps(name, steps)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    corpus = corpus or load_corpus(cache=cache)
    artifact = pinned_entry(name, seed, corpus) if pinned and spec == get_spec(name) else None
    if artifact is not None:
        return load_entry(artifact)
    entry = _entry_path(name, corpus, seed, cache, steps)

    def train() -> None:
        if entry.exists():  # incomplete or corrupt: never loaded
            shutil.rmtree(entry)
        _train_entry(spec, corpus, seed, entry, cache, progress)

    return build_once(entry, lambda: load_entry(entry) if verify_entry(entry) else None, train)


def weights_digest(model: torch.nn.Module) -> str:
    """The sha256 of a model's state dict, in order: two models share it exactly when their weights are bit-equal."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode() + tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_pins() -> dict[str, dict]:
    """``pins.json``: for each pinned model, its seed and the sha256 of its manifest."""
    return json.loads(PINS.read_text()) if PINS.is_file() else {}


def pinned_entry(name: str, seed: int, corpus: Corpus) -> Path | None:
    """The folder of the pinned artifact of ``name`` when it applies, else None.

    It applies when it was trained with ``seed``, the current spec of ``name`` and this
    corpus. An artifact that applies but does not match its pin is an error: the
    book's files were changed.
    """
    pin = read_pins().get(name)
    if pin is None or pin["seed"] != seed:
        return None
    folder = PINNED_FOLDER / name
    info = json.loads((folder / MANIFEST).read_text())["info"]
    if info["spec"] != get_spec(name).as_dict() or info["corpus_sha256"] != corpus_fingerprint(corpus):
        return None
    if file_sha256(folder / MANIFEST) != pin["manifest_sha256"] or not verify_entry(folder):
        raise OSError(
            f"the pinned artifact {folder} does not match its sha256 pin in {PINS}; "
            "restore it from the book's repository (git checkout)"
        )
    return folder


def pin_model(name: str, seed: int = 0, corpus: Corpus | None = None, cache=None, progress: bool = True) -> Path:
    """Train ``name`` (or take it from the cache) and ship it as the pinned artifact."""
    corpus = corpus or load_corpus(cache=cache)
    pretrained(name, seed=seed, corpus=corpus, cache=cache, progress=progress, pinned=False)
    entry = _entry_path(name, corpus, seed, cache)
    folder = PINNED_FOLDER / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(entry, folder)
    pins = {**read_pins(), name: {"seed": seed, "manifest_sha256": file_sha256(folder / MANIFEST)}}
    atomic_write_text(PINS, json.dumps(pins, indent=1, sort_keys=True) + "\n")
    return folder


def _entry_path(name: str, corpus: Corpus, seed: int, cache, steps: int | None = None) -> Path:
    return cache_root(cache) / "models" / f"{name}-{model_key(name, corpus, seed, steps)}"


def cached_entry(name: str, seed: int = 0, corpus: Corpus | None = None, cache=None) -> Path | None:
    """The folder of the intact cache entry of a model, or None when it is not built."""
    entry = _entry_path(name, corpus or load_corpus(cache=cache), seed, cache)
    return entry if verify_entry(entry) else None


def verify_entry(entry: Path) -> bool:
    """True when ``entry`` has a manifest and every file it lists has the recorded sha256."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        return all(file_sha256(entry / name) == digest for name, digest in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_entry(entry: Path) -> LabModel:
    """Load a verified cache entry.

    The weights are read into memory from the very bytes whose hash is checked,
    not memory-mapped, so a later change to the file cannot reach a loaded model.
    """
    manifest = json.loads((entry / MANIFEST).read_text())
    data = (entry / WEIGHTS).read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["files"][WEIGHTS]:
        raise OSError(f"{entry / WEIGHTS} changed after it was verified")
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(entry, local_files_only=True))
    missing, unexpected = model.load_state_dict(safetensors.torch.load(data), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise OSError(f"{entry / WEIGHTS} does not match its configuration: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(entry, local_files_only=True)
    return LabModel(manifest["info"]["name"], model, tokenizer, manifest["history"], manifest["info"])


def _train_entry(spec, corpus: Corpus, seed: int, entry: Path, cache, progress: bool) -> None:
    """Train into ``<entry>.partial`` (resumable), then move the finished entry into place."""
    partial = entry.with_name(entry.name + ".partial")
    tokenizer = load_tokenizer(spec.tokenizer, corpus, cache)
    train_tokens = encode(tokenizer, corpus, "train", spec.domain, cache)
    validation_tokens = encode(tokenizer, corpus, "validation", spec.domain, cache)
    model = build_model(spec, len(tokenizer), tokenizer.convert_tokens_to_ids(END_OF_TEXT), seed)
    start = time.perf_counter()
    history = pretrain(
        model,
        train_tokens,
        validation_tokens,
        spec.training,
        spec.context,
        seed,
        checkpoint_dir=partial,
        progress=progress,
        description=f"pretraining {spec.name}",
    )
    seconds = time.perf_counter() - start
    final = partial / "final"
    model.save_pretrained(final, safe_serialization=True)
    tokenizer.save_pretrained(final)
    info = {
        "name": spec.name,
        "seed": seed,
        "parameters": parameter_count(model),
        "spec": spec.as_dict(),
        "corpus": corpus.name,
        "corpus_sha256": corpus_fingerprint(corpus),
        "train_tokens": train_tokens.numel(),
        "validation_tokens": validation_tokens.numel(),
        "train_seconds_last_session": round(seconds, 1),
        "threads": spec.training.threads,
        "torch": torch.__version__,
        # the kernels that rounded this training: another CPU gives other bytes
        "cpu": f"{platform.machine()}, {torch.backends.cpu.get_cpu_capability()}",
    }
    files = {path.name: file_sha256(path) for path in sorted(final.iterdir()) if path.is_file()}
    atomic_write_text(final / MANIFEST, json.dumps({"files": files, "info": info, "history": history}, indent=1))
    entry.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, entry)
    shutil.rmtree(partial)


def load_causal_lm(name_or_path: str | os.PathLike, **kwargs) -> LabModel:
    """A laboratory model by name, or a local Hugging Face checkpoint folder, never from the network.

    Names: those of :data:`MODEL_SPECS` (``kwargs`` go to :func:`pretrained`). A
    folder must hold a causal LM and its tokenizer saved with ``save_pretrained``
    (for the chapters' ``paper`` profiles on a GPU machine).
    """
    if str(name_or_path) in MODEL_SPECS:
        return pretrained(str(name_or_path), **kwargs)
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"name_or_path must be a laboratory model name {sorted(MODEL_SPECS)} or a local checkpoint "
            f"folder; {str(name_or_path)!r} is neither (nothing is downloaded)"
        )
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model.eval()
    return LabModel(
        path.name, model, tokenizer, {}, {"name": path.name, "path": str(path), "parameters": parameter_count(model)}
    )
