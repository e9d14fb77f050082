"""`python -m flowtriage` entry point; the CLI itself lives in engine.cli."""

from engine.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
