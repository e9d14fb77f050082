"""How single values look in narrow cells: compact numbers, durations, endpoints, bars.

Every function returns plain, already sanitized text; widths are in terminal cells.
"""

from __future__ import annotations

import math
from datetime import datetime

from rich.cells import cell_len, set_cell_size

from engine.core.sanitize import sanitize

ELLIPSIS = "\u2026"
_EIGHTHS = " \u258f\u258e\u258d\u258c\u258b\u258a\u2589\u2588"
_SPARKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


def fit(text: str, width: int, *, align: str = "left", middle: bool = False) -> str:
    """`text` padded or cut to exactly `width` cells; a cut shows an ellipsis (in the middle
    when `middle`, which keeps both the address and the port of an endpoint)."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length > width:
        if width == 1:
            return ELLIPSIS
        if middle and width >= 5:
            tail = (width - 1) // 2
            head = width - 1 - tail
            return set_cell_size(text, head) + ELLIPSIS + _tail_cells(text, tail)
        return set_cell_size(text, width - 1) + ELLIPSIS
    pad = " " * (width - length)
    return pad + text if align == "right" else text + pad


def _tail_cells(text: str, width: int) -> str:
    out = ""
    for char in reversed(text):
        if cell_len(char + out) > width:
            break
        out = char + out
    return set_cell_size(out, width) if cell_len(out) < width else out


def compact(value: object) -> str:
    """A count in at most 4 characters: 999, 1.2k, 12k, 123k, 1.2M, 12G."""
    if value is None:
        return "-"
    number = float(value)  # type: ignore[arg-type]
    if number < 1000:
        return str(int(number))
    for suffix in ("k", "M", "G", "T", "P"):
        number /= 1000.0
        if number < 9.95:
            return f"{number:.1f}{suffix}"
        if number < 999.5:
            return f"{number:.0f}{suffix}"
    return f"{number:.0f}E"


def span(seconds: object) -> str:
    """A duration with its unit, for text (not a 4-cell column): 0.25s, 25s, 1m03s, 2h00m, 3d04h."""
    if seconds is None:
        return "-"
    value = float(seconds)  # type: ignore[arg-type]
    if value < 0:
        return "<0s"
    if value < 10:
        return f"{value:.2f}".rstrip("0").rstrip(".") + "s" if value else "0s"
    whole = int(round(value))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def duration(seconds: object) -> str:
    """A duration in at most 4 characters: 0, 0.25, 9.99, 42s, 12m, 3h, 5d."""
    if seconds is None:
        return "-"
    value = float(seconds)  # type: ignore[arg-type]
    if value < 0:
        return "<0"
    if value == 0:
        return "0"
    if value < 9.995:
        return f"{value:.2f}" if value < 1 else f"{value:.1f}"
    if value < 59.5:
        return f"{value:.0f}s"
    if value < 3600:
        return f"{value / 60:.0f}m"
    if value < 86400:
        return f"{value / 3600:.0f}h"
    return f"{value / 86400:.0f}d"


def clock(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S") if value is not None else "-"


def stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value is not None else "-"


ICMP = ("ICMP", "ICMP6", "1", "58")


def endpoint(addr: object, port: object, proto: object = None, *, words: bool = False) -> str:
    """addr:port as nfdump prints it (IPv6 takes the port after a dot), sanitized. ICMP has
    no ports: the flow's type and code ride in the destination port (type * 256 + code), so
    they show as nfdump shows them (`addr:3.3`), or with `words` as "addr type 3 code 3"."""
    text = sanitize(addr)
    if port is None:
        return text
    if str(proto).upper() in ICMP:
        value = int(port)  # type: ignore[call-overload]
        if value <= 0:
            return text
        kind, code = divmod(value, 256)
        if words:
            return f"{text} type {kind} code {code}"
        return f"{text}.{kind}.{code}" if ":" in text else f"{text}:{kind}.{code}"
    return f"{text}.{port}" if ":" in text else f"{text}:{port}"


def bar(fraction: float, width: int) -> str:
    """A left-aligned block bar of `width` cells filled to `fraction` (eighths of a cell)."""
    if width <= 0:
        return ""
    if fraction is None or math.isnan(fraction):
        fraction = 0.0
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "\u2588" * full + (_EIGHTHS[part] if part else "")
    return text.ljust(width)


def score_cell(score: object) -> str:
    """Score as a percentage and a two-cell bar, five cells: ` 97\u2588\u258a`."""
    if score is None:
        return "  -  "
    value = float(score)  # type: ignore[arg-type]
    return f"{round(value * 100):3d}" + bar(value, 2)


def sparkline(counts: object, width: int) -> str:
    """Unicode blocks for the last `width` counts, scaled to the largest one shown."""
    values = [int(v or 0) for v in (counts or [])][-width:]  # type: ignore[union-attr]
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return _SPARKS[0] * len(values)
    return "".join(
        " " if v <= 0 else _SPARKS[min(7, (v * 8 - 1) // top)] for v in values
    )


def percent(value: object) -> str:
    if value is None:
        return "-"
    return f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]
