"""ProxSparse from the command line, on one process or several GPUs through ``accelerate launch``.

The same :func:`reprobook.sparse.proxsparse.proxsparse` as the chapter's notebooks; every
process holds a replica of the model and takes its share of each batch::

    accelerate launch --num_processes 8 -m reprobook.sparse.proxsparse_launch \\
        --model ~/models/Llama-2-7b-hf --calibration-text ~/data/c4-train-sample.txt \\
        --evaluation-text ~/data/wikitext-2-raw-test.txt --sequences 400 --length 4096 \\
        --lam 0.25 --learning-rate 1e-4 --batch 8 --dtype bfloat16 --output ~/runs/proxsparse

It writes, in ``--output``: ``model/`` (the pruned model and its tokenizer, ``save_pretrained``),
``masks.safetensors``, ``log.csv`` and ``result.json`` (settings, times, perplexity). A run
that is interrupted resumes from ``--output/checkpoint`` when started again. Nothing is
downloaded: the model is a local folder (or a laboratory model's name) and the texts are
local files or splits of the book's corpus.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import safetensors.torch
import torch

from reprobook.atomic import atomic_write_text
from reprobook.lm.evaluate import perplexity
from reprobook.lm.lab import load_causal_lm, text_tokens
from reprobook.lm.train import random_windows
from reprobook.sparse.proxsparse import proxsparse


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reprobook.sparse.proxsparse_launch", description=__doc__)
    parser.add_argument("--model", required=True, help="a local checkpoint folder or a laboratory model's name")
    parser.add_argument("--calibration-text", default="train", help="a local text file or a split of the corpus")
    parser.add_argument("--evaluation-text", help="measure perplexity on this text at the end (optional)")
    parser.add_argument("--sequences", type=int, default=400, help="calibration windows (default 400)")
    parser.add_argument("--length", type=int, default=4096, help="tokens per window (default 4096)")
    parser.add_argument("--lam", type=float, required=True, help="lambda_1, the per-step prox strength")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW's peak learning rate")
    parser.add_argument("--batch", type=int, default=1, help="sequences per step, over all processes")
    parser.add_argument("--frozen-strength", type=float, default=0.0, help="lambda_2 of the full variant")
    parser.add_argument("--projection", choices=["prox", "rigid"], default="prox")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True, help="folder for the results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from accelerate import Accelerator

    args = parse(argv)
    accelerator = Accelerator()
    lab = load_causal_lm(args.model, seed=args.seed)
    model = lab.model.to(dtype=getattr(torch, args.dtype))
    windows = random_windows(
        text_tokens(lab.tokenizer, args.calibration_text),
        args.sequences,
        args.length,
        torch.Generator().manual_seed(args.seed),
    )
    result = proxsparse(
        model,
        windows,
        args.lam,
        learning_rate=args.learning_rate,
        batch_size=args.batch,
        frozen_strength=args.frozen_strength,
        projection=args.projection,
        seed=args.seed,
        checkpoint_dir=args.output / "checkpoint",
        accelerator=accelerator,
    )
    if not accelerator.is_main_process:
        return 0
    summary = {"settings": {k: str(v) for k, v in vars(args).items()}, "seconds": result.seconds}
    if args.evaluation_text:
        tokens = text_tokens(lab.tokenizer, args.evaluation_text)
        summary["perplexity"] = perplexity(model, tokens.to(accelerator.device), args.length, batch_size=1)
    model.save_pretrained(args.output / "model")
    lab.tokenizer.save_pretrained(args.output / "model")
    safetensors.torch.save_file(
        {name: mask.contiguous() for name, mask in result.masks.items()}, args.output / "masks.safetensors"
    )
    result.log.to_csv(args.output / "log.csv", index=False)
    atomic_write_text(args.output / "result.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
