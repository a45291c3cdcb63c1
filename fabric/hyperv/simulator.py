"""A deterministic simulated Hyper-V fabric: the world the simulator driver and the host emulator serve.

The Fabric holds clusters, hosts, SMB shares and VMs (sim_world.py), accepts moves the way Hyper-V
does (sim_checks.py) and runs them as a fluid simulation on a simulated clock (sim_flow.py). It
never reads the wall clock and draws no unseeded randomness, so a seed and a list of calls give
the same world every time. simstore.py keeps it in one SQLite file shared by every process.

Change the world only through Fabric methods: they bump `revision`, which tells the store to save.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

from fabric.hyperv import sim_flow
from fabric.hyperv.api import (
    ClusterInfo,
    Connection,
    DiskInfo,
    HostInfo,
    HostInventory,
    HostUnreachable,
    HyperVError,
    MigrationStatus,
    MoveRequest,
    ShareInfo,
    VmInfo,
)
from fabric.hyperv.sim_checks import (
    REMEDY_DELEGATION,
    REMEDY_DRIVE_LETTERS,
    REMEDY_MEMORY,
    REMEDY_NETWORK,
    REMEDY_SWITCH,
    MoveDecision,
    validate,
)
from fabric.hyperv.sim_world import (
    MB,
    MEMORY_STATES,
    SimCluster,
    SimDisk,
    SimHost,
    SimMigration,
    SimShare,
    SimTuning,
    SimVm,
    from_plain,
    is_csv_path,
    to_plain,
    unc_parts,
)

__all__ = ["FAILURES", "Fabric", "SimCluster", "SimDisk", "SimHost", "SimMigration", "SimShare", "SimTuning", "SimVm"]

# Injectable failures: the code Hyper-V reports, its message, remedy and the default percent it fails at.
FAILURES: dict[str, tuple[str, str, str, int]] = {
    "memory": ("0x800705AA", "Insufficient system resources exist to complete the requested service", REMEDY_MEMORY, 5),
    "network": (
        "0x8007274C",
        "A connection attempt failed because the connected party did not properly respond after a period of time",
        REMEDY_NETWORK,
        50,
    ),
    "switch": ("33012", "Could not find Ethernet switch on the destination", REMEDY_SWITCH, 0),
    "delegation": ("0x8009030E", "No credentials are available in the security package", REMEDY_DELEGATION, 0),
    "drive_letters": ("20413", "The system drive letters of the nodes differ", REMEDY_DRIVE_LETTERS, 95),
}
# Host settings Set-VMHost (and Enable-VMMigration) can change.
HOST_SETTINGS = frozenset(
    {
        "max_live_migrations",
        "max_storage_migrations",
        "performance_option",
        "auth_type",
        "migration_enabled",
        "use_any_network",
        "delegation_configured",
    }
)


class Fabric:
    """The simulated clusters, hosts, shares and VMs, the migrations running between them, and a clock."""

    def __init__(self, seed: int = 1, tuning: SimTuning | None = None):
        self.seed = seed
        self.now = 0.0
        self.revision = 0
        self.tuning = tuning or SimTuning()
        self.clusters: dict[str, SimCluster] = {}
        self.shares: dict[str, SimShare] = {}
        self.hosts: dict[str, SimHost] = {}
        self.vms: dict[str, SimVm] = {}
        self.migrations: dict[str, SimMigration] = {}
        self.armed: dict[str, dict[str, Any]] = {}  # vm id -> failure for its next migration
        self.record: list[dict[str, Any]] = []
        self.sequence = 0  # numbers records and migration ids

    # --- building ----------------------------------------------------------------------------

    def add_cluster(self, cluster: SimCluster) -> SimCluster:
        self.clusters[cluster.name] = cluster
        self.touch()
        return cluster

    def add_share(self, share: SimShare) -> SimShare:
        self.shares[share.unc_path] = share
        self.touch()
        return share

    def add_host(self, host: SimHost) -> SimHost:
        self.hosts[host.fqdn] = host
        if host.cluster and host.fqdn not in self.clusters[host.cluster].nodes:
            self.clusters[host.cluster].nodes.append(host.fqdn)
        self.touch()
        return host

    def add_vm(self, vm: SimVm) -> SimVm:
        """Place a VM; a running one takes its memory from its host."""
        self.vms[vm.id] = vm
        if vm.state in MEMORY_STATES:
            self.hosts[vm.host].memory_available_bytes -= vm.memory_bytes
        self.touch()
        return vm

    def touch(self) -> None:
        self.revision += 1

    # --- lookups -----------------------------------------------------------------------------

    def share_for_path(self, path: str) -> SimShare | None:
        """The registered share a UNC path lies on, whether it names the server short or by FQDN."""
        parts = unc_parts(path)
        if parts is None:
            return None
        server, name = parts
        for share in self.shares.values():
            share_server, share_name = unc_parts(share.unc_path) or ("", "")
            fqdn = share.file_server_fqdn.lower()
            if share_name == name and server in {share_server, fqdn, fqdn.split(".")[0]}:
                return share
        return None

    def vm_by_name(self, name: str) -> SimVm | None:
        return next((vm for vm in self.vms.values() if vm.name == name), None)

    def running_migrations(self) -> list[SimMigration]:
        return [m for m in self.migrations.values() if m.state == "running"]

    def migration_of_vm(self, vm_id: str) -> SimMigration | None:
        return next((m for m in self.running_migrations() if m.vm_id == vm_id), None)

    def connections(self, *, auth: str = "basic", username: str = "", password: str = "") -> list[Connection]:
        """How to reach every host's WinRM endpoint (the host emulator serves these addresses)."""
        return [
            Connection(h.fqdn, h.address, h.port, h.transport, auth, username, password)
            for h in sorted(self.hosts.values(), key=lambda h: h.fqdn)
        ]

    # --- what a host reports -----------------------------------------------------------------

    def reachable_host(self, fqdn: str) -> SimHost:
        """The host, if it answers; HostUnreachable as a WinRM client would meet it otherwise."""
        host = self.hosts.get(fqdn)
        if host is None:
            raise HostUnreachable(fqdn, "name not found")
        if not host.reachable:
            raise HostUnreachable(fqdn, "connection refused")
        return host

    def set_reachable(self, fqdn: str, reachable: bool) -> None:
        self.hosts[fqdn].reachable = reachable
        self.touch()

    def inventory(self, fqdn: str) -> HostInventory:
        host = self.reachable_host(fqdn)
        cluster = self.clusters.get(host.cluster) if host.cluster else None
        migrating = {m.vm_id for m in self.running_migrations()}
        return HostInventory(
            host=_host_info(host),
            cluster=None
            if cluster is None
            else ClusterInfo(
                cluster.name,
                cluster.fqdn,
                cluster.functional_level,
                cluster.max_parallel_migrations,
                tuple(cluster.nodes),
            ),
            shares=tuple(
                ShareInfo(s.unc_path, s.file_server, s.file_server_fqdn)
                for s in (self.shares[unc] for unc in host.shares if unc in self.shares)
            ),
            vms=tuple(_vm_info(vm, vm.id in migrating) for vm in self.vms.values() if vm.host == fqdn),
        )

    # --- moves -------------------------------------------------------------------------------

    def _log(self, cmdlet: str, params: dict[str, Any], **extra: Any) -> None:
        self.sequence += 1
        self.record.append({"seq": self.sequence, "at": self.now, "cmdlet": cmdlet, "params": params, **extra})
        del self.record[: max(0, len(self.record) - self.tuning.max_record_kept)]
        self.touch()

    def _new_id(self) -> str:
        self.sequence += 1
        digest = hashlib.sha256(f"{self.seed}:migration:{self.sequence}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def start_migration(self, request: MoveRequest) -> str:
        """Start a move as Hyper-V would accept it; returns the migration id (the host's job)."""
        request_params = {
            "vm_id": request.vm_id,
            "source": request.source,
            "destination": request.destination,
            "kind": request.kind,
            "storage_path": request.storage_path,
            "vhds": [list(pair) for pair in request.vhds],
            "performance_option": request.performance_option,
        }
        try:
            decision = validate(self, request)
        except HyperVError as exc:
            self._log("start_migration", request_params, result="refused", code=exc.code)
            raise
        m = self._begin(decision)
        self._log(decision.cmdlet, decision.params, request=request_params, result="started", migration_id=m.id)
        return m.id

    def _begin(self, d: MoveDecision) -> SimMigration:
        vm = d.vm
        m = SimMigration(
            id=self._new_id(),
            vm_id=vm.id,
            vm_name=vm.name,
            kind=d.request.kind,
            source=d.source.fqdn,
            destination=d.destination.fqdn,
            performance_option=d.performance,
            storage_path=d.storage_path,
            vhds=[[old, new] for old, new in d.disk_moves.items()],
            started_at=self.now,
            memory_bytes=d.memory_bytes,
            dirty_bytes_s=vm.dirty_rate_mbps * MB,
            storage_total=d.storage_bytes,
            reserved_bytes=d.reserve_bytes,
            ha_removed=d.ha_removed,
            failure=self.armed.pop(vm.id, None),
        )
        d.destination.memory_available_bytes -= d.reserve_bytes
        if d.ha_removed:
            vm.is_clustered = False
            self._log("Remove-ClusterGroup", {"VMId": vm.id, "RemoveResources": True, "Force": True})
        sim_flow.start(self, m)
        self.migrations[m.id] = m
        self.touch()
        return m

    def _migration(self, migration_id: str) -> SimMigration:
        m = self.migrations.get(migration_id)
        if m is None:
            raise HyperVError("NotFound", f"No migration job with id '{migration_id}'")
        return m

    def migration_status(self, migration_id: str) -> MigrationStatus:
        m = self._migration(migration_id)
        rate = 0.0
        if m.state == "running":
            rate = sim_flow.rates(self, self.running_migrations())[m.id]
        total = sim_flow.estimate_total(self, m, rate) if m.state == "running" else sim_flow.done_units(m)
        memory_left = max(0.0, total - sim_flow.done_units(m) - (m.storage_total - m.storage_done))
        remaining = (m.storage_total - m.storage_done) + memory_left * sim_flow.wire_ratio(self, m)
        error = m.error
        return MigrationStatus(
            migration_id=m.id,
            vm_id=m.vm_id,
            state=m.state,
            percent=m.percent,
            bytes_sent=int(m.wire_sent),
            bytes_remaining=0 if m.state != "running" else int(remaining),
            pass_number=_round_number(m),
            dirty_rate_mbps=m.dirty_bytes_s / MB,
            transfer_rate_mbps=sim_flow.wire_rate(self, m, rate) / MB if m.state == "running" else 0.0,
            blackout_ms=None if m.blackout_s is None else round(m.blackout_s * 1000),
            error=None if error is None else HyperVError(error["code"], error["message"], error["remedy"]),
        )

    def cancel_migration(self, migration_id: str) -> None:
        """Terminate the job (Msvm_MigrationJob RequestStateChange 4); the VM stays on its source."""
        m = self._migration(migration_id)
        self._log("RequestStateChange", {"Job": migration_id, "RequestedState": 4})
        if m.state != "running":
            raise HyperVError("InvalidState", f"The migration job has already ended ({m.state})", "Refresh its status")
        self._end(m, "cancelled")

    def inject_failure(self, target: str, kind: str, at_percent: int | None = None) -> None:
        """Make a running migration (by id) or the next migration of a VM (by VM id) fail.

        The failure fires when the migration's progress reaches at_percent (defaults per kind: memory 5,
        network 50, switch and delegation 0, drive_letters 95).
        """
        if kind not in FAILURES:
            raise ValueError(f"unknown failure kind {kind!r}; known: {', '.join(FAILURES)}")
        failure = {"kind": kind, "at_percent": FAILURES[kind][3] if at_percent is None else at_percent}
        if target in self.migrations:
            self.migrations[target].failure = failure
        elif target in self.vms:
            self.armed[target] = failure
        else:
            raise KeyError(target)
        self.touch()

    # --- the clock ---------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let simulated time pass, jumping from event to event (see sim_flow)."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        end = self.now + seconds
        running = self.running_migrations()
        if running:
            self.touch()
        while running:
            rates = sim_flow.rates(self, running)
            phase_end = {m.id: m.phase_left / rates[m.id] if rates[m.id] > 0 else math.inf for m in running}
            dt = min([end - self.now] + [sim_flow.time_to_event(self, m, rates[m.id]) for m in running])
            dt = max(0.0, dt)
            for m in running:
                ends = phase_end[m.id] <= dt * (1 + 1e-12) + 1e-12
                sim_flow.progress(self, m, rates[m.id], dt, ends)
            self.now += dt
            for m in running:
                outcome = sim_flow.settle(self, m, rates[m.id])
                if outcome == "failed":
                    self._fail(m)
                elif outcome == "completed":
                    self._end(m, "completed")
            running = self.running_migrations()
            if self.now >= end:
                break
        self.now = max(self.now, end)

    # --- endings -----------------------------------------------------------------------------

    def _fail(self, m: SimMigration) -> None:
        code, message, remedy, _ = FAILURES[m.failure["kind"]]
        m.error = {
            "code": code,
            "message": f"Virtual machine migration operation for '{m.vm_name}' failed: {message}",
            "remedy": remedy,
        }
        self._end(m, "failed")

    def _end(self, m: SimMigration, state: str) -> None:
        vm, src, dst = self.vms[m.vm_id], self.hosts[m.source], self.hosts[m.destination]
        m.state, m.ended_at = state, self.now
        if state == "completed":
            m.percent, m.phase = 100, "done"
            self._land(m, vm, src, dst)
        else:
            # Nothing changed on the source: the VM keeps running there with its files (hyperv.md section 7).
            dst.memory_available_bytes += m.reserved_bytes
            if m.ha_removed:
                vm.is_clustered = True
                self._log("Add-ClusterVirtualMachineRole", {"VMId": vm.id, "Cluster": src.cluster})
        self._prune()
        self.touch()

    def _land(self, m: SimMigration, vm: SimVm, src: SimHost, dst: SimHost) -> None:
        """The VM now lives where the move put it."""
        if src is not dst:
            vm.host = dst.fqdn
            src.memory_available_bytes += m.reserved_bytes
            if m.kind in ("live", "live_vsm") and _version_rank(dst) > _version_rank(src):
                vm.compat_vector_stale = True  # stays old until the VM restarts (hyperv.md section 2)
        if m.storage_path:
            vm.config_path = m.storage_path
        moves = dict((old, new) for old, new in m.vhds)
        for disk in vm.disks:
            disk.path = moves.get(disk.path, disk.path)
        if m.ha_removed:
            files = [vm.config_path, *(d.path for d in vm.disks)]
            if dst.cluster and all(unc_parts(p) or is_csv_path(p) for p in files):
                vm.is_clustered = True
                self._log("Add-ClusterVirtualMachineRole", {"VMId": vm.id, "Cluster": dst.cluster})

    def _prune(self) -> None:
        finished = [m for m in self.migrations.values() if m.state != "running"]
        for m in finished[: max(0, len(finished) - self.tuning.max_finished_kept)]:
            del self.migrations[m.id]

    # --- administration (what Set-VMHost, Start-VM and friends would do) ---------------------

    def set_host_settings(self, fqdn: str, **values: Any) -> SimHost:
        host = self.reachable_host(fqdn)
        unknown = set(values) - HOST_SETTINGS
        if unknown:
            raise HyperVError("InvalidParameter", f"Unknown host setting(s): {', '.join(sorted(unknown))}")
        for name, value in values.items():
            setattr(host, name, value)
        self._log("Set-VMHost", {"ComputerName": fqdn, **values})
        return host

    def set_cluster_parallel_migrations(self, name: str, value: int) -> None:
        self.clusters[name].max_parallel_migrations = value
        self._log("Set-ClusterParameter", {"Cluster": name, "MaximumParallelMigrations": value})

    def set_vm_state(self, vm_id: str, state: str) -> None:
        """Start-VM / Stop-VM / Save-VM: the VM takes or frees memory; a start refreshes its compatibility vector."""
        vm = self.vms[vm_id]
        host = self.hosts[vm.host]
        if self.migration_of_vm(vm_id) is not None:
            raise HyperVError("InvalidState", f"'{vm.name}' is migrating")
        was, now = vm.state in MEMORY_STATES, state in MEMORY_STATES
        if now and not was:
            if host.memory_available_bytes < vm.memory_bytes:
                raise HyperVError("0x800705AA", f"Not enough memory to start '{vm.name}'", REMEDY_MEMORY)
            host.memory_available_bytes -= vm.memory_bytes
            vm.compat_vector_stale = False
        elif was and not now:
            host.memory_available_bytes += vm.memory_bytes
        vm.state = state
        self._log("Set-VMState", {"VMId": vm_id, "State": state})

    def restart_vm(self, vm_id: str) -> None:
        """Restart-VM: the compatibility vector catches up with the host."""
        self.vms[vm_id].compat_vector_stale = False
        self._log("Restart-VM", {"VMId": vm_id})

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "now": self.now,
            "revision": self.revision,
            "sequence": self.sequence,
            "tuning": to_plain(self.tuning),
            "clusters": [to_plain(c) for c in self.clusters.values()],
            "shares": [to_plain(s) for s in self.shares.values()],
            "hosts": [to_plain(h) for h in self.hosts.values()],
            "vms": [to_plain(v) for v in self.vms.values()],
            "migrations": [to_plain(m) for m in self.migrations.values()],
            "armed": self.armed,
            "record": self.record,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fabric:
        fabric = cls(data["seed"], from_plain(SimTuning, data.get("tuning", {})))
        fabric.now, fabric.revision, fabric.sequence = data["now"], data["revision"], data["sequence"]
        fabric.clusters = {c["name"]: from_plain(SimCluster, c) for c in data["clusters"]}
        fabric.shares = {s["unc_path"]: from_plain(SimShare, s) for s in data["shares"]}
        fabric.hosts = {h["fqdn"]: from_plain(SimHost, h) for h in data["hosts"]}
        fabric.vms = {v["id"]: from_plain(SimVm, v) for v in data["vms"]}
        fabric.migrations = {m["id"]: from_plain(SimMigration, m) for m in data["migrations"]}
        fabric.armed = dict(data.get("armed", {}))
        fabric.record = list(data.get("record", []))
        return fabric


def _round_number(m: SimMigration) -> int:
    """Rounds of memory copy so far: pre-copy passes 1..n, then n+1 for the stop-and-copy (0: none yet)."""
    if not m.memory_bytes or m.phase in ("prepare", "storage"):
        return 0
    if m.phase == "precopy":
        return m.pass_index + 1
    return m.pass_index + 2 if m.kind != "quick" else 1


def _version_rank(host: SimHost) -> float:
    """Newest configuration version a host runs: a stand-in for its Hyper-V generation."""
    return max((float(v) for v in host.supported_config_versions), default=0.0)


def _host_info(h: SimHost) -> HostInfo:
    return HostInfo(
        fqdn=h.fqdn,
        name=h.name,
        os_version=h.os_version,
        supported_config_versions=tuple(h.supported_config_versions),
        memory_total_bytes=h.memory_total_bytes,
        memory_available_bytes=h.memory_available_bytes,
        processor_family=h.processor_family,
        logical_processors=h.logical_processors,
        cpu_load_percent=h.cpu_load_percent,
        nic_gbps=h.nic_gbps,
        migration_enabled=h.migration_enabled,
        max_live_migrations=h.max_live_migrations,
        max_storage_migrations=h.max_storage_migrations,
        performance_option=h.performance_option,
        auth_type=h.auth_type,
        delegation_configured=h.delegation_configured,
        use_any_network=h.use_any_network,
        migration_networks=tuple(h.migration_networks),
        virtual_switches=tuple(h.virtual_switches),
        vm_path=h.vm_path,
        vhd_path=h.vhd_path,
    )


def _vm_info(vm: SimVm, migrating: bool) -> VmInfo:
    return VmInfo(
        id=vm.id,
        name=vm.name,
        state=vm.state,
        memory_assigned_bytes=vm.memory_bytes if vm.state in MEMORY_STATES else 0,
        config_version=vm.config_version,
        config_path=vm.config_path,
        is_clustered=vm.is_clustered,
        compat_vector_stale=vm.compat_vector_stale,
        switch_names=tuple(vm.switch_names),
        dirty_rate_mbps=vm.dirty_rate_mbps,
        migrating=migrating,
        disks=tuple(DiskInfo(d.path, d.size_bytes, d.shared) for d in vm.disks),
    )
