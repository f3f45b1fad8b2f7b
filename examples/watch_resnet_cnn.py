"""Watch a residual CNN (BatchNorm, skip connections) train on images this script draws (no download).

    python examples/watch_resnet_cnn.py --out runs/cnn
    tui-lab show runs/cnn

Twelve residual blocks of 3x3 convolutions classify 16x16 pictures of four shapes (a square, a cross, a ring,
a diagonal) drawn with noise. `--plain` takes the skip connections and the BatchNorm out: the same depth then
shows the gradient fading toward the input, where the residual net keeps it level. With a GPU it trains in
mixed precision with a GradScaler, and the lab reads the unscaled gradients.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import tui_lab


def shapes(n: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 4, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    c = size / 2 - 0.5
    r = ((yy - c) ** 2 + (xx - c) ** 2).sqrt()
    pictures = torch.stack([
        ((yy - c).abs() < 5) & ((xx - c).abs() < 5),  # a square
        ((yy - c).abs() < 1.5) | ((xx - c).abs() < 1.5),  # a cross
        (r > 4) & (r < 6.5),  # a ring
        (yy - xx).abs() < 2,  # a diagonal
    ]).float()  # fmt: skip
    images = pictures[label] + 0.6 * torch.randn(n, size, size, generator=g)
    return images[:, None], label


class Block(nn.Module):
    def __init__(self, channels: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        norm = (lambda: nn.BatchNorm2d(channels)) if residual else nn.Identity
        self.conv1, self.norm1 = nn.Conv2d(channels, channels, 3, padding=1), norm()
        self.conv2, self.norm2 = nn.Conv2d(channels, channels, 3, padding=1), norm()
        self.act1, self.act2 = nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        return self.act2(x + h if self.residual else h)


def make_model(depth: int, channels: int, residual: bool) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        *(Block(channels, residual) for _ in range(depth)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, 4),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/watch-cnn")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--plain", action="store_true", help="no skip connections, no BatchNorm")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(1)
    x, y = shapes(2048)
    x, y = x.to(args.device), y.to(args.device)
    model = make_model(args.depth, 8, residual=not args.plain).to(args.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    amp = args.device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda") if amp else None
    name = "plain-cnn" if args.plain else "resnet-cnn"

    with tui_lab.watch(model, optimizer, out=args.out, every=args.every, name=name, scaler=scaler) as lab:
        for step in range(args.steps):
            idx = torch.randint(0, len(x), (64,), device=args.device)
            with torch.autocast(args.device.split(":")[0], enabled=amp):
                logits = model(x[idx])
                loss = nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)  # unscales the gradients first: the lab reads them unscaled
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            lab.log(loss=loss, acc=(logits.argmax(1) == y[idx]).float().mean())
            if step % 25 == 0:
                print(f"step {step}  loss {loss.item():.3f}")
    print(f"{lab.result.status}: {lab.run_dir}  (tui-lab show {lab.run_dir})")


if __name__ == "__main__":
    main()
