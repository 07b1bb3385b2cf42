"""Start-up time of `dlock status ./ds` and `dlock --version` beside `python -c "import typer"`.

    python bench/startup.py [--runs 40] [--before /path/to/other/checkout]

The commands run interleaved (one of each per round, in a shuffled order), so a busy
neighbour on a shared machine slows them all alike; medians of --runs rounds. The dlock
measured is the checkout this script lives in (PYTHONPATH), started the way the `dlock`
console script starts it; --before adds the same commands for another checkout (e.g. a
worktree of main) in the same rounds, for a before/after table. Each checkout is compiled
to bytecode first, as `pip install` does (typer's own .pyc files were written when it was
installed; without dlock's, every start would compile dlock from source).
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
# What pip's console script for `dlock = "dlock.cli:main"` runs.
CONSOLE_SCRIPT = "import re, sys; from dlock.cli import main; sys.argv[0] = 'dlock'; sys.exit(main())"

Command = Tuple[List[str], Optional[Path]]  # argv, the checkout to run it from (its PYTHONPATH and cwd)


def dlock(tree: Path, *args: str) -> Command:
    return [sys.executable, "-c", CONSOLE_SCRIPT, *args], tree


def run_once(command: Command) -> float:
    argv, tree = command
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if tree:  # `python -c` puts the working directory first on sys.path
        env["PYTHONPATH"] = str(tree)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tree or tempfile.gettempdir())
    return (time.perf_counter() - started) * 1000


def interleaved_medians(commands: Dict[str, Command], runs: int) -> Dict[str, float]:
    samples: Dict[str, List[float]] = {name: [] for name in commands}
    names = list(commands)
    for name in names:  # warm the page cache and .pyc files
        run_once(commands[name])
    for _ in range(runs):
        random.shuffle(names)
        for name in names:
            samples[name].append(run_once(commands[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--before", type=Path, help="another checkout of dlock (e.g. main) measured in the same rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as ds:
        commands: Dict[str, Command] = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            'python -c "import typer"': ([sys.executable, "-c", "import typer"], None),
        }
        trees = [("", ROOT)] + ([("before: ", args.before.resolve())] if args.before else [])
        for _, tree in trees:
            compileall.compile_dir(str(tree / "dlock"), quiet=1)
        for label, tree in trees:
            commands[f"{label}dlock --version"] = dlock(tree, "--version")
            commands[f"{label}dlock status ./ds"] = dlock(tree, "status", ds)
            commands[f"{label}dlock status ./ds --json"] = dlock(tree, "status", ds, "--json")
        medians = interleaved_medians(commands, args.runs)
    typer_ms = medians['python -c "import typer"']
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"median of {args.runs} interleaved rounds")
    print("| command | median wall time | × `import typer` |")
    print("|---|---|---|")
    for name, ms in medians.items():
        print(f"| `{name}` | {ms:.0f} ms | {ms / typer_ms:.2f} |")
    for label, _ in trees:
        print(f"{label or 'this tree: '}status/typer {medians[f'{label}dlock status ./ds'] / typer_ms:.2f} (goal ≤ 1.3), "
              f"version/typer {medians[f'{label}dlock --version'] / typer_ms:.2f} (goal ≤ 1.1)")


if __name__ == "__main__":
    main()
