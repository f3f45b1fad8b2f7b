"""The Textual app. Imports the core, never the reverse; torch is imported lazily."""
