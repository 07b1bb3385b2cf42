"""The dlock command: Typer over the Python API."""

from __future__ import annotations


def main() -> None:
    import sys

    if sys.argv[1:] in (["--version"], ["-V"]):  # answered before typer and the app are imported
        from dlock.cli.version import print_version

        print_version()
        sys.stdout.flush()
        return
    from dlock.cli.app import entry

    entry()
