"""flowtriage's terminal UI (Textual): a thin consumer of engine snapshots."""
