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

from fabric.hyperv.api import (
    Connection,
    HostInventory,
    HostUnreachable,
    HyperVError,
    MigrationStatus,
    MoveRequest,
)
from fabric.sim import flow as sim_flow
from fabric.sim import report as sim_report
from fabric.sim.admin import Command, FabricAdmin, request_params
from fabric.sim.checks import (
    FAILURES,
    MoveDecision,
    validate,
)
from fabric.sim.drain import FabricDrain
from fabric.sim.world import (
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
    from_table,
    is_csv_path,
    to_plain,
    to_table,
    unc_parts,
)

__all__ = ["FAILURES", "Fabric", "SimCluster", "SimDisk", "SimHost", "SimMigration", "SimShare", "SimTuning", "SimVm"]


class Fabric(FabricAdmin, FabricDrain):
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
        # Compare-VM's checks, each a finished Msvm_MigrationJob of JobType 301/302 on the source (the
        # WMI view of hosts; moves are in migrations): {"id", "vm_id", "source", "destination", "job_type", "at"}
        self.check_jobs: list[dict[str, Any]] = []
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

    def set_link(self, fqdn: str, gbps: float) -> None:
        """Fault injection: the host's migration network slows (or stops, at 0) under the moves it
        carries; they keep their state and the host keeps answering, so a move's progress stalls."""
        if gbps < 0:
            raise ValueError("a link carries no negative bandwidth")
        self.hosts[fqdn].nic_gbps = gbps
        self.touch()

    def inventory(self, fqdn: str) -> HostInventory:
        """What Get-VMHost, Get-VM, Get-Cluster and the SMB client of this host would tell."""
        return sim_report.inventory(self, self.reachable_host(fqdn))

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

    def start_migration(self, request: MoveRequest, command: Command = None) -> str:
        """Start a move as Hyper-V would accept it; returns the migration id (the host's job).

        command: the cmdlet and parameters as a host received them (the emulator), recorded instead of
        the ones this move is described with.
        """
        asked = request_params(request)
        try:
            decision = validate(self, request)
        except HyperVError as exc:
            cmdlet, params = command or ("start_migration", asked)
            self._log(cmdlet, params, request=asked, result="refused", code=exc.code)
            raise
        m = self._begin(decision)
        cmdlet, params = command or (decision.cmdlet, decision.params)
        self._log(cmdlet, params, request=asked, result="started", migration_id=m.id)
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
            per_disk=bool(d.request.vhds),
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
        return sim_report.status(self, self._migration(migration_id))

    def cancel_migration(self, migration_id: str, command: Command = None) -> None:
        """Terminate the job (Msvm_MigrationJob RequestStateChange 4); the VM stays on its source."""
        cmdlet, params = command or ("RequestStateChange", {"Job": migration_id, "RequestedState": 4})
        self._log(cmdlet, params)
        m = self._migration(migration_id)
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
            # Land exactly on `end` when the caller's time is what ran out (no float dust left over).
            self.now = end if dt >= end - self.now else self.now + dt
            ended = False
            for m in running:
                outcome = sim_flow.settle(self, m, rates[m.id])
                if outcome == "failed":
                    self._fail(m)
                elif outcome == "completed":
                    self._end(m, "completed")
                ended = ended or outcome is not None
            if ended:
                self.drain_step()  # a cluster draining or failing back a node starts its next roles
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
            if m.per_disk:  # -VirtualMachinePath with -Vhds: checkpoints and smart paging stay where they were
                vm.snapshot_path, vm.smart_paging_path = vm.checkpoint_folder, vm.smart_paging_folder
            else:  # the whole storage: they move into the new folder with the configuration
                vm.snapshot_path = vm.smart_paging_path = ""
            vm.config_path = m.storage_path
        if m.ha_removed:
            vm.possible_owners = []  # a new cluster role: every node of its cluster may own it
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

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "now": self.now,
            "revision": self.revision,
            "sequence": self.sequence,
            "tuning": to_plain(self.tuning),
            "clusters": to_table(self.clusters.values(), SimCluster),
            "shares": to_table(self.shares.values(), SimShare),
            "hosts": to_table(self.hosts.values(), SimHost),
            "vms": to_table(self.vms.values(), SimVm),
            "migrations": [to_plain(m) for m in self.migrations.values()],
            "armed": self.armed,
            "record": self.record,
            "check_jobs": self.check_jobs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fabric:
        fabric = cls(data["seed"], from_plain(SimTuning, data.get("tuning", {})))
        fabric.now, fabric.revision, fabric.sequence = data["now"], data["revision"], data["sequence"]
        fabric.clusters = {c.name: c for c in from_table(SimCluster, data["clusters"])}
        fabric.shares = {s.unc_path: s for s in from_table(SimShare, data["shares"])}
        fabric.hosts = {h.fqdn: h for h in from_table(SimHost, data["hosts"])}
        fabric.vms = {v.id: v for v in from_table(SimVm, data["vms"])}
        fabric.migrations = {m["id"]: from_plain(SimMigration, m) for m in data["migrations"]}
        fabric.armed = dict(data.get("armed", {}))
        fabric.record = list(data.get("record", []))
        fabric.check_jobs = list(data.get("check_jobs", []))
        return fabric


def _version_rank(host: SimHost) -> float:
    """Newest configuration version a host runs: a stand-in for its Hyper-V generation."""
    return max((float(v) for v in host.supported_config_versions), default=0.0)
