"""Latency of `dlock st<TAB>` in bash: the static completion script beside Typer's dynamic one.

    python bench/completion.py [--runs 30] [--before /path/to/other/checkout]

Each script is sourced into one bash, which then calls its completion function as a TAB
does (COMP_WORDS=(dlock st), COMP_CWORD=1), timing each call with $EPOCHREALTIME. Typer's
script runs `dlock` (this checkout, or --before's, through a wrapper on PATH that starts it
as its console script does) with _DLOCK_COMPLETE set; the static one runs nothing.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMED = """
source "$1"
for ((n = 0; n < $2; n++)); do
    COMP_WORDS=(dlock st); COMP_CWORD=1; COMPREPLY=()
    start=$EPOCHREALTIME
    _dlock_completion dlock
    end=$EPOCHREALTIME
    echo "${COMPREPLY[*]} $start $end"
done
"""


def typers_script() -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="dlock", complete_var="_DLOCK_COMPLETE", shell="bash") + "\n"


def time_completion(script: Path, runs: int, tree: Path, bin_dir: Path) -> float:
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(tree))
    out = subprocess.run(["bash", "--norc", "-c", TIMED, "bash", str(script), str(runs)], env=env,
                         capture_output=True, text=True, check=True).stdout
    samples = []
    for line in out.splitlines():
        reply, start, end = line.rsplit(" ", 2)
        assert reply == "status", f"{script}: completed {reply!r}"
        samples.append((float(end) - float(start)) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--before", type=Path, help="another checkout (e.g. main) whose `dlock` Typer's script runs")
    args = parser.parse_args()
    tree = (args.before or ROOT).resolve()
    compileall.compile_dir(str(tree / "dlock"), quiet=1)  # as pip install does
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = Path(tmp)
        wrapper = bin_dir / "dlock"
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -c \"import sys; from dlock.cli import main; "
                           f"sys.argv[0] = 'dlock'; sys.exit(main())\" \"$@\"\n")
        wrapper.chmod(0o755)
        dynamic = bin_dir / "typer.bash"
        dynamic.write_text(typers_script())
        rows = [
            ("Typer's script (dynamic: starts dlock)", time_completion(dynamic, args.runs, tree, bin_dir)),
            ("completions/dlock.bash (static)", time_completion(ROOT / "completions" / "dlock.bash", args.runs, ROOT, bin_dir)),
        ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"bash; `dlock st<TAB>`, median of {args.runs}; Typer's script runs {tree}")
    print("| completion script | median latency |")
    print("|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} ms |")


if __name__ == "__main__":
    main()
