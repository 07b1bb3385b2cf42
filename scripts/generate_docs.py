"""Generate completions/dlock.{bash,zsh,fish} and man/dlock.1 from the Typer app.

    python scripts/generate_docs.py          # write them
    python scripts/generate_docs.py --check  # exit 1 if the committed files are stale

The completion scripts are static (dlock/cli/completion.py; the same `--install-completion`
installs): generated from the app, so they list every verb and option without starting
Python at each TAB, and a test fails when they fall behind the commands.
The man page's command and option sections come from the app's help; the rest is
written here by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlock._version import __version__  # noqa: E402
from dlock.cli.app import app, unescape_help  # noqa: E402

SHELLS = {"bash": "dlock.bash", "zsh": "dlock.zsh", "fish": "dlock.fish"}
MAN_DATE = "2026-11-24"  # fixed, so a fresh generation is byte-identical

HAND_WRITTEN = {
    "DESCRIPTION": r"""
.B dlock
administers the write locks of datasets: the
.I dataset_lock.lock
files Deep Lake 3 keeps beside a dataset (on local disk, S3, GCS, Azure Blob Storage or any
fsspec store)
and lock nodes in ZooKeeper laid out as kazoo's lock recipes.
It shows who holds a lock, waits for it, takes it, runs a command under it, and
removes the one a dead job left behind.
Its own locks are taken with the store's conditional writes (link(2) locally,
If\-None\-Match/If\-Match on S3 and Azure, generation preconditions on GCS), so two machines
racing can never both hold one.
""",
    "TARGETS": r"""
.TP
.IR ./ds ", " /data/ds ", " file:///data/ds
A local dataset directory. It must exist; dlock never creates a dataset.
.TP
.I s3://bucket/prefix/ds
A dataset on S3 (s3fs). Endpoint from
.B \-o endpoint_url=
or
.BR AWS_ENDPOINT_URL .
.TP
.IR gs://bucket/ds ", " gcs://bucket/ds
A dataset on GCS (gcsfs); an emulator through
.BR STORAGE_EMULATOR_HOST .
.TP
.IR az://container/ds ", " abfs://container/ds ", " abfss://container@account.dfs.core.windows.net/ds
A dataset on Azure Blob Storage (adlfs; install the
.B azure
extra). Credentials as for adlfs:
.B \-o account_name= \-o account_key=
or the
.B AZURE_STORAGE_*
variables.
.TP
.I memory://ds
The in\-process store, for the Python API and tests.
.TP
.I zk://h1:2181,h2:2181/locks/ds
A ZooKeeper lock node;
.I zk:///locks/ds
takes the hosts from
.BR DLOCK_ZK_HOSTS .
.TP
.I redis://[user:password@]host:6379/0/locks/ds
A Redis lock key (the rest of the path after the database number) in redis\-py's
.B Lock
layout;
.I redis:///0/locks/ds
takes the server from
.BR DLOCK_REDIS_URL .
.I rediss://
is TLS; the CA that signed the server's certificate is given with
.BR "\-o ssl_ca_certs=" PATH
(also ssl_certfile, ssl_keyfile, ssl_cert_reqs, ssl_check_hostname), or as redis\-py's URL
query, e.g. in
.BR DLOCK_REDIS_URL .
.PP
Any other fsspec URL works through Deep Lake's write\-wait\-verify protocol, which is
not atomic; dlock says so.
For a Deep Lake dataset the lock is the one Deep Lake checks: the head commit of
.B \-\-branch
(default main), that is
.I versions/<head>/dataset_lock.lock
once the dataset has commits.
""",
    "EXIT STATUS": r"""
.TP
.B 0
Success; status: every target free (absent or stale); wait: free; guard: the writer is
done (its lock removed or its process gone), or SIGINT/SIGTERM stopped it.
.TP
.B 1
Busy: status found a held lock; acquire, wait or run timed out (run: unless
.BR \-\-conflict\-exit\-code );
guard: no live Deep Lake writer found.
.TP
.B 2
Usage error: bad option, bad target, bad duration.
.TP
.B 3
The lock was lost while held (run, acquire \-\-hold);
guard: another's lock replaced the one it guarded.
.TP
.B 4
Storage or ZooKeeper error: unreachable, no such dataset or bucket, permission denied,
bad credentials.
.TP
.B 5
A lock is corrupt.
.TP
.B 6
Refused: not the owner (wrong or missing token), or \-\-force or clean without
confirmation and no terminal.
.TP
.B 70
A bug in dlock (\-\-debug shows the traceback).
.TP
.B 126
run: the command was found but could not be executed.
.TP
.B 127
run: the command was not found.
.TP
.I other
run: the command's own exit status (128+N if it was killed by signal N).
""",
    "ENVIRONMENT": r"""
.TP
.B DLOCK_ZK_HOSTS
ZooKeeper hosts for zk:///path targets.
.TP
.B DLOCK_ZK_AUTH
ZooKeeper digest credentials, user:password.
.TP
.B DLOCK_REDIS_URL
Redis server, credentials and TLS settings for redis:///DB/KEY targets, e.g.
rediss://user:password@cache:6380/?ssl_ca_certs=/etc/ssl/redis\-ca.pem.
.TP
.B DLOCK_TOKEN
The owner token for refresh when \-\-token is not given.
.TP
.BR DLOCK_TARGET ", " DLOCK_TOKEN ", " DLOCK_LOCK_HELD
Set for the command of run: its target, its token, and 1.
.TP
.BR AWS_ENDPOINT_URL ", " AWS_PROFILE ", " AWS_ACCESS_KEY_ID ", " AWS_SECRET_ACCESS_KEY
S3 endpoint and credentials, as for the AWS tools.
.TP
.BR STORAGE_EMULATOR_HOST ", " GOOGLE_APPLICATION_CREDENTIALS
GCS emulator and credentials.
.TP
.BR AZURE_STORAGE_CONNECTION_STRING ", " AZURE_STORAGE_ACCOUNT_NAME ", " AZURE_STORAGE_ACCOUNT_KEY ", " AZURE_STORAGE_SAS_TOKEN
Azure account and credentials, as for adlfs.
.TP
.B GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT
dlock sets it to false unless it is set (gcsfs's zonal bucket probing stalls against
anything but real GCS).
.TP
.B NO_COLOR
Plain output even on a terminal.
""",
    "FILES": r"""
.TP
.I <dataset>/dataset_lock.lock
The lock of a dataset whose head is its first commit, or of a plain directory.
.TP
.I <dataset>/versions/<commit>/dataset_lock.lock
The lock of a later head commit.
.TP
.I <dataset>/version_control_info.json
Deep Lake's branches and their head commits.
.TP
.I <dataset>/dataset_lock.lock.fence
The dataset's fencing counter: the last fence handed out (see
.BR "dlock check" ).
.TP
.I $TMPDIR/dlock\-<uid>/<device>\-<inode>.line
The line of processes on this machine waiting for a lock on local disk, one empty file
per dataset directory (named by its device and inode), held with flock(2) by the first
in line. Never inside the dataset; removed once nobody has waited there for 10 s.
.TP
.I ~/.cache/dlock/conditional\-writes.json
Which S3\- and Azure\-compatible endpoints honour conditional writes (probed once a day).
""",
    "EXAMPLES": r"""
Who holds it, and is it stale?
.PP
.RS
.nf
dlock status s3://lake/datasets/images
.fi
.RE
.PP
A CI step that waits up to 30 minutes for the lock and runs the job under it:
.PP
.RS
.nf
dlock run s3://lake/ds \-\-timeout 30m \-\- python ingest.py
.fi
.RE
.PP
A cron entry that clears stale locks every ten minutes:
.PP
.RS
.nf
*/10 * * * *  dlock clean s3://lake/datasets/ \-\-yes \-\-json
.fi
.RE
.PP
A cron entry that writes lock metrics for node_exporter's textfile collector
(replaced atomically; metric names and alert rules in the README):
.PP
.RS
.nf
*/5 * * * *  dlock list s3://lake/datasets/ \-\-format prometheus \e
    \-\-output /var/lib/node_exporter/textfile_collector/dlock.prom
.fi
.RE
.PP
A shell script that holds the lock across steps:
.PP
.RS
.nf
token=$(dlock acquire /data/ds \-\-ttl 1h) || exit
trap 'dlock release /data/ds \-\-token "$token"' EXIT
.fi
.RE
.PP
Keep every Deep Lake 3.9 writer on this host protected past the 5 minutes its own
lock lasts (Deep Lake 3.9 never refreshes it), from cron:
.PP
.RS
.nf
*/2 * * * *  flock \-n /run/dlock\-guard.lock dlock guard /data \-\-all \-\-until\-idle
.fi
.RE
.PP
Break a lock a dead job left (shows the holder and asks):
.PP
.RS
.nf
dlock release gs://bucket/ds \-\-force
.fi
.RE
""",
    "SEE ALSO": r"""
.BR flock (1),
.BR consul (1),
.BR etcdctl (1)
""",
}


def roff(text: str) -> str:
    """Escape text for a man page line."""
    text = unescape_help(text)
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def command_section(name: str, command: click.Command) -> list[str]:
    ctx = click.Context(command, info_name=name)
    usage = " ".join(command.collect_usage_pieces(ctx))
    out = [f".SS {roff(name)}", f".B dlock {roff(name)}", roff(usage), ".PP", roff((command.help or "").strip())]
    for param in command.params:
        if isinstance(param, click.Option) and param.hidden:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", f".B {roff(names)}", roff(help_text or "")]
    return out


def man_page() -> str:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    ctx = click.Context(group, info_name="dlock")
    commands = [(name, group.get_command(ctx, name)) for name in group.list_commands(ctx)]
    out = [
        f'.TH DLOCK 1 "{MAN_DATE}" "dlock {__version__}" "User Commands"',
        ".SH NAME",
        "dlock \\- administer dataset write locks (Deep Lake 3 lock files, ZooKeeper lock nodes)",
        ".SH SYNOPSIS",
    ]
    for name, command in commands:
        assert command is not None
        usage = " ".join(command.collect_usage_pieces(click.Context(command, info_name=name)))
        out += [f".B dlock {roff(name)}", roff(usage), ".br"]
    out += [".B dlock", "\\-\\-version | \\-\\-install\\-completion | \\-\\-show\\-completion"]
    out += [".SH DESCRIPTION", HAND_WRITTEN["DESCRIPTION"].strip()]
    out += [".SH OPTIONS"]
    for param in group.params:
        record = param.get_help_record(ctx)
        if record:
            out += [".TP", f".B {roff(record[0])}", roff(record[1] or "")]
    out += [".SH COMMANDS"]
    for name, command in commands:
        assert command is not None
        out += command_section(name, command)
    for section in ("TARGETS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
        out += [f".SH {section}", HAND_WRITTEN[section].strip()]
    return "\n".join(out) + "\n"


def completion(shell: str) -> str:
    from dlock.cli.completion import script

    return script(shell, typer.main.get_command(app))


def generated() -> dict[Path, str]:
    files = {ROOT / "completions" / filename: completion(shell) for shell, filename in SHELLS.items()}
    # zsh autoloads a completion only from a file named _<command> in its fpath.
    files[ROOT / "completions" / "zsh" / "_dlock"] = completion("zsh")
    files[ROOT / "man" / "dlock.1"] = man_page()
    return files


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from a fresh generation")
    args = parser.parse_args()
    stale = []
    for path, text in generated().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale, run python scripts/generate_docs.py: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
