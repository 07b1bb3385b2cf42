"""kazoo's lock recipes as data, so that dlock and `zk.Lock`, `zk.WriteLock` and
`zk.ReadLock` in other programs exclude each other.

Contenders are ephemeral sequential children of the lock node, `<uuid hex>__lock__<seq>`
(write, exclusive) and `<uuid hex>__rlock__<seq>` (read, shared), in sequence order. As
in kazoo's recipe/lock.py, where Lock/WriteLock and ReadLock differ only by their node
name and the names they exclude, one table says which earlier contenders block which:
everything else (who holds, who blocks, whom to watch) follows from it.
"""

from __future__ import annotations

import dataclasses
import re

WRITE, READ = "__lock__", "__rlock__"
MODES = {WRITE: "write", READ: "read"}

# Which earlier contenders block a contender of each kind (kazoo's _EXCLUDE_NAMES): a
# writer waits for every earlier node, a reader only for earlier writers.
BLOCKED_BY: dict[str, frozenset[str]] = {
    WRITE: frozenset({WRITE, READ}),
    READ: frozenset({WRITE}),
}

CONTENDER = re.compile(r"^(?P<uuid>[0-9a-f]*)(?P<kind>__lock__|__rlock__)(?P<seq>-?\d{10})$")


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str  # the child node's name
    kind: str  # WRITE or READ
    sequence: str

    @property
    def mode(self) -> str:
        return MODES[self.kind]


def contenders(children: list[str]) -> list[Contender]:
    """The lock's contenders in lock order (kazoo compares the 10-digit sequences as text);
    children that are not contenders are not part of the lock."""
    found = [Contender(child, match["kind"], match["seq"]) for child in children if (match := CONTENDER.match(child))]
    return sorted(found, key=lambda c: c.sequence)


def blockers(contender: Contender, ordered: list[Contender]) -> list[Contender]:
    """The earlier contenders that keep `contender` from holding the lock, in lock order."""
    excluded = BLOCKED_BY[contender.kind]
    return [c for c in ordered if c.kind in excluded and c.sequence < contender.sequence]


def holds(contender: Contender, ordered: list[Contender]) -> bool:
    return not blockers(contender, ordered)


def predecessor(contender: Contender, ordered: list[Contender]) -> Contender | None:
    """The nearest earlier blocker: the one node a waiter watches. Only its going can let
    the waiter in, so the rest of the line may come and go without waking anyone (kazoo
    does the same, against the herd effect)."""
    ahead = blockers(contender, ordered)
    return ahead[-1] if ahead else None
