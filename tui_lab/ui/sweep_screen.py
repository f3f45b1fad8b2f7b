"""The sweep screen (`tui-lab show SWEEP_DIR`, or a sweep picked with o): the sweep's table, one row per
configuration with the printed sweep table's columns, followed live while the sweep runs (core/sweepdir.py reads
only what changed, once a second). Enter opens the run under the cursor (Esc on it comes back here), b pins it
as the baseline, s sorts by the next column. The app does the opening and the pinning (ui/app.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from tui_lab.core.fmt import printable
from tui_lab.core.i18n import N_, _, ngettext
from tui_lab.core.sweepdir import SweepDir, SweepRow
from tui_lab.ui import commands, glyphs, palette
from tui_lab.ui.components.footer import LabFooter
from tui_lab.ui.screens import Modal

REFRESH_S = 1.0  # how often the table looks at the sweep directory
SIDE_STEP = 12  # columns a ←/→ scrolls the table by
KEYS_SHARE = 0.5  # the grid's columns stay on screen while scrolling sideways if they take at most this share

ROW_STYLE = {  # as the printed sweep table colours its rows (tui_lab/sweep.py print_table)
    "failed": palette.ALARM,
    "diverged": palette.CAUTION,
}
DIM = ("stopped", "queued", "not run", "?")
TITLE_STATUSES = ("running", "queued", "completed", "diverged", "stopped", "failed", "not run")


class SweepTable(DataTable):
    """The table, its Enter named in the footer (DataTable's own binding hides it); ←/→ scroll it sideways by
    SIDE_STEP columns at once (DataTable's row cursor scrolls one column a key: eight keys to see the time)."""

    BINDINGS = [Binding("enter", "select_cursor", N_("open"))]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        commands.translate_bindings(self)

    def action_cursor_right(self) -> None:
        self.scroll_to(x=self.scroll_x + SIDE_STEP, animate=False)

    def action_cursor_left(self) -> None:
        self.scroll_to(x=self.scroll_x - SIDE_STEP, animate=False)


class SweepScreen(Modal):
    """The table of a sweep. Keys: ↑/↓ PgUp/PgDn move, ←/→ scroll sideways, Enter opens, b pins, s sorts,
    Esc goes back (to where it was opened from), q quits."""

    DEFAULT_CSS = """
    SweepScreen { background: $background; }
    SweepScreen #sweep-title { height: 1; padding: 0 1; }
    SweepScreen #sweep-table { height: 1fr; }
    """
    BINDINGS = [
        Binding("enter", "open", N_("open")),
        Binding("b", "pin", N_("pin")),
        Binding("s", "sort", N_("sort")),
        Binding("escape", "back", N_("back")),
        Binding("q", "app.quit", N_("quit")),
        Binding("f1,h", "app.help", N_("help"), show=False),
    ]

    def __init__(self, sweep: SweepDir, cursor: str | None = None, sort: int | None = None) -> None:
        super().__init__()
        commands.translate_bindings(self)
        self.sweep = sweep
        self.rows: list[SweepRow] = []
        self.sort_column = sort  # None: the sweep's own order
        self._want = cursor  # the row to put the cursor on (by name) once the table is filled
        self._header: list[str] = []
        self._shown: list[list[tuple[str, str]]] = []  # each row's cells as drawn: (text, style)

    def compose(self) -> ComposeResult:
        yield Static("", id="sweep-title", markup=False)
        yield SweepTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield LabFooter()

    @property
    def table(self) -> DataTable:
        return self.query_one("#sweep-table", DataTable)

    def on_mount(self) -> None:
        self.fill()
        self.table.focus()
        self.set_interval(REFRESH_S, self._tick)

    def on_resize(self) -> None:
        self.fill()  # how many of the grid's columns stay while scrolling depends on the width

    def _tick(self) -> None:
        if self.sweep.refresh() and self.is_active:
            self.fill()

    def on_screen_resume(self) -> None:
        self.sweep.refresh()
        self.fill()  # what changed while the help was over it

    # -- the table -----------------------------------------------------------------------------------------

    def header(self) -> list[str]:
        """The column titles in the language on screen: the keys as typed, the rest translated."""
        header = self.sweep.header()
        n = len(self.sweep.keys)
        return [*header[:n], *(_(h) for h in header[n:])]

    def sorted_rows(self) -> list[SweepRow]:
        rows = self.sweep.rows()
        if self.sort_column is not None:
            n = self.sweep.key_count
            rows.sort(key=lambda r: r.sort_value(self.sort_column or 0, n))
        return rows

    def fill(self) -> None:
        """Bring the table up to the sweep: new columns or rows rebuild it (the cursor stays on its row),
        changed cells are updated in place."""
        if not self.is_mounted:
            return
        table = self.table
        header = self.header()
        rows = self.sorted_rows()
        cells = [_styled(r) for r in rows]
        here = self.current()
        want = self._want or (here.name if here is not None else None)
        self._want = None
        if header != self._header:
            table.clear(columns=True)
            numeric = range(self.sweep.key_count, len(header))
            for i, title in enumerate(header):
                label = Text(printable(title), style="bold", justify="right" if i in numeric else "left")
                table.add_column(label, key=f"c{i}")
            self._header, self._shown, self.rows = header, [], []
        if [r.name for r in rows] != [r.name for r in self.rows]:
            table.clear()
            for row, row_cells in zip(rows, cells):
                table.add_row(*(_cell(c, i, self.sweep.key_count) for i, c in enumerate(row_cells)), key=row.name)
        else:
            for row, old, new in zip(rows, self._shown, cells):
                for i, (was, now) in enumerate(zip(old, new)):
                    if was != now:
                        table.update_cell(row.name, f"c{i}", _cell(now, i, self.sweep.key_count), update_width=True)
        self.rows, self._shown = rows, cells
        table.fixed_columns = self._fixed(header, cells)
        names = [r.name for r in rows]
        if want in names and (here is None or here.name != want or table.cursor_row != names.index(want)):
            table.move_cursor(row=names.index(want))
        self.query_one("#sweep-title", Static).update(self.title_text())

    def _fixed(self, header: list[str], cells: list[list[tuple[str, str]]]) -> int:
        """How many of the grid's columns stay on screen when ←/→ scroll the results: as many as fit in
        KEYS_SHARE of the width (a long value would leave no room for the results)."""
        room, fixed = self.size.width * KEYS_SHARE, 0
        for i in range(self.sweep.key_count):
            room -= max([len(header[i]), *(len(row[i][0]) for row in cells)]) + 2  # + the cell's padding
            if room < 0:
                break
            fixed += 1
        return fixed

    def title_text(self) -> str:
        counts = Counter(r.status for r in self.rows)
        runs = ngettext("{count} configuration", "{count} configurations", len(self.rows)).format(count=len(self.rows))
        text = _("sweep {name}: {runs}").format(name=printable(self.sweep.name), runs=runs)
        parts = [f"{counts[s]} {_(s)}" for s in TITLE_STATUSES if counts[s]]
        if parts:
            text += " (" + ", ".join(parts) + ")"
        if self.sort_column is not None and self.sort_column < len(self._header):
            text += " · " + _("sorted by {column}").format(column=printable(self._header[self.sort_column]))
        return glyphs.text(text)

    def current(self) -> SweepRow | None:
        """The row under the cursor."""
        if not self.is_mounted or not self.rows:
            return None
        index = self.table.cursor_row
        return self.rows[index] if 0 <= index < len(self.rows) else None

    # -- keys ----------------------------------------------------------------------------------------------

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _row_with_run(self) -> SweepRow | None:
        row = self.current()
        if row is None:
            return None
        if not row.has_run:
            self.app.notify(_("{name}: not started yet").format(name=row.name), severity="warning")
            return None
        return row

    def action_open(self) -> None:
        row = self._row_with_run()
        if row is not None:
            self.app.open_sweep_run(row.path, self)  # type: ignore[attr-defined]

    def action_pin(self) -> None:
        row = self._row_with_run()
        if row is not None:
            self.app.pin_run_dir(row.path)  # type: ignore[attr-defined]

    def action_sort(self) -> None:
        """The next column, after the last the sweep's own order again."""
        columns = len(self._header)
        self.sort_column = None if self.sort_column is not None and self.sort_column + 1 >= columns else (
            0 if self.sort_column is None else self.sort_column + 1
        )  # fmt: skip
        self.fill()

    def action_back(self) -> None:
        self.app.leave_sweep(self)  # type: ignore[attr-defined]

    def state(self) -> dict[str, Any]:
        """What a new sweep screen takes over from this one (coming back from a run): cursor and sort."""
        row = self.current()
        return {"cursor": row.name if row is not None else None, "sort": self.sort_column}


def _styled(row: SweepRow) -> list[tuple[str, str]]:
    """A row's cells with the style each is drawn in: the printed table's row colours, dim for what did not
    run or stopped, the status word bold while it runs."""
    style = palette.style(ROW_STYLE[row.status]) if row.status in ROW_STYLE else "dim" if row.status in DIM else ""
    cells = [(printable(c), style) for c in row.cells()]
    if row.status == "running":
        status = len(cells) - 3  # ..., status, steps, time
        cells[status] = (cells[status][0], palette.style(palette.HEALTHY, "bold"))
    return cells


def _cell(cell: tuple[str, str], index: int, n_keys: int) -> Text:
    text, style = cell
    return Text(glyphs.text(text), style=style, justify="left" if index < n_keys or index == n_keys + 3 else "right")
