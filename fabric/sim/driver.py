"""The Driver of api.py over the simulated fabric, in process: no WinRM, one store session per call.

Every process that builds a SimDriver on the same file sees the same world (simstore.py), so a move
started by a worker is seen by the web process and by the next worker.
"""

from __future__ import annotations

from fabric.hyperv.api import (
    SCALAR_SETTINGS,
    ClusterInfo,
    Connection,
    HostInfo,
    HostInventory,
    HostSettings,
    Incompatibility,
    MigrationStatus,
    MoveRequest,
    NodeDrain,
    VmInfo,
)
from fabric.sim import report as sim_report
from fabric.sim.store import FabricStore


class SimDriver:
    """Answers as the host named by the connection would; an unreachable host raises HostUnreachable.

    Commands are recorded in the fabric with the parameters this driver received (the request and
    ids), since no cmdlet text exists in between; the host emulator records the cmdlets themselves.
    """

    def __init__(self, store: FabricStore):
        self.store = store

    def inventory(self, conn: Connection) -> HostInventory:
        with self.store.session() as fabric:
            return fabric.inventory(conn.fqdn)

    def get_vm(self, conn: Connection, vm_id: str) -> VmInfo | None:
        with self.store.session() as fabric:
            return fabric.get_vm(conn.fqdn, vm_id)

    def compare(self, conn: Connection, request: MoveRequest) -> tuple[Incompatibility, ...]:
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            return fabric.compare(request)

    def start_migration(self, conn: Connection, request: MoveRequest) -> str:
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            return fabric.start_migration(request)

    def migration_status(
        self, conn: Connection, migration_id: str, request: MoveRequest | None = None
    ) -> MigrationStatus:
        # The simulator keeps its ended moves (up to SimTuning.max_finished_kept): request is not needed.
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            return fabric.migration_status(migration_id)

    def find_migration(self, conn: Connection, vm_id: str) -> MigrationStatus | None:
        with self.store.session() as fabric:
            return fabric.find_migration(conn.fqdn, vm_id)

    def cancel_migration(self, conn: Connection, migration_id: str) -> None:
        with self.store.session() as fabric:
            fabric.reachable_host(conn.fqdn)
            fabric.cancel_migration(migration_id)

    def stop_vm(self, conn: Connection, vm_id: str) -> None:
        with self.store.session() as fabric:
            fabric.stop_vm(conn.fqdn, vm_id)

    def save_vm(self, conn: Connection, vm_id: str) -> None:
        with self.store.session() as fabric:
            fabric.stop_vm(conn.fqdn, vm_id, save=True)

    def start_vm(self, conn: Connection, vm_id: str) -> None:
        with self.store.session() as fabric:
            fabric.start_vm(conn.fqdn, vm_id)

    def remove_cluster_role(self, conn: Connection, vm_id: str) -> None:
        with self.store.session() as fabric:
            fabric.remove_cluster_role(conn.fqdn, vm_id)

    def add_cluster_role(self, conn: Connection, vm_id: str) -> None:
        with self.store.session() as fabric:
            fabric.add_cluster_role(conn.fqdn, vm_id)

    def set_host_settings(self, conn: Connection, settings: HostSettings) -> HostInfo:
        values = {name: getattr(settings, name) for name in SCALAR_SETTINGS if getattr(settings, name) is not None}
        with self.store.session() as fabric:
            host = fabric.reachable_host(conn.fqdn)
            if settings.add_networks or settings.remove_networks:
                # As Add-/Remove-VMMigrationNetwork would leave them: new subnets after the host's own.
                gone = {s.lower() for s in settings.remove_networks}
                kept = [s for s in host.migration_networks if s.lower() not in gone]
                values["migration_networks"] = kept + [s for s in settings.add_networks if s not in kept]
            if values:
                fabric.set_host_settings(conn.fqdn, **values)
            return sim_report.host_info(fabric.reachable_host(conn.fqdn))

    def set_cluster_parallel_migrations(self, conn: Connection, cluster: str, value: int) -> ClusterInfo:
        with self.store.session() as fabric:
            c = fabric.set_cluster_parallel_migrations(cluster, value, fqdn=conn.fqdn)
            return ClusterInfo(c.name, c.fqdn, c.functional_level, c.max_parallel_migrations, tuple(c.nodes))

    def suspend_node(self, conn: Connection, node: str, drain: bool = True) -> NodeDrain:
        with self.store.session() as fabric:
            fabric.suspend_node(conn.fqdn, node, drain=drain)
            return sim_report.node_drain(fabric, conn.fqdn, node, details=False)

    def resume_node(self, conn: Connection, node: str, failback: str = "immediate") -> NodeDrain:
        with self.store.session() as fabric:
            fabric.resume_node(conn.fqdn, node, failback=failback)
            return sim_report.node_drain(fabric, conn.fqdn, node, details=False)

    def node_drain(self, conn: Connection, node: str) -> NodeDrain:
        with self.store.session() as fabric:
            return sim_report.node_drain(fabric, conn.fqdn, node)
