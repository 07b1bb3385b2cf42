"""One hierarchy of errors; the CLI maps each class to one exit code (cli/exitcodes.py)."""

from __future__ import annotations

import enum


class Remedy(str, enum.Enum):
    """A way out that the command line phrases with its own flags (the library names none)."""

    FORCE_RELEASE = "force-release"  # a forced release removes the lock
    ZK_AUTH = "zk-auth"  # ZooKeeper credentials are needed
    ZK_TIMEOUT = "zk-timeout"  # waiting longer for ZooKeeper may help
    RELEASE_CHOICE = "release-choice"  # a release is by token, by force or if stale
    TLS_CA = "tls-ca"  # the CA that signed a server's certificate is needed (ssl_ca_certs)
    TLS_HOSTNAME = "tls-hostname"  # a certificate for another name: the host-name check can be turned off


class DLockError(Exception):
    """Base of every error dlock raises on purpose.

    The message is one or two sentences that name the target and say what to do;
    `remedy` is a way out the caller may phrase in its own terms.
    """

    def __init__(self, message: str, *, remedy: Remedy | None = None) -> None:
        super().__init__(message)
        self.remedy = remedy


class LockBusy(DLockError):
    """The lock is held by someone else (or a wait timed out)."""

    def __init__(self, message: str, holder: object | None = None, *, remedy: Remedy | None = None) -> None:
        super().__init__(message, remedy=remedy)
        self.holder = holder


class UsageError(DLockError):
    """Bad option, bad target, bad duration."""


class LockLost(DLockError):
    """A lock we held was taken away (forced, expired, or the session died)."""


class BackendError(DLockError):
    """The store or ZooKeeper failed: unreachable, no such bucket, permission denied."""


class NotFound(BackendError):
    """The dataset (directory, bucket prefix, node) does not exist."""


class CorruptLock(DLockError):
    """A lock file that cannot be read as a lock."""


class Refused(DLockError):
    """dlock refused to act: needs confirmation, or the caller is not the owner."""


class NotOwner(Refused):
    """The token given does not own the lock."""


class NothingToGuard(DLockError):
    """`guard`: no live Deep Lake writer of this machine holds a lock there."""


class Interrupted(DLockError):
    """A wait was stopped by SIGINT/SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
