"""Which devices this machine can train on, and why a device asked for is not one of them.

`problem(spec)` is None for a usable device, else one sentence ending in what is available here; the CLI
puts where the device came from in front of it (`--device cuda: ...`) and refuses the command before anything
starts (the TUI never opens, no run directory is written). It imports torch only when nothing cheaper can
answer: MPS exists only on macOS, and a torch built without CUDA (`2.13.0+cpu`) says so in its version.py,
which is read as text; only a CUDA-enabled build on a machine that may have a GPU is asked through torch.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from tui_lab.core.i18n import _

NO_CHECK = ("auto", "cpu")  # always there ('auto' falls back to the CPU)


def torch_build() -> dict[str, Any] | None:
    """{'version', 'cuda', 'hip'} of the installed torch, read from torch/version.py without importing torch;
    None when that cannot be read (then torch itself is asked)."""
    try:
        spec = importlib.util.find_spec("torch")
        where = spec.submodule_search_locations if spec is not None else None
        text = (Path(next(iter(where))) / "version.py").read_text(encoding="utf-8") if where else ""
    except (ImportError, OSError, ValueError, StopIteration):
        return None
    found: dict[str, Any] = {}
    for key, value in re.findall(r"^(__version__|cuda|hip)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", text, re.MULTILINE):
        try:
            found[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return None
    if not {"__version__", "cuda", "hip"} <= found.keys():
        return None
    return {"version": found["__version__"], "cuda": found["cuda"], "hip": found["hip"]}


def available(torch: Any = None) -> list[str]:
    """The devices torch can use here, CPU first (['cpu'] when torch is not given: all that is known without it)."""
    devices = ["cpu"]
    if torch is not None:
        if torch.cuda.is_available():
            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            devices.append("mps")
    return devices


def problem(spec: str, torch: Any = None) -> str | None:
    """Why `spec` (auto | cpu | cuda | cuda:N | mps, already validated) cannot be used here, or None. `torch`:
    the module when the caller has it; otherwise it is imported only if the cheap answers do not settle it."""
    if spec in NO_CHECK or not (spec == "mps" or spec.startswith("cuda")):
        return None
    build = torch_build()
    if spec == "mps" and sys.platform != "darwin":
        return _("Apple MPS exists only on macOS; {available}").format(available=_listed(build, torch))
    if spec.startswith("cuda") and build is not None and build["cuda"] is None and build["hip"] is None:
        message = _("CUDA is not available here (PyTorch {version} is built without it); {available}")
        return message.format(version=build["version"], available=_listed(build, torch))
    if torch is None:
        import torch  # only a CUDA build (or Apple's) can tell
    devices = available(torch)
    listed = _("available: {devices}").format(devices=", ".join(devices))
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            return _("CUDA is not available here (no usable GPU found); {available}").format(available=listed)
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if f"cuda:{index}" not in devices:
            return _("no such GPU; {available}").format(available=listed)
        return None
    if "mps" not in devices:
        return _("Apple MPS is not available here; {available}").format(available=listed)
    return None


def _listed(build: dict[str, Any] | None, torch: Any) -> str:
    """'available: cpu' without asking torch when it cannot use a GPU (a CPU-only build), else torch's list."""
    if torch is None and (build is None or build["cuda"] is not None or build["hip"] is not None):
        import torch
    devices = available(torch) if torch is not None else ["cpu"]
    return _("available: {devices}").format(devices=", ".join(devices))
