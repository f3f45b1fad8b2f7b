"""The rows of the per-layer panels for a model of any size: layers grouped by module path, or one row a block.

A watched model's layers are module paths (`blocks.3.attn.q_proj`, `layer2.0.conv1`, `encoder.layers.0`). A
layer's group is the repeated container it sits in (the path up to its first index that has more below it:
`blocks.3`, `layer2.0`), else its parent module (`encoder` for `encoder.norm` and `encoder.layers.0`: an index
at the end names a layer, not a container). Consecutive layers of one group are drawn under a header row with
the group's path, each indented with the rest of its path: the common prefix is not repeated. A layer alone in
its group keeps its whole name, and so does every layer of a net whose names have no path (the lab's `L1`...
`out`, `hidden.3`): their rows are exactly what they were.

Collapsed (`blocks=True`) each group of two or more layers is one row; the model's first and last layers (the
input side, and the output layer every bar is measured against) always keep rows of their own. Pure Python:
the panels (gradflow.py) draw these rows, tests read them directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

INDENT = "  "  # a layer under its group's header


@dataclass(frozen=True)
class Row:
    label: str  # the name column: a layer's name (the rest of its path under a header), a header's or block's path
    layers: tuple[int, ...] = ()  # the layers it stands for: one (a layer), several (a block), none (a header)
    indent: bool = False  # a layer under a header

    @property
    def kind(self) -> str:
        return "header" if not self.layers else "block" if len(self.layers) > 1 else "layer"

    @property
    def text(self) -> str:
        return INDENT + self.label if self.indent else self.label


def _index(part: str) -> bool:
    return part.isdigit()


def split(name: str) -> tuple[str, str]:
    """(group, rest): `blocks.3.attn.q_proj` -> (`blocks.3`, `attn.q_proj`); `layer2.0.conv1` -> (`layer2.0`,
    `conv1`); `encoder.layers.0` -> (`encoder`, `layers.0`); `encoder.norm` -> (`encoder`, `norm`); `hidden.3`,
    `fc1`, `0` -> (``, the name): no group."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if _index(part):  # a repeated container's item with more below it: the block
            return ".".join(parts[: i + 1]), ".".join(parts[i + 1 :])
    tail = 2 if len(parts) >= 2 and _index(parts[-1]) else 1  # `layers.0`: the index goes with its container
    if len(parts) <= tail:
        return "", name
    return ".".join(parts[:-tail]), ".".join(parts[-tail:])


def _runs(names: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Consecutive layers of one group: (group, their indices); a layer with no group is a run of its own."""
    runs: list[tuple[str, list[int]]] = []
    for i, name in enumerate(names):
        group = split(name)[0]
        if group and runs and runs[-1][0] == group:
            runs[-1][1].append(i)
        else:
            runs.append((group, [i]))
    return runs


@lru_cache(maxsize=16)
def _rows(names: tuple[str, ...], blocks: bool) -> tuple[Row, ...]:
    rows: list[Row] = []
    last = len(names) - 1
    for group, members in _runs(names):
        if blocks and group:
            # The model's first and last layers keep their own rows: the input side and the output layer.
            head = [i for i in members if i == 0]
            tail = [i for i in members if i == last and i != 0]
            inner = [i for i in members if i not in (0, last)]
            rows += [Row(names[i], (i,)) for i in head]
            if len(inner) > 1:
                rows.append(Row(group, tuple(inner)))
            else:
                rows += [Row(names[i], (i,)) for i in inner]
            rows += [Row(names[i], (i,)) for i in tail]
        elif group and len(members) > 1:
            rows.append(Row(group))
            rows += [Row(split(names[i])[1], (i,), indent=True) for i in members]
        else:
            rows += [Row(names[i], (i,)) for i in members]
    return tuple(rows)


def layer_rows(names: Sequence[str], blocks: bool = False) -> list[Row]:
    """The rows for these layer names (forward order): grouped by module path, or one row a block."""
    return list(_rows(tuple(names), blocks))


def flat(rows: Sequence[Row]) -> bool:
    """Rows with no header and no block: a plain list of layers (which a short panel may fold)."""
    return all(row.kind == "layer" and not row.indent for row in rows)


def has_blocks(names: Sequence[str]) -> bool:
    """Whether collapsing would change anything: some group holds two layers besides the first and last."""
    return any(row.kind == "block" for row in _rows(tuple(names), True))


def shorten(label: str, width: int, ellipsis: str = "…") -> str:
    """`label` in `width` cells: as it is when it fits, else cut from the left behind `ellipsis`, so that the
    end of the path (the layer's own name) stays: `…layers.11.self_attn.q_proj`."""
    if len(label) <= width:
        return label
    if width <= len(ellipsis):
        return label[len(label) - max(width, 0) :] if width > 0 else ""
    return ellipsis + label[len(label) - (width - len(ellipsis)) :]


def joint(values: Sequence[float | None]) -> float | None:
    """The joint norm of several layers' norms, sqrt(sum of squares) (the norm of all their weights together):
    None when one is missing, NaN or inf when one is."""
    total = 0.0
    for value in values:
        if value is None:
            return None
        if not math.isfinite(value):
            return value
        total += value * value
    return math.sqrt(total)


# How far from level each judgement of gradflow.level is: the worst layer of a block is the one furthest.
SEVERITY = {"nonfinite": 4, "vanishing": 3, "exploding": 3, "low": 2, "high": 2, "level": 1, "": 0}


def worst(values: Sequence[float | None], kinds: Sequence[str], ref: float | None) -> int | None:
    """Which of a block's layers is furthest from level (index into `values`): the most severe judgement, then
    the largest ratio to `ref` either way; None when nothing could be judged."""
    best: tuple[int, float] | None = None
    pick = None
    for i, (value, kind) in enumerate(zip(values, kinds)):
        if not SEVERITY[kind]:
            continue
        ratio = 0.0
        if value is not None and math.isfinite(value) and value > 0 and ref:
            ratio = abs(math.log10(value / ref))
        elif value is not None and math.isfinite(value):  # exactly zero: as far as it gets
            ratio = math.inf
        key = (SEVERITY[kind], ratio)
        if best is None or key > best:
            best, pick = key, i
    return pick
