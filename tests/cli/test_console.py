"""Console output: progress and file names printed inert."""


def test_progress_bar_prints_file_names_inert(tmp_path):
    import io

    from rich.console import Console

    from engine.cli.console import file_progress

    hostile = tmp_path / "nfcapd.1\x1b]0;owned\x07.txt"
    plain = tmp_path / "nfcapd.2.txt"
    for path in (hostile, plain):
        path.write_text("x" * 100)
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=100)
    with file_progress([hostile, plain], console) as advance:
        advance(hostile)
        console.print("done")
    out = sink.getvalue()
    assert "\x1b]0;owned" not in out and "\\x1b]0;owned\\x07" in out
