"""Widgets grouped by screen area."""
