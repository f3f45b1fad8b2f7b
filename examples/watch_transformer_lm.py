"""Watch a small Transformer language model train on text this script generates (no download).

    python examples/watch_transformer_lm.py --out runs/lm
    tui-lab show runs/lm

A 3-block pre-norm decoder (token and position embeddings, multi-head self-attention, MLPs, LayerNorms) learns
to continue sentences of a tiny made-up grammar, one character at a time, with AdamW. Every module with
weights is watched (embeddings, attention projections, MLP layers, norms) in forward order; `--layers` picks
some by name pattern, e.g. `--layers "blocks.*.attn*"`.
"""

from __future__ import annotations

import argparse
import random

import torch
from torch import nn

import tui_lab

SUBJECTS = ["the cat", "a dog", "my friend", "the engineer", "a small bird", "the model"]
VERBS = ["sees", "likes", "follows", "trains", "watches", "finds"]
OBJECTS = ["the gradient", "a red ball", "the terminal", "every layer", "the loss", "a quiet tree"]


def make_text(sentences: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(sentences))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    def __init__(self, vocab: int, context: int, dim: int = 48, heads: int = 4, depth: int = 3) -> None:
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        self.register_buffer("mask", torch.triu(torch.full((context, context), float("-inf")), 1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.tokens(idx) + self.positions(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x, self.mask[:t, :t])
        return self.head(self.norm(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/watch-lm")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--layers", default=None, help="glob patterns of module names, comma-separated")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(1)  # a small model: one thread is fastest
    text = make_text(4000)
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text], device=args.device)
    context, batch = 32, 16
    model = TinyLM(len(chars), context).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    layers = args.layers.split(",") if args.layers else None

    with tui_lab.watch(model, optimizer, out=args.out, every=args.every, name="tiny-lm", layers=layers) as lab:
        for step in range(args.steps):
            starts = torch.randint(0, len(data) - context - 1, (batch,), device=args.device)
            x = torch.stack([data[s : s + context] for s in starts])
            y = torch.stack([data[s + 1 : s + context + 1] for s in starts])
            loss = nn.functional.cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lab.log(loss=loss)  # a tensor: on a GPU it is summed there, no sync per step
            if step % 50 == 0:
                print(f"step {step}  loss {loss.item():.3f}")
    print(f"{lab.result.status}: {lab.run_dir}  (tui-lab show {lab.run_dir})")


if __name__ == "__main__":
    main()
