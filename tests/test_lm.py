"""The laboratory language models: tokenizers, models, pretraining, the cache, evaluation."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from reprobook.lm import lab as lab_module
from reprobook.lm import train as train_module
from reprobook.lm.corpus import load_corpus
from reprobook.lm.evaluate import bigram_perplexity, generate_text, perplexity, unigram_perplexity
from reprobook.lm.lab import MANIFEST, encode, load_causal_lm, pretrained, verify_entry
from reprobook.lm.models import MODEL_SPECS, TrainingRecipe, build_model, get_spec, parameter_count
from reprobook.lm.tokenizer import check_tokenizer_name, train_tokenizer
from reprobook.lm.train import pretrain


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def micro(corpus, tmp_path_factory):
    """lab-micro trained into an empty cache (the pinned artifact set aside)."""
    cache = tmp_path_factory.mktemp("cache")
    return cache, pretrained("lab-micro", corpus=corpus, cache=cache, progress=False, pinned=False)


def entry_of(cache):
    """The folder of the lab-micro entry in a cache (not its lock file)."""
    return next(path for path in (cache / "models").glob("lab-micro-*") if path.is_dir())


def weights_equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("name", ["char", "bpe-1024"])
def test_tokenizers_round_trip_the_held_out_text(corpus, name):
    tokenizer = train_tokenizer(name, corpus.text("train")[:400_000])
    text = corpus.text("validation")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if name == "char":
        known = set(tokenizer.get_vocab())
        text = "".join(c if c in known else "" for c in text)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) or name == "char"


def test_bpe_training_is_deterministic(corpus):
    sample = corpus.text("train")[:200_000]
    first, second = train_tokenizer("bpe-512", sample), train_tokenizer("bpe-512", sample)
    assert first.get_vocab() == second.get_vocab() and len(first) == 512


@pytest.mark.parametrize("name", ["bpe", "bpe-100", "wordpiece", 3])
def test_bad_tokenizer_names(name):
    with pytest.raises(ValueError, match="tokenizer must be 'char' or 'bpe-<size>'"):
        check_tokenizer_name(name)


@pytest.mark.parametrize("name", sorted(MODEL_SPECS))
def test_model_shapes_and_parameter_counts(name):
    spec = get_spec(name)
    vocab = 100 if spec.tokenizer == "char" else int(spec.tokenizer.split("-")[1])
    model = build_model(spec, vocab, end_of_text=0, seed=0)
    padded = -(-vocab // 64) * 64
    h, i, layers = spec.hidden_size, spec.intermediate_size, spec.layers
    assert model.config.vocab_size == padded
    assert parameter_count(model) == padded * h + layers * (4 * h * h + 3 * h * i + 2 * h) + h
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            assert all(d % 64 == 0 for d in module.weight.shape), module
    logits = model(input_ids=torch.zeros(2, spec.context, dtype=torch.long)).logits
    assert logits.shape == (2, spec.context, padded)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown laboratory model 'lab-huge'"):
        get_spec("lab-huge")
    with pytest.raises(ValueError, match="is neither"):
        load_causal_lm("lab-huge")


RECIPE = TrainingRecipe(steps=12, batch_size=4, learning_rate=3e-3, warmup_steps=2, eval_every=6, eval_batches=1)


def short_run(seed, tokens, checkpoint_dir=None):
    model = build_model(get_spec("lab-micro"), 64, 0, seed=seed)
    history = pretrain(
        model, tokens, tokens, RECIPE, context=32, seed=seed, checkpoint_dir=checkpoint_dir, progress=False
    )
    return model, history


def test_training_is_deterministic_for_a_seed():
    tokens = torch.randint(0, 64, (5000,), generator=torch.Generator().manual_seed(0))
    (a, history_a), (b, history_b), (c, _) = short_run(1, tokens), short_run(1, tokens), short_run(2, tokens)
    assert weights_equal(a, b) and history_a == history_b
    assert not weights_equal(a, c)
    assert history_a["train_loss"][-1] < history_a["train_loss"][0]
    assert history_a["eval_step"] == [6, 12]


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    tokens = torch.randint(0, 64, (5000,), generator=torch.Generator().manual_seed(0))
    reference, reference_history = short_run(1, tokens)
    calls = {"n": 0}
    original = train_module.random_windows

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "random_windows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        short_run(1, tokens, checkpoint_dir=tmp_path)
    monkeypatch.setattr(train_module, "random_windows", original)
    assert (tmp_path / train_module.CHECKPOINT).is_file()
    resumed, history = short_run(1, tokens, checkpoint_dir=tmp_path)
    assert weights_equal(reference, resumed) and history == reference_history


def test_cache_hit_returns_the_same_weights_without_training(micro, corpus, monkeypatch):
    cache, first = micro
    monkeypatch.setattr(lab_module, "pretrain", lambda *a, **k: pytest.fail("a cache hit must not train"))
    again = pretrained("lab-micro", corpus=corpus, cache=cache, progress=False, pinned=False)
    assert weights_equal(first.model, again.model)
    assert again.info["parameters"] == parameter_count(first.model)


def test_a_corrupt_entry_is_rebuilt_never_loaded(micro, corpus):
    cache, first = micro
    entry = entry_of(cache)
    weights = entry / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not verify_entry(entry)
    rebuilt = pretrained("lab-micro", corpus=corpus, cache=cache, progress=False, pinned=False)
    assert verify_entry(entry) and weights_equal(first.model, rebuilt.model)
    (entry / MANIFEST).unlink()  # an entry interrupted before its manifest was written
    assert not verify_entry(entry)
    assert weights_equal(
        first.model, pretrained("lab-micro", corpus=corpus, cache=cache, progress=False, pinned=False).model
    )


def test_a_fresh_training_equals_the_cached_model(micro, corpus, tmp_path):
    _, cached = micro
    fresh = pretrained("lab-micro", corpus=corpus, cache=tmp_path, progress=False, pinned=False)
    assert weights_equal(cached.model, fresh.model)
    manifest = json.loads(next((tmp_path / "models").glob("lab-micro-*/manifest.json")).read_text())
    assert manifest["info"]["seed"] == 0 and "model.safetensors" in manifest["files"]


def test_a_steps_override_is_another_model_under_its_own_key(micro, corpus, tmp_path, monkeypatch):
    cache, first = micro
    recipe = get_spec("lab-micro").training
    assert lab_module.spec_with_steps("lab-micro", recipe.steps) is get_spec("lab-micro")
    for steps in (None, recipe.steps):  # the recipe's own count is the named model: a cache hit
        with monkeypatch.context() as patched:
            patched.setattr(lab_module, "pretrain", lambda *a, **k: pytest.fail("a cache hit must not train"))
            same = pretrained("lab-micro", corpus=corpus, cache=cache, progress=False, pinned=False, steps=steps)
        assert weights_equal(first.model, same.model)
    # pinned=True: a shorter training is never the pinned artifact
    short = pretrained("lab-micro", corpus=corpus, cache=tmp_path, progress=False, steps=3)
    assert short.history["step"] == [1, 2, 3] and short.history["eval_step"] == [3]
    training = short.info["spec"]["training"]
    assert training["steps"] == 3 and training["warmup_steps"] == min(recipe.warmup_steps, 3)
    assert {key: value for key, value in training.items() if key not in ("steps", "warmup_steps")} == {
        key: value
        for key, value in get_spec("lab-micro").as_dict()["training"].items()
        if key not in ("steps", "warmup_steps")
    }
    assert not weights_equal(first.model, short.model)
    assert lab_module.model_key("lab-micro", corpus, 0, 3) != lab_module.model_key("lab-micro", corpus, 0)
    assert lab_module.model_key("lab-micro", corpus, 0, recipe.steps) == lab_module.model_key("lab-micro", corpus, 0)
    monkeypatch.setattr(lab_module, "pretrain", lambda *a, **k: pytest.fail("a cache hit must not train"))
    again = pretrained("lab-micro", corpus=corpus, cache=tmp_path, progress=False, pinned=False, steps=3)
    assert weights_equal(short.model, again.model)


@pytest.mark.parametrize("steps", [0, -5])
def test_a_steps_override_below_one_is_refused(steps):
    with pytest.raises(ValueError, match="steps"):
        pretrained("lab-micro", steps=steps)


@pytest.mark.parametrize("steps", [2.5, True, "10"])
def test_a_steps_override_must_be_an_integer(steps):
    with pytest.raises(TypeError, match="steps"):
        pretrained("lab-micro", steps=steps)


def test_load_causal_lm_reads_a_local_checkpoint(micro, tmp_path):
    _, lab = micro
    lab.model.save_pretrained(tmp_path / "checkpoint")
    lab.tokenizer.save_pretrained(tmp_path / "checkpoint")
    loaded = load_causal_lm(tmp_path / "checkpoint")
    assert weights_equal(lab.model, loaded.model)
    assert loaded.tokenizer.get_vocab() == lab.tokenizer.get_vocab()


def test_perplexity_of_one_block_is_the_exponential_of_the_loss(micro, corpus):
    _, lab = micro
    tokens = encode(lab.tokenizer, corpus, "validation")[:64]
    loss = lab.model(input_ids=tokens[None], labels=tokens[None]).loss.item()
    assert perplexity(lab.model, tokens, block_size=64) == pytest.approx(math.exp(loss), rel=1e-5)
    with pytest.raises(ValueError, match="block_size"):
        perplexity(lab.model, tokens, block_size=1)


def test_trained_micro_model_beats_the_unigram_baseline(micro, corpus):
    _, lab = micro
    train, validation = (encode(lab.tokenizer, corpus, s) for s in ("train", "validation"))
    vocab = lab.model.config.vocab_size
    assert perplexity(lab.model, validation[:20_000], 64) < unigram_perplexity(train, validation, vocab)


def test_ngram_baselines_on_known_sequences():
    periodic = torch.arange(4).repeat(200)
    assert unigram_perplexity(periodic, periodic, 4) == pytest.approx(4.0, rel=1e-2)
    assert bigram_perplexity(periodic, periodic, 4) == pytest.approx(1 / (0.95 + 0.05 * 0.25), rel=1e-2)
    with pytest.raises(ValueError, match="eval_tokens"):
        bigram_perplexity(periodic, torch.tensor([1.5, 2.5]), 4)


def test_generation_is_reproducible_and_checked(micro):
    _, lab = micro
    first = generate_text(lab.model, lab.tokenizer, "ROMEO:", max_new_tokens=20, seed=3)
    assert first == generate_text(lab.model, lab.tokenizer, "ROMEO:", max_new_tokens=20, seed=3)
    assert first.startswith("ROMEO:") and len(first) > len("ROMEO:")
    with pytest.raises(ValueError, match="temperature"):
        generate_text(lab.model, lab.tokenizer, "ROMEO:", temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        generate_text(lab.model, lab.tokenizer, "ROMEO:", top_k=0)


def test_an_unfinished_partial_entry_does_not_count(micro, corpus, tmp_path):
    cache, _ = micro
    entry = entry_of(cache)
    copy = tmp_path / "models" / (entry.name + ".partial")
    shutil.copytree(entry, copy)
    assert lab_module.cached_entry("lab-micro", corpus=corpus, cache=tmp_path) is None


@pytest.mark.parametrize("name", sorted(lab_module.read_pins()))
def test_pinned_artifacts_match_their_recipe_corpus_and_pins(name, corpus):
    seed = lab_module.read_pins()[name]["seed"]
    entry = lab_module.pinned_entry(name, seed, corpus)
    assert entry is not None, f"{name} was pinned with another recipe or corpus: run `reprobook models --pin {name}`"
    lab = pretrained(name, seed=seed, corpus=corpus)
    assert lab.info["spec"] == get_spec(name).as_dict()
    assert parameter_count(lab.model) == lab.info["parameters"]


def test_pins_apply_only_to_their_seed_and_a_changed_file_is_an_error(corpus, tmp_path, monkeypatch):
    assert lab_module.pinned_entry("lab-micro", 1, corpus) is None
    shutil.copytree(lab_module.PINNED_FOLDER, tmp_path / "pinned")
    monkeypatch.setattr(lab_module, "PINNED_FOLDER", tmp_path / "pinned")
    monkeypatch.setattr(lab_module, "PINS", tmp_path / "pinned" / "pins.json")
    weights = tmp_path / "pinned" / "lab-micro" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(OSError, match="does not match its sha256 pin"):
        pretrained("lab-micro", corpus=corpus)


def test_weights_digest_tells_bit_equal_weights_apart(micro):
    _, lab = micro
    copy = build_model(get_spec("lab-micro"), 64, 0, seed=0)
    assert lab_module.weights_digest(lab.model) == lab_module.weights_digest(lab.model)
    assert lab_module.weights_digest(lab.model) != lab_module.weights_digest(copy)


def test_text_tokens_reads_a_split_or_a_local_file(micro, corpus, tmp_path):
    _, lab = micro
    assert torch.equal(lab_module.text_tokens(lab.tokenizer, "test", corpus), encode(lab.tokenizer, corpus, "test"))
    (tmp_path / "play.txt").write_text("ROMEO: hello")
    assert lab_module.text_tokens(lab.tokenizer, str(tmp_path / "play.txt")).numel() == len("ROMEO: hello")
    with pytest.raises(ValueError, match="a split of the book's corpus"):
        lab_module.text_tokens(lab.tokenizer, "training")


def test_encoded_splits_are_cached_and_read_back_unchanged(micro, corpus, tmp_path, monkeypatch):
    _, lab = micro
    expected = []
    for work in corpus.domain("comedies", "validation"):
        expected += lab.tokenizer(work.text, add_special_tokens=False)["input_ids"] + [lab.tokenizer.eos_token_id]
    first = encode(lab.tokenizer, corpus, "validation", "comedies", cache=tmp_path)
    assert first.tolist() == expected
    (entry,) = (tmp_path / "token-ids").glob("validation-comedies-*.pt")
    builds = []
    save = lab_module.atomic_torch_save
    monkeypatch.setattr(lab_module, "atomic_torch_save", lambda *args: builds.append(1) or save(*args))
    assert torch.equal(encode(lab.tokenizer, corpus, "validation", "comedies", cache=tmp_path), first)
    assert not builds, "a cached split is read, not tokenized again"
    entry.write_bytes(entry.read_bytes()[:100])  # a damaged entry is tokenized again, never read
    assert torch.equal(encode(lab.tokenizer, corpus, "validation", "comedies", cache=tmp_path), first)
    assert builds == [1]


def test_lora_finetuning_trains_only_the_adapters_and_lowers_the_loss():
    from reprobook.lm.finetune import lora_finetune
    from reprobook.lm.models import TrainingRecipe, build_model, get_spec

    spec = get_spec("lab-micro")
    model = build_model(spec, 20, 0, seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    pattern = torch.arange(20).repeat(200)  # a periodic stream a model can learn
    recipe = TrainingRecipe(steps=100, batch_size=8, learning_rate=3e-2, warmup_steps=5, eval_every=50, eval_batches=2)
    adapted, history = lora_finetune(model, pattern, pattern, recipe, spec.context, seed=0)
    trainable = [name for name, p in adapted.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # the caller's model is untouched
    assert len(history["train_loss"]) == recipe.steps
    assert perplexity(adapted, pattern, spec.context) < 0.8 * perplexity(model, pattern, spec.context)
    again, _ = lora_finetune(model, pattern, pattern, recipe, spec.context, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(adapted.parameters(), again.parameters()))


def test_a_domain_model_is_pretrained_on_its_genre_only(corpus):
    spec = get_spec("lab-comedy")
    assert spec.domain == "comedies" and all(get_spec(n).domain == "all" for n in ("lab-micro", "lab-tiny"))
    tokenizer = lab_module.load_tokenizer(spec.tokenizer, corpus)
    comedies = encode(tokenizer, corpus, "train", "comedies")
    expected = sum(len(tokenizer(w.text, add_special_tokens=False)["input_ids"]) + 1 for w in corpus.domain("comedies"))
    assert comedies.numel() == expected < encode(tokenizer, corpus, "train").numel()
    assert lab_module.pretrained("lab-comedy").info["train_tokens"] == comedies.numel()


def test_speeches_are_the_paragraphs_of_a_genre_cut_to_length(micro, corpus):
    _, lab = micro
    found = lab_module.speeches(lab.tokenizer, corpus, "test", "tragedies", min_tokens=20, max_tokens=50)
    assert found and all(20 <= len(s) <= 50 for s in found)
    first = next(
        p for p in corpus.domain("tragedies", "test")[0].text.split("\n\n") if len(lab.tokenizer(p)["input_ids"]) >= 20
    )
    assert found[0] == lab.tokenizer(first, add_special_tokens=False)["input_ids"][:50]
    with pytest.raises(ValueError, match="min_tokens must be at most max_tokens"):
        lab_module.speeches(lab.tokenizer, corpus, "test", min_tokens=9, max_tokens=8)
