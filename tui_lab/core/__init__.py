"""The UI-free core of the lab. Nothing under tui_lab.core imports Textual."""
