"""The public API is typed: mypy --strict passes on it (py.typed ships with the package)."""

from __future__ import annotations

import subprocess
import sys

from conftest import TESTS

PUBLIC = ["dlock/__init__.py", "dlock/api.py", "dlock/lease.py", "dlock/writer.py", "dlock/model.py",
          "dlock/errors.py", "dlock/codec.py"]


def test_public_api_passes_mypy_strict():
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
                             "--follow-imports=silent", *PUBLIC], cwd=TESTS.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_ships_py_typed():
    assert (TESTS.parent / "dlock" / "py.typed").exists()
