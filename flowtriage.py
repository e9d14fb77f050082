"""`python -m flowtriage` entry point; the CLI itself lives in engine.cli.entry."""

from engine.cli.entry import main

if __name__ == "__main__":
    raise SystemExit(main())
