"""Epoch timestamps (csv-fast) become wall-clock time in the configured zone, as text dumps are."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import polars as pl


@lru_cache(maxsize=8)
def resolve_zone(name: str) -> str:
    """'local' -> the machine's IANA zone name (TZ, /etc/localtime, /etc/timezone), else UTC."""
    if name != "local":
        return name
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz or tz == "UTC":
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        text = Path("/etc/timezone").read_text().strip()
        if text:
            return text
    except OSError:
        pass
    return "UTC"


def epoch_ms_to_wall(ms: pl.Expr, zone: str) -> pl.Expr:
    zone = resolve_zone(zone)
    ts = pl.from_epoch(ms.cast(pl.Int64, strict=False), time_unit="ms")
    if zone in ("UTC", "Etc/UTC"):
        return ts
    return ts.dt.replace_time_zone("UTC").dt.convert_time_zone(zone).dt.replace_time_zone(None)
