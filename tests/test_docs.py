"""Completions and the man page: generated from the app, fresh, and working in real shells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import click
import pytest
import typer

from conftest import IN_CI, TESTS, dlock_executable

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


def test_bash_completes_commands_and_options_without_starting_python():
    script = ("source completions/dlock.bash; t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); "
              "_dlock_completion dlock; echo \"${COMPREPLY[*]}\"; }; "
              "t dlock st; t dlock release --f; t dlock --debug status -o k=v --zk-t; t dlock status --ttl ''; t dlock l")
    # No PATH: the completion can only use bash itself (Typer's script ran dlock at each TAB).
    result = subprocess.run([shell("bash"), "--norc", "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/nonexistent"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["status", "--force", "--zk-timeout", "", "list"]


def zsh_complete(setup: str, lines: list[str], tmp_path) -> list[str]:
    """Each line typed into a real interactive zsh (on a pty) and completed with TAB."""
    out = tmp_path / "completed"
    run([shell("zsh"), "-f", str(TESTS / "helpers" / "zsh_complete.zsh"), setup, str(out), *lines])
    return out.read_text().splitlines()


@pytest.mark.parametrize("how", ["fpath", "source"])
def test_zsh_completes_commands_options_and_paths(how, tmp_path):
    setup = {"fpath": f"fpath=({ROOT / 'completions' / 'zsh'} $fpath); autoload -U compinit; compinit -u -D",
             "source": f"autoload -U compinit; compinit -u -D; source {ROOT / 'completions' / 'dlock.zsh'}"}[how]
    (tmp_path / "datasets").mkdir()
    lines = ["dlock st", "dlock st", "dlock release --fo", f"dlock status {tmp_path}/data", "dlock --deb"]
    assert zsh_complete(setup, lines, tmp_path) == [
        "dlock status ", "dlock status ", "dlock release --force ", f"dlock status {tmp_path}/datasets/", "dlock --debug "]


def test_fish_completes_commands_and_options():
    out = run([shell("fish"), "-c", "source completions/dlock.fish; complete -C 'dlock st'; complete -C 'dlock release --f'"])
    assert [line.split("\t")[0] for line in out.splitlines()] == ["status", "--force"]


def test_a_dynamic_script_installed_by_an_earlier_dlock_still_completes():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_DLOCK_COMPLETE": "complete_bash", "COMP_WORDS": "dlock st",
           "COMP_CWORD": "1"}
    result = subprocess.run(dlock_executable(), capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and result.stdout.split() == ["status"]


def test_show_and_install_completion_give_the_static_scripts(tmp_path):
    bash = shell("bash")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    command = " ".join(dlock_executable())  # the installed `dlock`: its name is the one completed
    shown = subprocess.run([bash, "-c", f"{command} --show-completion"], capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0 and shown.stdout.strip() == (ROOT / "completions" / "dlock.bash").read_text().strip()
    installed = subprocess.run([bash, "-c", f"{command} --install-completion"], capture_output=True, text=True, env=env, timeout=60)
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / ".bash_completions" / "dlock.sh").read_text().strip() == shown.stdout.strip()


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
