"""The dlock command: Typer over the Python API."""

from __future__ import annotations


def main() -> None:
    from dlock.cli.app import entry

    entry()
