from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(config, items):
    """`fuzz_long` tests (thousands of examples) run only with FLOWTRIAGE_FUZZ_LONG=1."""
    import os

    import pytest

    if os.environ.get("FLOWTRIAGE_FUZZ_LONG"):
        return
    skip = pytest.mark.skip(reason="long fuzz: set FLOWTRIAGE_FUZZ_LONG=1")
    for item in items:
        if "fuzz_long" in item.keywords:
            item.add_marker(skip)
