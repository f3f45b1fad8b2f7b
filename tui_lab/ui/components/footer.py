"""The key bar at the bottom of every screen: Textual's Footer without its memory leak.

Textual (8.2) rebuilds the Footer whenever the active bindings change (every modal opened or closed, every focus
move between widgets with their own keys) and binds each new FooterKey to the Footer's `compact` reactive with
`data_bind`. The binding is a watcher kept in the Footer's watcher list, and Textual only drops the watchers of
removed widgets when `compact` itself changes, which in the lab it never does: every rebuild kept ~20 dead
FooterKeys (their styles, their rendered lines) alive, about 0.5 MB per modal opened, and the long fuzz saw a
session grow by ~50 MB a minute (docs/upstream/textual-footer-watchers.md)."""

from __future__ import annotations

from textual.widgets import Footer


class LabFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        self.drop_dead_watchers()

    def drop_dead_watchers(self) -> None:
        """Forget the watchers of widgets that are no longer in the DOM (what Textual does itself when the
        watched value changes)."""
        watchers = getattr(self, "__watchers", None) or {}  # textual.reactive._watch stores them under this name
        for watching in watchers.values():
            watching[:] = [(node, callback) for node, callback in watching if node.is_attached]
