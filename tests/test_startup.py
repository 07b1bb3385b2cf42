"""`import dlock` is lazy (the command imports the package at every start), and the public API
is the same as when everything was imported at once."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import TESTS


def python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_dlock_imports_none_of_the_lock_code_until_a_name_is_used():
    out = python("import sys, dlock; print(sorted(m for m in sys.modules if m.startswith('dlock')))")
    assert out == "['dlock', 'dlock._version']"


def test_every_public_name_resolves_and_writer_stays_the_function():
    out = python(
        "import inspect, dlock\n"
        "missing = [name for name in dlock.__all__ if not hasattr(dlock, name)]\n"
        "import dlock.writer  # the submodule: importing it must not rebind dlock.writer\n"
        "from dlock import writer\n"
        "print(missing, inspect.isfunction(dlock.writer), writer is dlock.writer, dlock.Writer.__module__)"
    )
    assert out == "[] True True dlock.writer"


def test_an_unknown_name_is_an_attribute_error():
    out = python("import dlock\ntry:\n    dlock.nothing\nexcept AttributeError as exc:\n    print(exc)")
    assert out == "module 'dlock' has no attribute 'nothing'"
