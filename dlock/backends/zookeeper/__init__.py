"""ZooKeeper lock nodes in kazoo's recipe layout: the session (client), the exclusion rule
(recipe), who a node says holds it (holders), holding (lease) and the target (backend)."""

from dlock.backends.zookeeper.backend import ZooKeeperBackend, open_backend

__all__ = ["ZooKeeperBackend", "open_backend"]
