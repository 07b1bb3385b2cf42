"""The one table from error class to exit code (DESIGN 5)."""

from __future__ import annotations

from dlock.errors import (
    BackendError,
    CorruptLock,
    DLockError,
    Interrupted,
    LockBusy,
    LockLost,
    Refused,
    UsageError,
)

OK, BUSY, USAGE, LOST, BACKEND, CORRUPT, REFUSED = 0, 1, 2, 3, 4, 5, 6
INTERNAL = 70  # a bug in dlock (EX_SOFTWARE); the traceback is shown with --debug

EXIT_CODES: tuple[tuple[type[DLockError], int], ...] = (
    (LockBusy, BUSY),
    (UsageError, USAGE),
    (LockLost, LOST),
    (BackendError, BACKEND),
    (CorruptLock, CORRUPT),
    (Refused, REFUSED),
)


def exit_code_for(error: DLockError) -> int:
    if isinstance(error, Interrupted):
        return 128 + error.signum
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return INTERNAL
