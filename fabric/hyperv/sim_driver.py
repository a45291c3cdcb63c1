"""The Driver of api.py over the simulated fabric, in process: no WinRM, one store session per call.

Every process that builds a SimDriver on the same file sees the same world (simstore.py), so a move
started by a worker is seen by the web process and by the next worker.
"""

from __future__ import annotations

from fabric.hyperv.api import Connection, HostInventory, MigrationStatus, MoveRequest
from fabric.hyperv.simstore import FabricStore


class SimDriver:
    """Answers as the host named by the connection would; an unreachable host raises HostUnreachable."""

    def __init__(self, store: FabricStore):
        self.store = store

    def inventory(self, conn: Connection) -> HostInventory:
        with self.store.session() as fabric:
            return fabric.inventory(conn.fqdn)

    def start_migration(self, conn: Connection, request: MoveRequest) -> str:
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            return fabric.start_migration(request)

    def migration_status(self, conn: Connection, migration_id: str) -> MigrationStatus:
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            return fabric.migration_status(migration_id)

    def cancel_migration(self, conn: Connection, migration_id: str) -> None:
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            fabric.cancel_migration(migration_id)
