"""Make untrusted text (anything read from a dump) inert for a terminal.

Text from a dump may hold ESC/CSI/OSC sequences (clear the screen, set the title, write the
clipboard, forge hyperlinks), C1 controls (0x9b is a one-byte CSI on some terminals) or bidi
overrides that reorder what the operator reads. Rich and Textual strip only a handful of
control codes, so every string from a dump goes through `sanitize` before it is displayed.
Markup is a separate concern: callers build `Text`/`Content` objects directly and never parse
dump text as markup.
"""

from __future__ import annotations

import unicodedata

# C0 controls and DEL become their Unicode "control pictures" (ESC -> U+241B), which are
# printable and one cell wide, so the operator sees that a control byte was there.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"

# Categories that are invisible or act on the display: controls (C1), format characters
# (bidi overrides and isolates, zero-width joiners), line/paragraph separators, lone
# surrogates (from surrogateescape decoding) and unassigned code points.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _visible(char: str) -> str:
    picture = _PICTURES.get(ord(char))
    if picture is not None:
        return picture
    if unicodedata.category(char) in _ESCAPED_CATEGORIES:
        return _escaped(char)
    return char


def _unsafe(char: str) -> bool:
    return ord(char) in _PICTURES or unicodedata.category(char) in _ESCAPED_CATEGORIES


def sanitize(text: object) -> str:
    """`text` as a string in which every control, format or bidi character is a visible symbol."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():  # the common case: plain addresses, names, numbers
        return value
    return "".join(_visible(char) for char in value)


def inert(text: object) -> str:
    """`text` for line-oriented output (CLI, logs, messages): every character `sanitize` would
    replace is written as a `\\xNN`/`\\uNNNN` escape instead, which survives copy and paste."""
    if text is None:
        return ""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value
    return "".join(_escaped(char) if _unsafe(char) else char for char in value)
