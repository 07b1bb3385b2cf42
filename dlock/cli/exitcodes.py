"""The one table from error class to exit code, and the command line's advice for each remedy."""

from __future__ import annotations

from dlock.errors import (
    BackendError,
    CorruptLock,
    DLockError,
    Interrupted,
    LockBusy,
    LockLost,
    NothingToGuard,
    Refused,
    Remedy,
    UsageError,
)

OK, BUSY, USAGE, LOST, BACKEND, CORRUPT, REFUSED = 0, 1, 2, 3, 4, 5, 6
INTERNAL = 70  # a bug in dlock (EX_SOFTWARE); the traceback is shown with --debug

EXIT_CODES: tuple[tuple[type[DLockError], int], ...] = (
    (LockBusy, BUSY),
    (NothingToGuard, BUSY),  # like grep finding nothing: 1
    (UsageError, USAGE),
    (LockLost, LOST),
    (BackendError, BACKEND),
    (CorruptLock, CORRUPT),
    (Refused, REFUSED),
)


# The library names no flags; here each way out becomes the command that takes it.
ADVICE: dict[Remedy, str] = {
    Remedy.FORCE_RELEASE: "`dlock release --force` removes it.",
    Remedy.ZK_AUTH: "Give credentials with --zk-auth USER:PASSWORD (or DLOCK_ZK_AUTH).",
    Remedy.ZK_TIMEOUT: "--zk-timeout waits longer.",
    Remedy.RELEASE_CHOICE: "Give one of --token T, --force, --if-stale.",
    Remedy.TLS_CA: "Give the CA that signed it with -o ssl_ca_certs=PATH.",
    Remedy.TLS_HOSTNAME: "-o ssl_check_hostname=false turns the check off.",
}


def message_for(error: DLockError) -> str:
    """The error's sentences, and the command line's way out when it has one."""
    advice = ADVICE.get(error.remedy) if error.remedy is not None else None
    return f"{error} {advice}" if advice else str(error)


def exit_code_for(error: DLockError) -> int:
    if isinstance(error, Interrupted):
        return 128 + error.signum
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return INTERNAL
