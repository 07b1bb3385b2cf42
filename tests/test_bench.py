"""Every benchmark the README cites still starts: its imports resolve and its options parse
(`--help` exits before any server is started or anything is measured)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import TESTS

# The scripts (timing.py is a module the others share).
BENCHES = sorted(path for path in (TESTS.parent / "bench").glob("*.py") if "__main__" in path.read_text())


@pytest.mark.parametrize("script", BENCHES, ids=[path.stem for path in BENCHES])
def test_benchmark_starts_and_documents_its_options(script):
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1500:]
    assert "usage:" in result.stdout


def test_every_benchmark_is_cited_in_the_readme():
    readme = (TESTS.parent / "README.md").read_text()
    assert [path.name for path in BENCHES if f"bench/{path.name}" not in readme] == []
