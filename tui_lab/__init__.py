"""tui-lab: a terminal laboratory for vanishing and exploding gradients.

Kept import-free on purpose: `tui-lab --version` must answer without loading torch or pydantic.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "watch"]


def __getattr__(name: str):  # PEP 562: `tui_lab.watch` imports torch only when it is used
    if name in ("watch", "Watch"):
        import importlib

        value = getattr(importlib.import_module("tui_lab.watch"), name)
        globals()[name] = value  # over the submodule the import bound to the same name: the function
        return value
    raise AttributeError(f"module 'tui_lab' has no attribute {name!r}")
