"""Continue a prompt with a published model folder, compressed or not, without the training code:

    python -m fm_pipeline.compression.generate <folder> --prompt "..." [--tokenizer tokenizer.model]

A published compressed_model folder carries its tokenizer (`tokenizer.model`), used when none is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sentencepiece as spm
import torch

from fm_pipeline.compression.export import load_compressed
from fm_pipeline.compression.inference import compile_for_inference
from fm_pipeline.lake.layout import TOKENIZER_MODEL


def generate(
    folder: Path, tokenizer: Path, prompt: str, max_new_tokens: int = 64, temperature: float = 0.8,
    top_k: int | None = 50, seed: int = 0, compile: bool = False,
) -> str:
    """The continuation of `prompt` (without the prompt), sampled from the model in `folder`; `compile` runs
    the generation step compiled by Inductor (`inference.compile_for_inference`), the fast path for torchao int8."""
    model, _ = load_compressed(Path(folder))
    if model.config.architecture != "decoder_only":
        raise ValueError("only decoder_only models generate free text")
    if compile:
        model = compile_for_inference(model)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    ids = [sp.bos_id(), *sp.encode(prompt)]
    generator = torch.Generator().manual_seed(seed)
    out = model.generate(torch.tensor([ids]), max_new_tokens, temperature, top_k, eos_id=sp.eos_id(),
                         generator=generator)
    return sp.decode([i for i in out[0, len(ids):].tolist() if i != sp.eos_id()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a compressed_model folder (or any checkpoint folder)")
    parser.add_argument("--tokenizer", type=Path, help="the SentencePiece model (default: <folder>/tokenizer.model)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 decodes greedily")
    parser.add_argument("--top-k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true",
                        help="compile the generation step (tens of seconds first; then fast int8 on AMX/VNNI CPUs)")
    args = parser.parse_args(argv)
    tokenizer = args.tokenizer or args.folder / TOKENIZER_MODEL
    print(generate(args.folder, tokenizer, args.prompt, args.max_new_tokens, args.temperature, args.top_k,
                   args.seed, args.compile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
