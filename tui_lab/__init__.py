"""tui-lab: a terminal laboratory for vanishing and exploding gradients.

Kept import-free on purpose: `tui-lab --version` must answer without loading torch or pydantic.
"""

__version__ = "0.1.0"
