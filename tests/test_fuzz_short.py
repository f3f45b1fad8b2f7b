"""The long fuzz of the TUI (benchmarks/fuzz_tui.py), seeded and short: the real app in a pty, trained while a
few hundred random keys, escape sequences, invalid bytes, pastes holding markup and resizes reach it. It must
neither crash nor hang, quit on `q` with status 0, give the terminal back as it was, and be back to its idle
thread count once its run is stopped. A failure names the seed and the last events (replay them by hand, or run
the fuzz script with that --seed)."""

from __future__ import annotations

import json
import sys

import pytest

import support  # noqa: F401 - puts benchmarks/ on sys.path

pytest.importorskip("pyte")

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty"), pytest.mark.slow]

SEED = 20261125


def test_a_seeded_short_fuzz_neither_crashes_nor_hangs_and_gives_the_terminal_back():
    import fuzz_tui

    result = fuzz_tui.fuzz(seconds=30, seed=SEED, size="100x30", probe_every=4.0, hang_s=15.0, stop_on_first=True)
    failures = json.dumps(
        {k: result[k] for k in ("failures", "crashes", "hangs", "seed")}, indent=1, ensure_ascii=True
    )[:8000]
    assert not result["crashes"], failures
    assert not result["hangs"], failures
    assert result["events"] >= 150 and result["probes"] >= 3, result["events_by_kind"]
    assert result["quit_by"] == "q" and result["exit_code"] == 0, failures
    assert result["modes_left_on"] == [], "modes the app left on in the terminal: " + str(result["modes_left_on"])
    assert result["termios_restored"] is True, "the pty's termios settings differ from before the app started"
    threads = result["threads"]
    assert threads["threads_idle_end"] <= threads["threads_idle_start"], (
        threads,
        result["thread_names_idle_start"],
        result["thread_names_idle_end"],
    )
