"""Completions and the man page: generated from the app, fresh, and working in real shells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import click
import pytest
import typer

from conftest import IN_CI, TESTS

ROOT = TESTS.parent


def shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is missing; scripts/install-system-deps.sh installs it.")
        pytest.skip(f"{name} is not installed")
    return path


def run(argv: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_committed_completions_and_man_page_match_a_fresh_generation():
    result = subprocess.run([sys.executable, "scripts/generate_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_man_page_renders_without_warnings():
    groff = subprocess.run([shell("groff"), "-man", "-ww", "-z", "man/dlock.1"], cwd=ROOT, capture_output=True, text=True)
    assert groff.returncode == 0 and groff.stderr == "", groff.stderr
    rendered = subprocess.run([shell("man"), "-l", "man/dlock.1"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "100"})
    assert rendered.returncode == 0 and "EXIT STATUS" in rendered.stdout


def test_man_page_names_every_command_and_option():
    from dlock.cli.app import app

    page = (ROOT / "man" / "dlock.1").read_text().replace("\\-", "-")
    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="dlock")
    for name in group.list_commands(ctx):
        assert f".SS {name}" in page, name
        for param in group.get_command(ctx, name).params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in page, f"{name} {opt}"
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "TARGETS", "EXIT STATUS", "ENVIRONMENT",
                    "FILES", "EXAMPLES", "SEE ALSO"):
        assert f".SH {section}" in page


def test_bash_completes_commands_and_options():
    script = ("source completions/dlock.bash; COMP_WORDS=(dlock st); COMP_CWORD=1; _dlock_completion dlock; "
              "echo \"${COMPREPLY[@]}\"; COMP_WORDS=(dlock release --f); COMP_CWORD=2; _dlock_completion dlock; "
              "echo \"${COMPREPLY[@]}\"")
    lines = run([shell("bash"), "-c", script]).splitlines()
    assert lines == ["status", "--force"]


def test_zsh_completes_commands_and_options():
    # compdef/_arguments are stubbed to print what the real completion function hands them.
    script = ("compdef() { : }; _arguments() { print -l -- \"$@\" }; source completions/dlock.zsh; "
              "words=(dlock st); CURRENT=2; _dlock_completion; words=(dlock release --f); CURRENT=3; _dlock_completion")
    out = run([shell("zsh"), "-f", "-c", script])
    assert '"status"' in out and '"--force"' in out


def test_fish_completes_commands_and_options():
    out = run([shell("fish"), "-c", "source completions/dlock.fish; complete -C 'dlock st'; complete -C 'dlock release --f'"])
    assert [line.split("\t")[0] for line in out.splitlines()] == ["status", "--force"]


def test_wheel_installs_man_page_and_completions_where_tools_look(tmp_path):
    wheel_dir, prefix = tmp_path / "wheel", tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(wheel_dir.glob("dlock-*.whl"))
    # A venv of its own: installing into this environment (even with --prefix) would
    # replace the dlock under test.
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True, capture_output=True)
    subprocess.run([str(prefix / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    share = prefix / "share"
    for relative in ("man/man1/dlock.1", "bash-completion/completions/dlock.bash", "zsh/site-functions/_dlock",
                     "fish/vendor_completions.d/dlock.fish"):
        assert (share / relative).is_file(), relative
    found = subprocess.run([shell("man"), "-w", "dlock"], capture_output=True, text=True,
                           env={**os.environ, "MANPATH": str(share / "man")})
    assert found.stdout.strip() == str(share / "man" / "man1" / "dlock.1")
