"""tui_lab.lightning: the lab's watch as a PyTorch Lightning callback (README: Watch your own model). A Trainer
fits small modules on the CPU; the run directory it leaves is read back as `tui-lab show` reads it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

L = pytest.importorskip("lightning.pytorch")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tui_lab.core.runlog import read_metrics, read_summary  # noqa: E402
from tui_lab.lightning import TuiLabCallback, column  # noqa: E402

from support import ROOT  # noqa: E402

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning")


def data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def loader(n: int = 256, batch: int = 32) -> DataLoader:
    return DataLoader(TensorDataset(*data(n)), batch_size=batch)


def module_class(base: type) -> type:
    class Net(base):
        def __init__(self, depth: int = 3, act: type = nn.ReLU, fail_at: int | None = None, error=None):
            super().__init__()
            torch.manual_seed(0)
            layers: list[nn.Module] = [nn.Linear(2, 32), act()]
            for _ in range(depth - 1):
                layers += [nn.Linear(32, 32), act()]
            self.net = nn.Sequential(*layers, nn.Linear(32, 3))
            self.fail_at, self.error = fail_at, error or RuntimeError("the batch was bad\nsecond line")

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            if self.fail_at is not None and self.global_step == self.fail_at:
                raise self.error
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_acc", (self(x).argmax(1) == y).float().mean())
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))
            self.log("val/accuracy", torch.tensor(0.25))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return Net


Net = module_class(L.LightningModule)


def trainer(callback: TuiLabCallback, package=L, **kwargs) -> L.Trainer:
    options = dict(max_epochs=2, accelerator="cpu", devices=1, enable_progress_bar=False, logger=False,
                   enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    return package.Trainer(callbacks=[callback], **{**options, **kwargs})


def lines(run: Path) -> list[dict]:
    return read_metrics(run)[0]


class TestFit:
    def test_a_fit_writes_the_labs_run_directory(self, tmp_path):
        callback = TuiLabCallback(out=tmp_path / "fit", every=5)
        module = Net()
        first_loss = nn.functional.cross_entropy(module(data()[0][:32]), data()[1][:32]).item()
        trainer(callback).fit(module, loader(), loader(64))
        run = tmp_path / "fit"
        summary = read_summary(run)
        assert summary["status"] == "completed" and summary["steps"] == 16  # 8 batches x 2 epochs
        assert summary["findings"] and summary["layers"] == ["net.0", "net.2", "net.4", "net.6"]
        records = lines(run)
        assert [r["step"] for r in records] == [0, 5, 10, 15]  # counted by the trainer's optimiser
        # The loss training_step returned, at its own step; the layers' numbers measured.
        assert records[0]["loss"] == pytest.approx(first_loss, rel=1e-5)
        assert records[0]["layers"][0]["grad_norm"] > 0 and records[0]["layers"][0]["dead_frac"] is not None
        # What the module logged with self.log, on the lab's columns: validation runs after epoch 1 (step 7).
        assert records[0]["acc"] is not None and records[0]["val_loss"] is None
        assert records[-1]["val_loss"] > 0 and records[-1]["val_acc"] == pytest.approx(0.25)
        assert callback.result.status == "completed" and callback.run_dir == run

    def test_with_accumulated_gradients_a_step_is_the_optimisers_and_the_loss_the_batchs(self, tmp_path):
        callback = TuiLabCallback(out=tmp_path / "acc", every=2)
        module = Net()
        first_loss = nn.functional.cross_entropy(module(data()[0][:32]), data()[1][:32]).item()
        trainer(callback, max_epochs=1, accumulate_grad_batches=4).fit(module, loader())
        assert read_summary(tmp_path / "acc")["steps"] == 2
        records = lines(tmp_path / "acc")
        assert [r["step"] for r in records] == [0]
        # Four batches' losses averaged, each as training_step returned it (not divided by 4).
        assert first_loss / 2 < records[0]["loss"] < first_loss * 2

    def test_a_deep_sigmoid_module_is_found_vanishing(self, tmp_path):
        callback = TuiLabCallback(out=tmp_path / "sig", every=4)
        trainer(callback, max_epochs=1, max_steps=5).fit(Net(depth=10, act=nn.Sigmoid), loader())
        summary = read_summary(tmp_path / "sig")
        kinds = [f["kind"] for f in summary["findings"]]
        assert "vanishing" in kinds, summary["findings"]
        assert "sigmoid" in summary["findings"][kinds.index("vanishing")]["message"]

    def test_under_16_bit_mixed_precision_the_signal_is_read_unscaled(self, tmp_path):
        from lightning.pytorch.plugins import MixedPrecision

        signal_at = {}
        for name, options in [
            ("fp32", {}),
            ("amp", {"plugins": [MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", 1024.0))]}),
        ]:
            callback = TuiLabCallback(out=tmp_path / name, every=2)
            trainer(callback, max_steps=3, **options).fit(Net(), loader())
            assert read_summary(tmp_path / name)["status"] == "completed"
            signal_at[name] = [r["layers"][0]["act_grad_norm"] for r in lines(tmp_path / name)]
        # The trainer's GradScaler (1024x) is the watch's: the back-propagated signal comes out unscaled.
        assert signal_at["amp"] == pytest.approx(signal_at["fp32"], rel=0.02)

    def test_the_older_pytorch_lightning_package_takes_it_too(self, tmp_path):
        pl = pytest.importorskip("pytorch_lightning")
        callback = TuiLabCallback(out=tmp_path / "pl", every=2)
        trainer(callback, package=pl, max_steps=3).fit(module_class(pl.LightningModule)(), loader())
        assert read_summary(tmp_path / "pl")["status"] == "completed"
        assert [r["step"] for r in lines(tmp_path / "pl")] == [0, 2]


class TestEndings:
    def test_an_exception_in_training_step_fails_the_run_with_its_message(self, tmp_path):
        callback = TuiLabCallback(out=tmp_path / "crash", every=2)
        with pytest.raises(RuntimeError, match="the batch was bad"):
            trainer(callback).fit(Net(fail_at=5), loader())
        summary = read_summary(tmp_path / "crash")
        assert summary["status"] == "failed" and summary["message"] == "RuntimeError: the batch was bad"
        assert summary["steps"] == 5
        text = (tmp_path / "crash" / "metrics.jsonl").read_text()
        assert text.endswith("\n") and [json.loads(line)["step"] for line in text.splitlines()] == [0, 2, 4]

    def test_ctrl_c_stops_it(self, tmp_path):
        callback = TuiLabCallback(out=tmp_path / "stop", every=2)
        sigint = signal.getsignal(signal.SIGINT)
        try:
            with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful exit(1)
                trainer(callback).fit(Net(fail_at=3, error=KeyboardInterrupt()), loader())
        finally:
            signal.signal(signal.SIGINT, sigint)  # Lightning ignores a second Ctrl-C from then on
        summary = read_summary(tmp_path / "stop")
        assert summary["status"] == "stopped" and summary["reason"] == "user" and summary["steps"] == 3

    def test_sigterm_says_terminated(self, tmp_path):
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        callback = TuiLabCallback(out=tmp_path / "term", every=2)
        with pytest.raises(SystemExit):
            trainer(callback).fit(Net(fail_at=3, error=SIGTERMException()), loader())
        summary = read_summary(tmp_path / "term")
        assert summary["status"] == "stopped" and summary["reason"] == "terminated"
        assert "SIGTERM" in summary["message"] and callback.result.reason == "terminated"

    def test_the_hooks_are_gone_after_the_fit(self, tmp_path):
        module = Net()
        trainer(TuiLabCallback(out=tmp_path / "gone", every=1), max_steps=2).fit(module, loader())
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


class TestArguments:
    def test_only_global_rank_zero_writes(self, tmp_path):
        class Rank1:
            is_global_zero = False

        callback = TuiLabCallback(out=tmp_path / "rank1")
        callback.on_fit_start(Rank1(), Net())
        callback.on_train_batch_end(Rank1(), Net(), {"loss": torch.tensor(1.0)}, None, 0)
        callback.on_fit_end(Rank1(), Net())
        assert not (tmp_path / "rank1").exists() and callback.run_dir is None

    def test_a_bad_every_is_refused_when_the_callback_is_made(self):
        with pytest.raises(ValueError, match="every = 0: allowed: an integer >= 1"):
            TuiLabCallback(every=0)

    def test_without_lightning_the_import_says_what_to_install(self, monkeypatch):
        from tui_lab import lightning

        monkeypatch.setitem(sys.modules, "lightning.pytorch", None)  # as if neither package were installed
        monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
        with pytest.raises(ImportError, match=r'pip install "tui-lab\[lightning\]"'):
            lightning._callback_bases()

    @pytest.mark.parametrize(
        "key, name",
        [("train_loss", "loss"), ("loss", "loss"), ("train_acc_step", "acc"), ("val_loss_epoch", "val_loss"),
         ("val/accuracy", "val_acc"), ("loss/valid", "val_loss"), ("lr-SGD", "lr-SGD"), ("test_loss", "test_loss")],
    )  # fmt: skip
    def test_logged_names_fill_the_labs_columns(self, key, name):
        assert column(key) == name


def test_the_example_runs(tmp_path):
    out = tmp_path / "example"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "watch_lightning.py"), "--out", str(out), "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"completed: {out}" in proc.stdout
    summary = read_summary(out)
    assert summary["status"] == "completed" and summary["steps"] == 112  # 56 batches an epoch
    assert lines(out)[-1]["val_acc"] is not None  # validated after the first epoch
