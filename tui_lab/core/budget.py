"""How much memory a configuration needs, compared with what the device has free, before anything is allocated.

The estimate is arithmetic on the config alone (no torch, no allocation): the weights, their gradients, the
optimiser's state, the probes' copy of the weights, the activations one batch keeps for the backward pass (with
what a capture step adds: the retained d loss / d h and the probes' stacked copy), the data set (its peak while
it is generated and shuffled) and the runtime itself. Its per-layer factors were measured against the peak RSS of
real runs (tests/test_limits.py checks a few within a factor of two). `check(cfg)` is None when it fits, else
one line: what needs how much, what is free, and which keys to lower. The CLI refuses with it (exit 2) and the
TUI does not start the run.

Free memory: the CPU's is MemAvailable (/proc/meminfo), capped by a cgroup's limit when there is one; a GPU's is
torch.cuda.mem_get_info, asked only when the run goes to a GPU. $TUI_LAB_MEMORY_LIMIT (bytes, or 512M, 2G...)
says how much is free instead, for any device (tests, or to keep a lab small on a shared machine).
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_lab.core import choices
from tui_lab.core.config import LabConfig
from tui_lab.core.errors import UserError
from tui_lab.core.i18n import N_, _

LIMIT_ENV = "TUI_LAB_MEMORY_LIMIT"
FLOAT = 4  # bytes of a float32
INDEX = 8  # bytes of an int64 label or index
RUNTIME = 300 * 2**20  # Python, torch and the lab before any tensor (measured: 260-290 MB peak RSS, tiny runs)
SKLEARN = 120 * 2**20  # digits: scikit-learn and its data, imported for the data set
EVAL_CHUNK = 2048  # trainer.EVAL_CHUNK (not imported: that would import torch)
DIGITS = 1797  # scikit-learn's 8x8 digits
GPU_SLACK = 1.2  # the caching allocator rounds blocks up and keeps freed ones

# Optimiser state in copies of the weights: momentum/nesterov keep a velocity, Adagrad a sum of squares,
# RMSprop a running mean of squares, Adam(W) two moments.
OPTIM_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2, "adamw": 2}

# Activation tensors of one batch a hidden layer keeps until the backward pass, in units of its output (B x W,
# or B x W x 8 x 8 for a conv layer, B x T x W for a recurrent one): the layer's output and the activation's,
# plus the capture step's retained gradient and the probes' stacked copy; a norm, dropout or a residual sum adds
# its own output. A recurrent layer unrolls over time: per step, the cell keeps this many B x W tensors.
FEED_FORWARD = 4.0
NORM, DROPOUT, RESIDUAL = 1.0, 1.25, 2.0
RECURRENT_STEP = {"rnn": 10.0, "gru": 20.0, "lstm": 14.0}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

# Keys the estimate does not depend on: a sweep over them needs checking once, not once per value.
NO_MEMORY = {"title", "lesson", "seed", "model.activation", "model.init", "model.init_scale", "data.noise",
             "optim.lr", "optim.momentum", "optim.weight_decay", "optim.l1", "optim.clip_norm", "train.steps",
             "train.log_every", "train.eval_every"}  # fmt: skip


def matters(key: str) -> bool:
    """Whether the memory estimate can change with `key` (a dotted config key)."""
    return key not in NO_MEMORY and not key.startswith(("screen.", "translations."))


PART_NAMES = {
    "weights": N_("weights"),
    "gradients": N_("gradients"),
    "optimiser": N_("optimiser state"),
    "probes": N_("probes"),
    "activations": N_("activations"),
    "data": N_("data"),
    "runtime": N_("runtime"),
}


@dataclass
class Estimate:
    """Bytes by part, on the device the run trains on and on the host (the data is generated there)."""

    device: str  # "cpu" or "cuda:N"
    parts: dict[str, int] = field(default_factory=dict)  # the device's parts, PART_NAMES order
    host: int = 0  # bytes on the host, when the device is a GPU (runtime and the data while it is built)
    lower: list[str] = field(default_factory=list)  # the keys that shrink the largest part, most effective first

    @property
    def total(self) -> int:
        return sum(self.parts.values())


# ---------------------------------------------------------------------------------------------------------
# The shapes a configuration trains on, as data.py and models.py make them.


def shapes(cfg: LabConfig) -> tuple[tuple[int, ...], int, int]:
    """(input shape of one sample, outputs, samples) without building anything."""
    d, arch = cfg.data, choices.ARCHS[cfg.model.arch]
    if d.name == "digits":
        return ((1, 8, 8) if arch.spatial else (64,)), 10, DIGITS
    if d.name == "adding":
        return (d.seq_len, 2), 1, d.samples
    if d.name == "copy":
        return (d.seq_len, d.classes), d.classes, d.samples
    classes = d.classes if d.name in ("spiral", "gaussians") else 2
    return (2,), classes, d.samples


def parameters(cfg: LabConfig, shape: tuple[int, ...], n_out: int) -> int:
    """The number of parameters (weights, biases, norm scales) of the model models.py builds."""
    m = cfg.model
    w, depth = m.width, m.depth
    norm = 2 * w if m.norm != "none" else 0
    if m.arch in ("mlp", "resmlp"):
        n_in = math.prod(shape)
        hidden = (n_in * w + w) + (depth - 1) * (w * w + w) + depth * norm
        return hidden + w * n_out + n_out
    if m.arch == "cnn":
        channels, height, width = shape
        convs = (channels * w * 9 + w) + (depth - 1) * (w * w * 9 + w) + depth * norm
        return convs + w * height * width * n_out + n_out
    gates = GATES[m.arch]
    n_in = shape[-1]
    layers = gates * w * (n_in + w + 2) + (depth - 1) * gates * w * (w + w + 2) + depth * norm
    return layers + w * n_out + n_out


def activation_elements(cfg: LabConfig, shape: tuple[int, ...], batch: int) -> float:
    """float32 elements one batch keeps for the backward pass on a capture step (see FEED_FORWARD)."""
    m = cfg.model
    extra = (NORM if m.norm != "none" else 0.0) + (DROPOUT if m.dropout > 0 else 0.0)
    if m.arch in ("mlp", "resmlp", "cnn"):
        per_layer = batch * m.width * (math.prod(shape[1:]) if m.arch == "cnn" else 1)
        factor = FEED_FORWARD + extra + (RESIDUAL if m.arch == "resmlp" else 0.0)
        return batch * math.prod(shape) + m.depth * per_layer * factor
    steps = shape[0]
    per_layer = batch * steps * m.width * (RECURRENT_STEP[m.arch] + FEED_FORWARD + extra)
    return 2 * batch * math.prod(shape) + m.depth * per_layer  # the inputs and their d loss / d x_t


def eval_elements(cfg: LabConfig, shape: tuple[int, ...], n_val: int) -> float:
    """The validation pass: chunks without gradients, about two layers' outputs alive at a time."""
    chunk = min(EVAL_CHUNK, n_val)
    m = cfg.model
    if m.arch in ("mlp", "resmlp"):
        return chunk * (math.prod(shape) + 3 * m.width)
    if m.arch == "cnn":
        return chunk * (math.prod(shape) + 3 * m.width * math.prod(shape[1:]))
    gates = GATES[m.arch]
    return chunk * shape[0] * (math.prod(shape[1:]) + (2 + gates) * m.width)


def data_bytes(cfg: LabConfig, shape: tuple[int, ...], samples: int) -> tuple[int, int]:
    """(bytes the data set keeps, bytes at its peak while it is generated and shuffled: data.py's temporaries)."""
    d = cfg.data
    if d.name == "digits":
        kept = samples * (64 * FLOAT + INDEX)
        return kept, 3 * kept
    if d.name == "adding":  # values, markers, their stack, then the shuffled copy: twice the kept x
        kept = samples * (d.seq_len * 2 * FLOAT + FLOAT)
        return kept, 2 * kept + samples * INDEX
    if d.name == "copy":  # int64 symbols, their int64 one-hot and its float copy at once
        kept = samples * (d.seq_len * d.classes * FLOAT + INDEX)
        return kept, samples * d.seq_len * (INDEX + d.classes * (INDEX + FLOAT))
    kept = samples * (2 * FLOAT + INDEX)
    return kept, 4 * kept


def estimate(cfg: LabConfig, device: str = "cpu") -> Estimate:
    """The memory `cfg` needs on `device` ("cpu" or "cuda:N"), by part."""
    shape, n_out, samples = shapes(cfg)
    n_val = max(1, round(samples * cfg.data.val_fraction))
    batch = min(cfg.train.batch_size, samples - n_val)
    params = parameters(cfg, shape, n_out) * FLOAT
    on_gpu = device.startswith("cuda")
    acts = int(max(activation_elements(cfg, shape, batch), eval_elements(cfg, shape, n_val)) * FLOAT)
    kept, peak = data_bytes(cfg, shape, samples)
    runtime = RUNTIME + (SKLEARN if cfg.data.name == "digits" else 0)
    parts = {
        "weights": params,
        "gradients": params,
        "optimiser": params * OPTIM_STATE.get(cfg.optim.name, 2),
        "probes": params * (2 if on_gpu else 1),  # the weights before the step (and on a GPU their change)
        "activations": acts,
    }
    est = Estimate(device=device)
    if on_gpu:  # the data is generated on the host, then copied over
        est.parts = {k: int(v * GPU_SLACK) for k, v in parts.items()} | {"data": kept}
        est.host = runtime + peak
    else:  # the data's peak comes before the model exists; what training needs comes after it
        est.parts = parts | {"data": max(kept, peak - sum(parts.values())), "runtime": runtime}
    est.lower = _keys_to_lower(cfg, est.parts)
    return est


def _keys_to_lower(cfg: LabConfig, parts: dict[str, int]) -> list[str]:
    model = parts["weights"] + parts["gradients"] + parts["optimiser"] + parts["probes"]
    biggest = max(("model", model), ("activations", parts["activations"]), ("data", parts["data"]), key=lambda p: p[1])
    recurrent = choices.ARCHS[cfg.model.arch].recurrent
    if biggest[0] == "model":
        return ["model.width", "model.depth"]
    if biggest[0] == "activations":
        return ["train.batch_size", "model.width"] + (["data.seq_len"] if recurrent else ["model.depth"])
    if cfg.data.name in ("adding", "copy"):
        return ["data.samples", "data.seq_len"]
    return ["data.samples"]


# ---------------------------------------------------------------------------------------------------------
# What is free.


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5GB', '1000000' -> bytes (binary multiples); ValueError for anything else."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(text)
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def _limit_from_env() -> int | None:
    text = os.environ.get(LIMIT_ENV, "")
    if not text:
        return None
    try:
        return parse_size(text)
    except ValueError:
        message = _("{variable}={value}: not a size; allowed: bytes, or a number with K, M, G or T (e.g. 2G)")
        raise UserError(message.format(variable=LIMIT_ENV, value=repr(text))) from None


def host_free() -> int | None:
    """Bytes the host can still give: MemAvailable, capped by the cgroup (container) limit; None when unknown."""
    free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        free = None
    if free is None:  # not Linux: psutil knows, when it is installed (it is not a dependency)
        try:
            import psutil

            free = int(psutil.virtual_memory().available)
        except ImportError:
            pass
    room = _cgroup_room()
    if room is not None:
        free = room if free is None else min(free, room)
    return free


def _cgroup_room() -> int | None:
    """limit - usage of this process's memory cgroup (v2, else v1), when it has a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text(encoding="ascii").strip()
            usage = int(Path(usage_file).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # 'max', or v1's "no limit" (a huge number)
            return max(0, int(limit) - usage)
    return None


def gpu_free(index: int, apart: bool = False) -> int | None:
    """Free bytes on GPU `index`. Asking makes a CUDA context (some 500 MB of the GPU) in the process that asks:
    right for a run that trains in this process, but a sweep's parent, whose workers train, asks `apart`, from
    a short-lived child process."""
    if apart and ("torch" not in sys.modules or not _cuda_initialised()):
        import subprocess

        code = f"import torch; print(torch.cuda.mem_get_info({index})[0])"
        try:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            return int(done.stdout.strip()) if done.returncode == 0 else None
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    import torch  # only when the run goes to a GPU: it imports torch anyway

    try:
        free, _total = torch.cuda.mem_get_info(index)
    except (RuntimeError, AssertionError):
        return None
    return int(free)


def _cuda_initialised() -> bool:
    torch = sys.modules["torch"]
    return bool(torch.cuda.is_initialized())


def run_device(spec: str) -> str:
    """'cpu' or 'cuda:N': where `spec` trains (auto: a GPU when there is one). torch is imported only when a
    CUDA-enabled build may find a GPU here; MPS shares the host's memory and counts as the host."""
    if spec.startswith("cuda"):
        return spec if ":" in spec else "cuda:0"
    if spec != "auto":
        return "cpu"
    from tui_lab.core.devices import torch_build

    build = torch_build()
    if build is not None and build["cuda"] is None and build["hip"] is None:
        return "cpu"
    if "torch" not in sys.modules and sys.platform.startswith("linux") and not _nvidia_present():
        return "cpu"
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _nvidia_present() -> bool:
    return Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/kfd").exists() or Path("/dev/nvidia0").exists()


# ---------------------------------------------------------------------------------------------------------
# The verdict.


def check(cfg: LabConfig, free_cache: dict[str, int | None] | None = None, apart: bool = False) -> str | None:
    """None when `cfg` fits in what its device has free (or that is unknown), else the one line that says why
    not. Arithmetic and a few small file reads: well under a millisecond on the CPU, nothing allocated.
    `free_cache`: free bytes by device, kept across the calls of one sweep; `apart`: see gpu_free."""
    cache = free_cache if free_cache is not None else {}
    device = run_device(cfg.train.device)
    est = estimate(cfg, device)
    limit = _limit_from_env()
    if device.startswith("cuda"):
        if limit is None and device not in cache:
            cache[device] = gpu_free(int(device.split(":")[1]), apart=apart)
        free = limit if limit is not None else cache[device]
        if free is not None and est.total > free:
            return _refusal(cfg, est, free, device)
        if limit is None and "cpu" not in cache:
            cache["cpu"] = host_free()
        host = limit if limit is not None else cache["cpu"]
        if host is not None and est.host > host:
            host_est = Estimate("cpu", {"data": est.host - RUNTIME, "runtime": RUNTIME}, lower=_data_keys(cfg))
            return _refusal(cfg, host_est, host, "cpu")
        return None
    if limit is None and "cpu" not in cache:
        cache["cpu"] = host_free()
    free = limit if limit is not None else cache["cpu"]
    if free is not None and est.total > free:
        return _refusal(cfg, est, free, "cpu")
    return None


def _data_keys(cfg: LabConfig) -> list[str]:
    return ["data.samples", "data.seq_len"] if cfg.data.name in ("adding", "copy") else ["data.samples"]


def _refusal(cfg: LabConfig, est: Estimate, free: int, device: str) -> str:
    values = _flat(cfg)
    subject = " x ".join(f"{key}={values[key]}" for key in est.lower)
    shown = [(k, v) for k, v in est.parts.items() if v >= 0.01 * est.total]  # the parts that matter
    parts = ", ".join(f"{_(PART_NAMES[k])} {size_text(v)}" for k, v in shown)
    where = _("this machine") if device == "cpu" else device
    keys = _(" or ").join(est.lower[:2])
    message = _("{subject} needs ~{total} ({parts}); {where} has {free} free; lower {keys}")
    return message.format(subject=subject, total=size_text(est.total), parts=parts, where=where,
                          free=size_text(free), keys=keys)  # fmt: skip


def _flat(cfg: LabConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in ("model", "data", "optim", "train"):
        for key, value in getattr(cfg, section).model_dump().items():
            out[f"{section}.{key}"] = value
    return out


def size_text(n: float) -> str:
    """Bytes as people read them, in decimal units: 13.4 GB, 512 MB."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{n / 1e3:.0f} kB"
