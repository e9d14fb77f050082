"""Property-based: whatever text comes in (ESC/CSI/OSC, C1 controls, bidi overrides, lone
surrogates, Rich markup), what the sanitizer lets out cannot act on a terminal, and the CLI
prints dump text and file names only through it."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli.entry import main
from engine.core.sanitize import inert, sanitize

HOSTILE = st.one_of(
    st.text(),
    st.sampled_from([
        "\x1b]0;PWNED\x07", "\x1b]52;c;aGk=\x07", "\x1b[2J\x1b[H", "\x9b31m", "\x1bP+q\x1b\\",
        "\u202eevil\u202c", "\u2066x\u2069", "\u200b", "[bold red]markup[/]", "[link=x]y[/link]",
        "\x00", "\r", "\x7f", "\ud800",
    ]),
).flatmap(lambda base: st.lists(st.one_of(st.just(base), st.text(max_size=5)), max_size=6)
          .map("".join))
ACTIVE = {"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"}


def _inert_text(text: str) -> bool:
    return all(unicodedata.category(ch) not in ACTIVE for ch in text)


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_nothing_active_survives_the_sanitizer(text):
    assert _inert_text(inert(text))
    assert _inert_text(sanitize(text))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=HOSTILE.filter(lambda s: "/" not in s and "\0" not in s and s not in ("", ".", "..")),
       body=HOSTILE)
def test_parse_prints_hostile_names_and_lines_inert(tmp_path_factory, capsys, name, body):
    directory = tmp_path_factory.mktemp("hostile")
    try:
        path = directory / name[:100]
        path.write_bytes(("Date first seen\n" + body + "\n").encode("utf-8", "surrogateescape"))
    except (OSError, UnicodeEncodeError, ValueError):
        return  # a name the filesystem refuses is not our input
    capsys.readouterr()
    main(["parse", str(path), "-o", str(directory / "out.csv")])
    captured = capsys.readouterr()
    printed = captured.err + captured.out
    assert _inert_text(printed.replace("\n", ""))
