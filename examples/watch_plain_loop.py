"""Watch a plain PyTorch training loop with the lab's instruments.

    python examples/watch_plain_loop.py --out runs/mine          # in one terminal (or tmux pane)
    tui-lab show runs/mine                                        # in another: it follows the run live

A 10-layer sigmoid MLP on two spirals made here (no download): the lab finds the gradient vanishing toward the
input. `--act relu` trains the same net with ReLU and He init (compare the two runs' gradient flow);
`--act relu --init-scale 3` blows it up instead (exploding, then diverged: summary.json says where it broke).
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import tui_lab


def spirals(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 3, (n,), generator=g)
    r = torch.rand(n, generator=g)
    angle = label * (2 * math.pi / 3) + 4 * r + 0.2 * torch.randn(n, generator=g)
    return torch.stack([r * torch.cos(angle), r * torch.sin(angle)], 1), label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/watch-plain")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--act", choices=["sigmoid", "relu", "tanh"], default="sigmoid")
    parser.add_argument("--init-scale", type=float, default=1.0, help="multiply the initial weights")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)  # a small model: one thread is fastest
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}[args.act]
    layers: list[nn.Module] = [nn.Linear(2, 64), act()]
    for _ in range(9):
        layers += [nn.Linear(64, 64), act()]
    model = nn.Sequential(*layers, nn.Linear(64, 3))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear) and args.act == "relu":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # He init: the fix for deep ReLU nets
                nn.init.zeros_(m.bias)
        for p in model.parameters():
            p.mul_(args.init_scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    x, y = spirals(4096)

    with tui_lab.watch(model, optimizer, out=args.out, every=args.every, name=f"spirals-{args.act}") as lab:
        for step in range(args.steps):
            idx = torch.randint(0, len(x), (128,))
            logits = model(x[idx])
            loss = loss_fn(logits, y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lab.log(loss=loss, acc=(logits.argmax(1) == y[idx]).float().mean())
            if step % 500 == 0:
                print(f"step {step}  loss {loss.item():.3f}")
    print(f"{lab.result.status}: {lab.run_dir}  (tui-lab show {lab.run_dir})")


if __name__ == "__main__":
    main()
