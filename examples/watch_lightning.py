"""Watch a PyTorch Lightning module train, with the lab's callback (pip install "tui-lab[lightning]").

    python examples/watch_lightning.py --out runs/lightning      # in one terminal (or tmux pane)
    tui-lab show runs/lightning                                   # in another: it follows the run live

A 6-layer ReLU MLP (He init) classifies two interleaved half-moons made here (no download); the validation
loss and accuracy it logs with `self.log` show in the lab next to its gradients. `--broken` makes it a
14-layer sigmoid net with PyTorch's default init instead: the lab finds the gradient vanishing toward the input.
"""

from __future__ import annotations

import argparse
import math
import warnings

import lightning.pytorch as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tui_lab.lightning import TuiLabCallback


def moons(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.where(label[:, None] == 0, upper, lower) + 0.1 * torch.randn(n, 2, generator=g)
    return x, label


class Classifier(L.LightningModule):
    def __init__(self, broken: bool = False, lr: float = 0.1) -> None:
        super().__init__()
        self.lr = lr
        depth, act = (14, nn.Sigmoid) if broken else (6, nn.ReLU)
        layers: list[nn.Module] = [nn.Linear(2, 64), act()]
        for _ in range(depth - 1):
            layers += [nn.Linear(64, 64), act()]
        self.net = nn.Sequential(*layers, nn.Linear(64, 2))
        if not broken:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # He init: the fix for deep ReLU nets
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss  # the callback takes the loss from here, every step

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/watch-lightning")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--broken", action="store_true", help="a deep sigmoid net: the gradient vanishes")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)  # a small model: one thread is fastest
    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # the data is a tensor in memory
    warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning's own use of a torch API torch deprecated
    x, y = moons(4096)
    train = DataLoader(TensorDataset(x[:3584], y[:3584]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(x[3584:], y[3584:]), batch_size=512)

    callback = TuiLabCallback(out=args.out, every=args.every, name="moons-sigmoid" if args.broken else "moons-relu")
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Classifier(broken=args.broken), train, val)
    print(f"val_loss {trainer.callback_metrics['val_loss']:.3f}  val_acc {trainer.callback_metrics['val_acc']:.3f}")
    print(f"{callback.result.status}: {callback.run_dir}  (tui-lab show {callback.run_dir})")


if __name__ == "__main__":
    main()
