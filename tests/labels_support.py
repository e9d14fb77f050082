"""Helpers of the label/feedback tests: the real fixture dumps as canonical flows."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engine.ingest import read_dump


def read_fixture(path: Path) -> pl.DataFrame:
    """Canonical flows of an `-o extended` fixture dump, read by the real parser."""
    result = read_dump(path, final=True, timezone="UTC")
    assert all(s.reason == "header" for s in result.skipped), result.skipped
    assert result.flows.height == 200
    return result.flows
