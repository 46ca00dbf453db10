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
# # Where the adapters go, and how many parameters they train
#
# TAIL {cite}`liu2024tail` adapts a large pretrained policy to new tasks by training a small
# **adapter** per task suite while the pretrained weights $\theta$ stay frozen. With a weight
# $W \in \mathbb R^{d\times k}$ and $h_{\text{out}} = W^\top h_{\text{in}}$, the paper compares
# three ways to insert one:
#
# | style | the paper's form | where this book puts it |
# |---|---|---|
# | parallel: LoRA {cite}`hu2022lora` (Eq. 2) | $h_{\text{out}} = W^\top h_{\text{in}} + \alpha\, W_{\text{up}}^\top W_{\text{down}}^\top h_{\text{in}}$, rank $r$ | beside the attention's input projection |
# | sequential: bottleneck {cite}`houlsby2019adapters` (Eq. 3) | $h_{\text{out}} = W_{\text{up}}^\top \phi(W_{\text{down}}^\top W^\top h_{\text{in}})$ | after each attention output and each feed-forward network |
# | prefix tokens {cite}`li2021prefix` | $S = [p; s]$: $m$ learned virtual tokens before the input | keys and values of $m$ virtual tokens in every layer |
#
# The adapted policy also trains its **task head**: the fusion of the task's embedding into
# the state tokens (FiLM {cite}`perez2018film`) and the action head, one copy per suite. This
# notebook counts what each style trains: first the paper's own CLIP numbers of its Table 3,
# exactly, then this chapter's policy (`reprobook.imitation.policy`).

# %% tags=["parameters"]
profile = "book"
seed = 0
width = 64
layers = 2
heads = 4
task_dim = 32
lora_rank = 8
prefix_tokens = 30
bottleneck_size = 32
larger_widths = [128, 256, 768]

# %%
import copy

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from peft import LoraConfig, get_peft_model

from reprobook.book import ClaimsLedger, start_notebook
from reprobook.book.tables import print_table
from reprobook.imitation.adapters import add_adapter, count_by_location
from reprobook.imitation.continual import suite_parameters
from reprobook.imitation.evaluate import clip_counts, parameter_count
from reprobook.imitation.policy import BCPolicy, PolicyConfig
from reprobook.plotting import book_style

run = start_notebook("01_parameters", globals())
book_style()
ledger = ClaimsLedger.for_notebook("01_parameters", profile=run.profile)

# %% [markdown]
# ## The paper's Table 3, CLIP rows
#
# The paper's policy encodes images and the instruction with CLIP ViT-B/16
# {cite}`radford2021clip` and reports 149.62M parameters for it, and 0.49M for LoRA with
# $r = \alpha = 8$ on the query and value projections. Both are counted here from the
# model's configuration alone, on PyTorch's `meta` device: no weights are downloaded or even
# allocated.

# %%
clip = clip_counts(rank=lora_rank)
table3 = pd.DataFrame(
    {
        "counted": [clip["vision"], clip["text"], clip["total"], clip["lora"]],
        "the paper's Table 3": ["", "", "149.62M", "0.49M"],
    },
    index=[
        "vision tower",
        "text tower",
        "CLIP ViT-B/16",
        f"LoRA r={lora_rank} on q, v",
    ],
)
print_table(table3)

# %% [markdown]
# Both totals match the table to its last printed digit. The GPT-2 row (21.78M) cannot be
# matched: the paper does not give its decoder's inner width, and 6 layers at $d = 768$ give
# 23.69M with an inner width of 1024 and 42.58M with 3072.
#
# ## This chapter's policy
#
# Meta-World's 39 state features enter a two-layer state encoder; a learned embedding per task
# stands in for CLIP's text encoder; a GPT-2 decoder {cite}`radford2019gpt2` of `layers`
# blocks at width `width` reads the last few states. Each method trains a different part of it.

# %%
config = PolicyConfig(
    width=width, layers=layers, heads=heads, task_dim=task_dim, inner=4 * width
)
tasks = ["reach-v3", "push-v3"]
torch.manual_seed(seed)
base = BCPolicy(config, tasks).double()
styles = {"tail-lora": "lora", "tail-prefix": "prefix", "tail-bottleneck": "bottleneck"}


def adapted(method):
    """The base policy as ``method`` trains it on an adaptation suite."""
    policy = copy.deepcopy(base)
    if method in styles:
        add_adapter(
            policy,
            styles[method],
            rank=lora_rank,
            prefix_tokens=prefix_tokens,
            bottleneck=bottleneck_size,
        )
    return policy, suite_parameters(policy, method)


counts, used = {}, {}
for method in ["fft", "fpf", *styles]:
    policy, trained = adapted(method)
    counts[method] = count_by_location(policy, trained)
    used[method] = parameter_count(policy)
locations = pd.DataFrame(counts).fillna(0).astype(int)
summary = pd.DataFrame(
    {"trained": locations.sum(), "used to act": pd.Series(used)}
).assign(share=lambda frame: frame["trained"] / frame["used to act"])
print("trainable parameters by location:")
print_table(locations)
print_table(summary)

# %% [markdown]
# With LoRA only `4 r d` parameters per block train besides the head: GPT-2 fuses the query, key
# and value projections into one $d \times 3d$ matrix, so LoRA's down-projection ($d\times r$)
# and up-projection ($r \times 3d$) cover all three, where the paper adapts $W_Q$ and $W_V$ with
# two pairs of $d\times r$ and $r\times d$: the same count, a shared down-projection.
#
# The figure places each style's trainable parameters in the policy.

# %%
fig, ax = plt.subplots(figsize=(8, 4))
sns.heatmap(
    locations.replace(0, float("nan")),
    annot=True,
    fmt=".0f",
    cmap="Blues",
    cbar=False,
    ax=ax,
)
ax.set(xlabel="method", ylabel="", title="trainable parameters by location")
ax.grid(False)
plt.show()

# %% [markdown]
# ## The trainable share grows smaller with the backbone
#
# The paper's TAIL-LoRA trains 1.17% of its policy's parameters. The laboratory policy is
# tiny, and the task head alone (task embeddings, FiLM, action head) is several percent of it.
# LoRA's share falls as the decoder grows, since a block has about $12d^2$ weights and LoRA
# adds $4rd$. Counted without training, at 4 layers:

# %%
rows = []
for w in [width, *larger_widths]:
    n_layers = layers if w == width else 4
    shape = PolicyConfig(
        width=w, layers=n_layers, heads=heads, task_dim=task_dim, inner=4 * w
    )
    with torch.device("meta"):
        policy = BCPolicy(shape, tasks)
        add_adapter(policy, "lora", rank=lora_rank)
    trained = suite_parameters(policy, "tail-lora")
    used = parameter_count(policy)
    rows.append(
        {
            "width": w,
            "layers": n_layers,
            "parameters": used,
            "trained by TAIL-LoRA": sum(p.numel() for p in trained),
            "share": sum(p.numel() for p in trained) / used,
        }
    )
print_table(pd.DataFrame(rows), index=False)

# %% [markdown]
# ```{exercise} LoRA's parameters by hand
# :label: tail-ex-lora-count
#
# A GPT-2 decoder of $L$ blocks at width $d$ gets LoRA of rank $r$ on its fused attention
# projection `c_attn` ($d \to 3d$). How many parameters does LoRA add? Check your formula with
# `peft` for $L = 3$, $d = 48$, $r = 4$. Then count LoRA on CLIP's query and value projections
# at $r = 8$ (12 text blocks of width 512 and 12 vision blocks of width 768) and compare with
# 491,520.
# ```

# %% [markdown] tags=["solution"]
# ````{solution-start} tail-ex-lora-count
# :class: dropdown
# ````

# %% [markdown] tags=["solution"]
# Per block, $W_{\text{down}}$ has $d r$ entries and $W_{\text{up}}$ has $3 d r$: in all
# $4 d r L$, which is 2,304 for $L = 3$, $d = 48$, $r = 4$. On CLIP, each of $W_Q$ and $W_V$
# gets $2 d r$: $12 \cdot 2 \cdot 2 \cdot 512 \cdot 8 + 12 \cdot 2 \cdot 2 \cdot 768 \cdot 8
# = 196{,}608 + 294{,}912 = 491{,}520$.

# %% tags=["solution"]
from transformers import GPT2Config, GPT2Model  # noqa: E402

small = GPT2Model(
    GPT2Config(
        n_embd=48,
        n_layer=3,
        n_head=4,
        vocab_size=1,
        bos_token_id=None,
        eos_token_id=None,
    )
)
lora = get_peft_model(
    small, LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True)
)
print(parameter_count(lora, trainable_only=True), 4 * 48 * 4 * 3)
print(12 * 2 * 2 * 512 * 8 + 12 * 2 * 2 * 768 * 8)

# %% [markdown] tags=["solution"]
# ````{solution-end}
# ````

# %% [markdown]
# ## The claims

# %%
ledger.record("clip-count", clip["total"] / 1e6)
ledger.record("clip-lora-count", clip["lora"] / 1e6)
ledger.record("lora-share", summary.loc["tail-lora", "share"])

# %% tags=["nbval-check-output"]
ledger.report()
