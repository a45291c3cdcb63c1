"""The Driver of api.py over WinRM / PowerShell Remoting (pypsrp): production hosts and the host emulator.

Every command is a cmdlet with typed parameters (psrp_session.build); values never become script
text. Each host has one runspace pool, opened on first use and reused by every call (thread-safe:
calls to one host take turns, hosts run in parallel).

A move runs on the source host as a migration job (Msvm_MigrationJob) started by Move-VM,
Move-VMStorage or Move-ClusterVirtualMachineRole. start_migration begins that pipeline, waits until
the host reports progress (or refuses), then names the move by the host's job id. While this
driver holds the pipeline, migration_status reads its progress records (PercentComplete) as they
arrive; in every case it reads the job itself, so a worker that restarts finds the move again
(find_migration) and follows it to its end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell

from fabric.hyperv import psrp_parse as parse
from fabric.hyperv.api import (
    ClusterInfo,
    Connection,
    HostInfo,
    HostInventory,
    HostSettings,
    HyperVError,
    Incompatibility,
    MigrationStatus,
    MoveRequest,
    NodeDrain,
    VmInfo,
)
from fabric.hyperv.powershell import SET_CLUSTER_PARALLEL_MIGRATIONS, wildcard
from fabric.hyperv.psrp_session import (
    SWITCH,
    HostSession,
    PsrpOptions,
    Script,
    Statement,
    close_quietly,
    credssp_connection,
    error_id,
    needs_credssp,
    to_error,
)

log = logging.getLogger(__name__)

VIRT = "root\\virtualization\\v2"
JOBS = ("Get-CimInstance", {"Namespace": VIRT, "ClassName": "Msvm_MigrationJob"})
HOST_STATEMENTS: list[Statement] = [
    [("Get-VMHost", {})],
    [("Get-VMHostSupportedVersion", {})],
    [("Get-VMMigrationNetwork", {})],
    [("Get-VMSwitch", {})],
    [("Get-CimInstance", {"ClassName": "Win32_OperatingSystem"})],
    [("Get-CimInstance", {"ClassName": "Win32_Processor"})],
]
VM_STATEMENTS: list[Statement] = [
    [("Get-VM", {})],
    [("Get-VMHardDiskDrive", {"VMName": "*"})],
    [("Get-VMHardDiskDrive", {"VMName": "*"}), ("Get-VHD", {})],
    [("Get-VMNetworkAdapter", {"VMName": "*"})],
    [("Get-VMProcessor", {"VMName": "*"})],
    # What real moves fail on (hyperv.md section 9), in the same round trip: ISOs, checkpoints,
    # virtual Fibre Channel. Replica and possible owners follow only where a VM needs them (follow_up).
    [("Get-VMDvdDrive", {"VMName": "*"})],
    [("Get-VMSnapshot", {"VMName": "*"})],
    [("Get-VMFibreChannelHba", {"VMName": "*"})],
]
# Seconds between two Receives of the inventory's pipeline while it runs (HostSession.run's gather):
# 100 hosts at 50 ms a cmdlet made 1,296 Receives a sync, 938 with 0.25 s (bench/sync.py; 0.5 s: 787,
# and the sync no quicker). A host's inventory ends at most this much later.
INVENTORY_GATHER = 0.25
# Every replication-enabled VM of the host (Get-VMReplication without -VMName: its help's Example 1).
REPLICATION_STATEMENT: Statement = [("Get-VMReplication", {})]
CLUSTER_STATEMENTS: list[Statement] = [[("Get-Cluster", {})], [("Get-ClusterNode", {})]]
# A VHD that cannot be read is no failure of the inventory.
TOLERATED = {"ObjectNotFound"}
# What the cluster cmdlets write on a host that is not a cluster node: it is standalone, not unreachable.
# ClusterEndpointNotRegistered: the FailoverClusters module is installed but the host is in no cluster
# (...,Microsoft.FailoverClusters.PowerShell.GetClusterCommand / GetNodeCommand); ClusterServiceNotRunning:
# a node whose cluster service is stopped answers as if it were none.
NOT_A_NODE = {"ClusterEndpointNotRegistered", "ClusterServiceNotRunning"}
# Without the FailoverClusters module (the usual standalone host) the cmdlets do not exist: PowerShell
# fails the whole pipeline with CommandNotFoundException, so the cluster is read in a pipeline of its own.
NO_MODULE = "CommandNotFoundException"
MOVE_JOB_TYPES = parse.MOVE_JOB_TYPES
# CIM_ConcreteJob.RequestStateChange (wmi-docs/cim-concretejob-requeststatechange.md): 0 completed,
# 4096 transition started; 4097 invalid state transition (the job already ended). The
# Msvm_MigrationJob page lists the vendor values 32768-32778 instead, where 32775 is "invalid state"
# in Hyper-V's numbering: both are read as "already ended".
CANCELLED = frozenset({0, 4096})
ALREADY_ENDED = frozenset({4097, 32775})
CANCEL_REFUSALS = {
    1: "not supported",
    2: "unknown or unspecified error",
    3: "cannot complete within the timeout period",
    4: "failed",
    5: "invalid parameter",
    6: "in use",
    4098: "use of the timeout parameter not supported",
    4099: "busy",
}
JOB_REMOVED_REMEDY = "Read the Hyper-V-VMMS event log of the source host for how the move ended, then try again"
PERFORMANCE = {"tcpip": "TCPIP", "compression": "Compression", "smb": "SMB"}
AUTH = {"kerberos": "Kerberos", "credssp": "CredSSP"}
# Resume-ClusterNode -Failback: its accepted values (Resume-ClusterNode.md).
FAILBACK = {"immediate": "Immediate", "no_failback": "NoFailback", "policy": "Policy"}
PROGRESS_EVERY = 0.5  # seconds between reads of a move's pipeline


@dataclass
class _Move:
    """A move pipeline this driver started and still holds."""

    session: HostSession
    ps: PowerShell
    percent: int = 0
    error: HyperVError | None = None
    polled_at: float = 0.0


class PsrpDriver:
    """The Driver over pypsrp. credentials(conn) fills in user, password and auth for a Connection
    that carries none (see fabric.credentials); options set timeouts, TLS validation and Basic over HTTP."""

    def __init__(
        self, options: PsrpOptions | None = None, credentials: Callable[[Connection], Connection] | None = None
    ):
        self.options = options or PsrpOptions()
        self.credentials = credentials
        self._sessions: dict[tuple, HostSession] = {}
        self._moves: dict[str, _Move] = {}
        self._requests: dict[str, MoveRequest] = {}  # the moves this driver started, by job id
        self._lock = threading.Lock()

    # --- sessions --------------------------------------------------------------------------------

    def logon(self, conn: Connection) -> Connection:
        """conn with how to log on to its host: as given, or filled in by the credentials callback."""
        if self.credentials is not None and not conn.username:
            return self.credentials(conn)
        return conn

    def session(self, conn: Connection, credssp: bool = False) -> HostSession:
        """The host's pool; credssp: the one the cluster cmdlets need (psrp_session.credssp_connection)."""
        conn = self.logon(conn)
        own_auth = conn.auth.lower()
        if credssp:
            conn = credssp_connection(conn)
        key = (conn.fqdn, conn.address, conn.port, conn.transport, conn.auth, conn.username, hash(conn.password))
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = HostSession(conn, self.options, credssp_for=own_auth)
            return session

    def close(self) -> None:
        """Close every pool (Delete on each host's shell)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            self._moves.clear()
        for session in sessions:
            session.close()

    def _run(self, conn: Connection, *statements: Statement, tolerate: set[str] = frozenset(), gather: float = 0.0):
        result = self.session(conn, needs_credssp(statements)).run(*statements, gather=gather)
        for record in result.errors:
            if error_id(record) not in tolerate:
                raise to_error(record, conn.fqdn)
        return result.output

    # --- inventory -------------------------------------------------------------------------------

    def inventory(self, conn: Connection) -> HostInventory:
        conn = self.logon(conn)  # once for the two or three requests (a database read each)
        groups = parse.by_kind(self._inventory_output(conn))
        servers = parse.share_servers(groups)
        # Shares are registered by whatever name the host used; DNS tells the file server's FQDN.
        lookups = [[("Resolve-DnsName", {"Name": s, "Type": "A"})] for s in servers]
        more = follow_up(conn, groups)
        fqdns: dict[str, str] = {}
        if lookups or more:
            answers = self._run(conn, *lookups, *more, tolerate={"DNS_ERROR_RCODE_NAME_ERROR", *TOLERATED, *NOT_A_NODE})
            for kind, objects in parse.by_kind(answers).items():
                if kind.startswith("DnsRecord"):
                    fqdns.update({str(p.get("QueryName")).lower(): str(p.get("Name")) for p in objects})
                else:
                    groups.setdefault(kind, []).extend(objects)
        return parse.inventory(conn.fqdn, groups, fqdns)

    def _inventory_output(self, conn: Connection) -> list:
        """The host's, VMs' and cluster's objects: in one request where the host had the FailoverClusters
        module when last asked, else the cluster in a request of its own (a host without the module
        fails a whole pipeline that names its cmdlets: CommandNotFoundException)."""
        session = self.session(conn)
        if session.cluster_module:
            try:
                return self._run(
                    conn, *HOST_STATEMENTS, *VM_STATEMENTS, *CLUSTER_STATEMENTS,
                    tolerate=TOLERATED | NOT_A_NODE, gather=INVENTORY_GATHER,
                )  # fmt: skip
            except HyperVError as exc:
                if exc.code != NO_MODULE:
                    raise
                log.info("%s no longer has the FailoverClusters module", conn.fqdn)
        output = self._run(conn, *HOST_STATEMENTS, *VM_STATEMENTS, tolerate=TOLERATED, gather=INVENTORY_GATHER)
        return output + self._cluster_output(conn, *CLUSTER_STATEMENTS)

    def get_vm(self, conn: Connection, vm_id: str) -> VmInfo | None:
        by_id = ("Get-VM", {"Id": vm_id})
        result = self.session(conn).run(
            [by_id],
            [by_id, ("Get-VMHardDiskDrive", {})],
            [by_id, ("Get-VMHardDiskDrive", {}), ("Get-VHD", {})],
            [by_id, ("Get-VMNetworkAdapter", {})],
            [by_id, ("Get-VMProcessor", {})],
        )
        for record in result.errors:
            if error_id(record) not in ("InvalidParameter", "ObjectNotFound"):
                raise to_error(record, conn.fqdn)
        found = parse.vms(parse.by_kind(result.output))
        return found[0] if found else None

    # --- moves -----------------------------------------------------------------------------------

    def compare(self, conn: Connection, request: MoveRequest) -> tuple[Incompatibility, ...]:
        if request.kind in ("quick", "storage"):
            # A quick migration is a cluster operation (save, move ownership, restore) and a storage
            # move stays on its host: Compare-VM checks a VM against another Hyper-V host.
            return ()
        target, params = self._vm_target(conn, request.vm_id, "Name")
        storage = _storage_params(request)
        command = ("Compare-VM", {**params, "DestinationHost": request.destination, **_piped_set(target, storage)})
        output = self._run(conn, [*target, command])
        reports = [o for o in output if parse.kind(o) == "VMCompatibilityReport"]
        return parse.incompatibilities(reports[0]) if reports else ()

    def start_migration(self, conn: Connection, request: MoveRequest) -> str:
        statement = self._move_statement(conn, request)
        session = self.session(conn, needs_credssp([statement]))
        with session.lock:
            restore = self._use_performance(conn, request) if request.kind in ("live", "live_vsm") else None
            try:
                ps = session.start(statement)
                try:
                    session.wait_started(ps)
                    move = _Move(session, ps)
                    self._read_progress(move)
                    if ps.state != PSInvocationState.RUNNING:
                        close_quietly(ps)
                        if move.error is not None:
                            raise move.error
                except BaseException:
                    if ps.state == PSInvocationState.RUNNING:
                        close_quietly(ps)
                    raise
            finally:
                if restore is not None:
                    self._run(conn, [("Set-VMHost", {"VirtualMachineMigrationPerformanceOption": restore})])
        job = self._find_job(conn, request.vm_id, running_first=True)
        if job is None:
            raise HyperVError(
                "NotFound", f"{conn.fqdn} accepted the move of {request.vm_id} but shows no migration job for it"
            )
        migration_id = str(job.get("InstanceID"))
        with self._lock:
            self._requests[migration_id] = request
            if ps.state == PSInvocationState.RUNNING:
                self._moves[migration_id] = move
        return migration_id

    def migration_status(
        self, conn: Connection, migration_id: str, request: MoveRequest | None = None
    ) -> MigrationStatus:
        """The job's state; request (the move asked for) tells how a job WMI already removed ended."""
        move = self._moves.get(migration_id)
        if move is not None:
            self._follow(move, migration_id)
        jobs = self._job(conn, migration_id)
        if not jobs:
            request = request or self._requests.get(migration_id)
            if request is None:
                raise HyperVError("NotFound", f"No migration job with id '{migration_id}' on {conn.fqdn}")
            return self._removed_job_status(conn, migration_id, request)
        return parse.job_status(parse.props(jobs[-1]), move.percent if move else None, move.error if move else None)

    def _job(self, conn: Connection, migration_id: str) -> list:
        return self._run(
            conn, [JOBS, ("Where-Object", {"Property": "InstanceID", "EQ": SWITCH, "Value": migration_id})]
        )

    def _removed_job_status(self, conn: Connection, migration_id: str, request: MoveRequest) -> MigrationStatus:
        """A job Hyper-V removed from WMI (TimeBeforeRemoval: 5 minutes after it ended) is no failure:
        where the VM runs tells how it ended. Gone from the source, or its files where a storage move
        puts them: completed. Otherwise the move ended without moving it (failed or cancelled)."""
        vm = self.get_vm(conn, request.vm_id)
        moved = _storage_moved(vm, request) if request.kind == "storage" else vm is None
        if moved:
            return MigrationStatus(migration_id, request.vm_id, "completed", 100)
        error = HyperVError(
            "JobRemoved",
            f"The migration job {migration_id} has ended and is no longer on {conn.fqdn}; "
            f"the virtual machine {request.vm_id} was not moved",
            JOB_REMOVED_REMEDY,
        )
        return MigrationStatus(migration_id, request.vm_id, "failed", 0, error=error)

    def find_migration(self, conn: Connection, vm_id: str) -> MigrationStatus | None:
        job = self._find_job(conn, vm_id, running_first=False)
        return None if job is None else parse.job_status(job)

    def cancel_migration(self, conn: Connection, migration_id: str) -> None:
        """Terminate the job. InvalidState when it already ended, also when WMI no longer has it
        (removed minutes after its end): there is nothing to cancel, migration_status tells the end."""
        jobs = self._job(conn, migration_id)
        if not jobs:
            raise HyperVError(
                "InvalidState",
                f"The migration job {migration_id} has already ended (no longer on {conn.fqdn})",
                "Refresh its status",
            )
        job = parse.props(jobs[-1])
        vm_id = str(job.get("VirtualSystemName"))
        if self._is_cluster_move(conn, vm_id, str(job.get("DestinationHost") or "")):
            self._run(conn, [("Move-ClusterVirtualMachineRole", {"VMId": vm_id, "Cancel": SWITCH})])
            return
        results = self._run(
            conn,
            [
                JOBS,
                ("Where-Object", {"Property": "InstanceID", "EQ": SWITCH, "Value": migration_id}),
                ("Invoke-CimMethod", {"MethodName": "RequestStateChange", "Arguments": {"RequestedState": 4}}),
            ],
        )
        value = int(parse.props(results[0]).get("ReturnValue") or 0) if results else 0
        if value in ALREADY_ENDED:
            raise HyperVError("InvalidState", "The migration job has already ended", "Refresh its status")
        if value not in CANCELLED:
            reason = CANCEL_REFUSALS.get(value, "error")
            raise HyperVError(
                str(value),
                f"{conn.fqdn} refused to terminate migration job {migration_id}: {reason} ({value})",
                "Try again in a moment" if value == 4099 else "",
            )

    # --- cluster roles and host settings ---------------------------------------------------------

    def stop_vm(self, conn: Connection, vm_id: str) -> None:
        # Stop-VM.md (shared/reference): the VMObject set takes -VM from the pipeline (ByValue); -Force,
        # because in a remote session nothing can answer Stop-VM's question about a signed-in user.
        self._run(conn, [("Get-VM", {"Id": vm_id}), ("Stop-VM", {"Force": SWITCH})])

    def save_vm(self, conn: Connection, vm_id: str) -> None:
        self._run(conn, [("Get-VM", {"Id": vm_id}), ("Save-VM", {})])  # Save-VM.md: -VM ByValue, VMObject set

    def start_vm(self, conn: Connection, vm_id: str) -> None:
        self._run(conn, [("Get-VM", {"Id": vm_id}), ("Start-VM", {})])  # Start-VM.md: -VM ByValue, VMObject set

    def remove_cluster_role(self, conn: Connection, vm_id: str) -> None:
        self._run(conn, [("Remove-ClusterGroup", {"VMId": vm_id, "RemoveResources": SWITCH, "Force": SWITCH})])

    def add_cluster_role(self, conn: Connection, vm_id: str) -> None:
        self._run(conn, [("Add-ClusterVirtualMachineRole", {"VMId": vm_id})])

    def set_host_settings(self, conn: Connection, settings: HostSettings) -> HostInfo:
        params = {
            "MaximumVirtualMachineMigrations": settings.max_live_migrations,
            "MaximumStorageMigrations": settings.max_storage_migrations,
            "VirtualMachineMigrationPerformanceOption": _choice(PERFORMANCE, settings.performance_option),
            "VirtualMachineMigrationAuthenticationType": _choice(AUTH, settings.auth_type),
            "UseAnyNetworkForMigration": settings.use_any_network,
            "VirtualMachinePath": settings.vm_path,
            "VirtualHardDiskPath": settings.vhd_path,
        }
        changes: list[Statement] = []
        if any(v is not None for v in params.values()):
            changes.append([("Set-VMHost", {k: v for k, v in params.items() if v is not None})])
        if settings.migration_enabled is not None:
            changes.append([("Enable-VMMigration" if settings.migration_enabled else "Disable-VMMigration", {})])
        changes += self._network_changes(conn, settings)
        if changes:
            self._run(conn, *changes)  # a refusal stops here, before the read-back
        output = self._run(conn, *HOST_STATEMENTS)
        return parse.host_info(conn.fqdn, parse.by_kind(output))

    def _network_changes(self, conn: Connection, settings: HostSettings) -> list[Statement]:
        """Add-/Remove-VMMigrationNetwork for what differs from the host's list: adding a subnet it has,
        or removing one it lacks, is no change (applied to many hosts, each may start from another list)."""
        if not settings.add_networks and not settings.remove_networks:
            return []
        have = {str(parse.props(n).get("Subnet")).lower() for n in self._run(conn, [("Get-VMMigrationNetwork", {})])}
        removes = [s for s in settings.remove_networks if s.lower() in have]
        adds = [s for s in settings.add_networks if s.lower() not in have]
        return [[("Remove-VMMigrationNetwork", {"Subnet": s})] for s in removes] + [
            [("Add-VMMigrationNetwork", {"Subnet": s})] for s in adds
        ]

    # --- a node's drain (Suspend-ClusterNode.md, Resume-ClusterNode.md) ---------------------------

    def suspend_node(self, conn: Connection, node: str, drain: bool = True) -> NodeDrain:
        # No -Wait: "the call is initiated and the cmdlet returns without waiting"; node_drain follows it.
        params = {"Name": node, "Drain": SWITCH} if drain else {"Name": node}
        return parse.node_drain(node, parse.by_kind(self._run(conn, [("Suspend-ClusterNode", params)])))

    def resume_node(self, conn: Connection, node: str, failback: str = "immediate") -> NodeDrain:
        value = _choice(FAILBACK, failback)
        output = self._run(conn, [("Resume-ClusterNode", {"Name": node, "Failback": value})])
        return parse.node_drain(node, parse.by_kind(output))

    def node_drain(self, conn: Connection, node: str) -> NodeDrain:
        output = self._run(conn, [("Get-ClusterNode", {"Name": node})], [("Get-ClusterGroup", {})], [JOBS])
        return parse.node_drain(node, parse.by_kind(output))

    def set_cluster_parallel_migrations(self, conn: Connection, cluster: str, value: int) -> ClusterInfo:
        script = (Script(SET_CLUSTER_PARALLEL_MIGRATIONS), {"Cluster": cluster, "Value": value})
        self._run(conn, [script])  # a refusal stops here, before the read-back
        output = self._run(conn, [("Get-Cluster", {"Name": cluster})], [("Get-ClusterNode", {})])
        info = parse.cluster_info(parse.by_kind(output))
        if info is None:
            raise HyperVError("ClusterNotFound", f"{conn.fqdn} shows no cluster '{cluster}'")
        return info

    # --- helpers ---------------------------------------------------------------------------------

    def _vm_target(self, conn: Connection, vm_id: str, name_param: str) -> tuple[list, dict]:
        """How a cmdlet taking a VM name gets this VM: by its literal name when that name (a wildcard
        pattern to Hyper-V) selects exactly this VM, else piped from Get-VM -Id."""
        listing = [parse.props(v) for v in self._run(conn, [("Get-VM", {})])]
        vm = next((v for v in listing if str(v.get("Id")).lower() == vm_id.lower()), None)
        if vm is None:
            raise HyperVError(
                "NotFound", f"Hyper-V was unable to find a virtual machine with id '{vm_id}' on {conn.fqdn}"
            )
        name = str(vm.get("Name"))
        pattern = wildcard(name)
        if [v for v in listing if pattern.match(str(v.get("Name")))] == [vm]:
            return [], {name_param: name}
        return [("Get-VM", {"Id": vm_id})], {}

    def _move_statement(self, conn: Connection, request: MoveRequest) -> Statement:
        if request.kind == "storage":
            target, params = self._vm_target(conn, request.vm_id, "VMName")
            return [*target, ("Move-VMStorage", {**params, **_storage_params(request)})]
        if request.kind == "quick" or (
            request.kind == "live" and self._is_cluster_move(conn, request.vm_id, request.destination)
        ):
            node = request.destination.split(".")[0]
            migration_type = "Quick" if request.kind == "quick" else "Live"
            return [
                (
                    "Move-ClusterVirtualMachineRole",
                    {"VMId": request.vm_id, "Node": node, "MigrationType": migration_type},
                )
            ]
        target, params = self._vm_target(conn, request.vm_id, "Name")
        storage = _storage_params(request)
        move = {**params, "DestinationHost": request.destination, **_piped_set(target, storage), "Passthru": SWITCH}
        return [*target, ("Move-VM", move)]

    def _use_performance(self, conn: Connection, request: MoveRequest) -> str | None:
        """A per-migration performance option, as the source's setting while the move starts.

        Move-VM has no option of its own (a single migration can choose one only through
        Msvm_VirtualSystemMigrationSettingData in WMI): the driver sets the source host's
        VirtualMachineMigrationPerformanceOption, starts the move (the host reads it then) and puts
        the previous value back. Returns that value, None when nothing had to change. Another
        console process starting a move from the same host in those seconds would get the option too.
        """
        option = request.performance_option.lower()
        if not option:
            return None
        wanted = _choice(PERFORMANCE, option)
        vmhost = parse.props(self._run(conn, [("Get-VMHost", {})])[0])
        current = parse.text(vmhost.get("VirtualMachineMigrationPerformanceOption"))
        if current.lower() == option:
            return None
        self._run(conn, [("Set-VMHost", {"VirtualMachineMigrationPerformanceOption": wanted})])
        return current

    def _cluster_output(self, conn: Connection, *statements: Statement) -> list:
        """What the cluster cmdlets return; nothing on a standalone host (module or not)."""
        session = self.session(conn)
        try:
            output = self._run(conn, *statements, tolerate=NOT_A_NODE)
        except HyperVError as exc:
            if exc.code == NO_MODULE:
                session.cluster_module = False
                return []
            raise
        session.cluster_module = True
        return output

    def _is_cluster_move(self, conn: Connection, vm_id: str, destination: str) -> bool:
        vms = self._run(conn, [("Get-VM", {"Id": vm_id})], tolerate={"InvalidParameter"})
        if not (vms and parse.props(vms[0]).get("IsClustered")):
            return False
        nodes = parse.by_kind(self._cluster_output(conn, [("Get-ClusterNode", {})])).get("ClusterNode", [])
        short = destination.split(".")[0].lower()
        return any(
            str(n.get("Name")).lower() == short
            or str(n.get("EmulatorFullyQualifiedName", "")).lower() == destination.lower()
            for n in nodes
        )

    def _find_job(self, conn: Connection, vm_id: str, running_first: bool) -> dict | None:
        found = self._run(
            conn, [JOBS, ("Where-Object", {"Property": "VirtualSystemName", "EQ": SWITCH, "Value": vm_id})]
        )
        # Moves only: a Compare-VM check leaves a job for the same VM too (JobType 301-304).
        jobs = [p for p in map(parse.props, found) if int(p.get("JobType") or 0) in MOVE_JOB_TYPES]
        if running_first:
            running = [j for j in jobs if parse.JOB_STATES.get(int(j.get("JobState") or 0)) == "running"]
            jobs = running or jobs
        # The newest last: by the emulator's start time when given, else in the host's order.
        jobs.sort(key=lambda j: float(j.get("EmulatorStartedAt") or 0))
        return jobs[-1] if jobs else None

    def _follow(self, move: _Move, migration_id: str) -> None:
        """Read what the move's pipeline wrote since last time (progress, errors); release it once it ended."""
        if time.monotonic() - move.polled_at < PROGRESS_EVERY:
            return
        with move.session.lock:
            if move.ps.state == PSInvocationState.RUNNING:
                try:
                    move.session.poll(move.ps, 1)
                except HyperVError as exc:
                    log.info("lost the move pipeline of %s: %s", migration_id, exc.message)
                    with self._lock:
                        self._moves.pop(migration_id, None)
                    return
            move.polled_at = time.monotonic()
            self._read_progress(move)
            if move.ps.state != PSInvocationState.RUNNING:
                close_quietly(move.ps)
                with self._lock:
                    self._moves.pop(migration_id, None)

    @staticmethod
    def _read_progress(move: _Move) -> None:
        for record in move.ps.streams.progress:
            if record.percent_complete is not None and record.percent_complete >= 0:
                move.percent = max(move.percent, int(record.percent_complete))
        move.ps.streams.progress.clear()
        if move.ps.streams.error and move.error is None:
            move.error = to_error(move.ps.streams.error[0], move.session.conn.fqdn)


def _storage_moved(vm: VmInfo | None, request: MoveRequest) -> bool:
    """Whether the VM's files are where this storage move puts them."""
    if vm is None:
        return False
    paths = {d.path.lower() for d in vm.disks} | {vm.config_path.lower()}
    if request.vhds:
        return all(new.lower() in paths for _, new in request.vhds)
    target = request.storage_path.lower().rstrip("\\")
    return bool(target) and all(p.startswith(target) for p in paths)


def follow_up(conn: Connection, groups: dict[str, list[dict]]) -> list[Statement]:
    """What only some hosts need, read with the DNS lookups (the inventory's second request, made
    anyway on a host with SMB connections): Get-VMReplication where Get-VM shows a replicated VM,
    the possible owners on a cluster node with clustered VMs. Each cmdlet costs a host a WMI query."""
    vms = groups.get("VirtualMachine", [])
    statements = []
    if any(parse.text(v.get("ReplicationMode")) not in ("", "None") for v in vms):
        statements.append(REPLICATION_STATEMENT)
    if groups.get("Cluster") and any(v.get("IsClustered") for v in vms):
        statements += owner_statements(conn)
    return statements


def owner_statements(conn: Connection) -> list[Statement]:
    """The possible owners of the resources this node owns: Get-ClusterResource takes a node from the
    pipeline, Get-ClusterOwnerNode of a resource lists its possible owners. One statement (each
    cmdlet costs the host a WMI query); a standalone host answers it as it answers Get-ClusterNode."""
    node = ("Get-ClusterNode", {"Name": conn.fqdn.split(".")[0]})
    return [[node, ("Get-ClusterResource", {}), ("Get-ClusterOwnerNode", {})]]


def _storage_params(request: MoveRequest) -> dict:
    if request.kind not in ("live_vsm", "network", "storage"):
        return {}
    if request.vhds:
        params: dict = {"Vhds": [{"SourceFilePath": s, "DestinationFilePath": d} for s, d in request.vhds]}
        if request.storage_path:
            params["VirtualMachinePath"] = request.storage_path
        return params
    if request.kind == "storage":
        return {"DestinationStoragePath": request.storage_path}
    return {"IncludeStorage": SWITCH, "DestinationStoragePath": request.storage_path or None}


def _piped_set(target: list, storage: dict) -> dict:
    """Move-VM / Compare-VM parameters for a VM given by name or piped from Get-VM.

    A piped VM binds to -VM, which is in VMSingleDestination and VMMultipleDestinations alike; with
    only -DestinationHost neither set is chosen (no default among them: AmbiguousParameterSet, per
    reference/powershell-docs/Hyper-V/Move-VM.md and Compare-VM.md). -IncludeStorage:$false names
    the single-destination set and moves no storage.
    """
    if target and not storage:
        return {"IncludeStorage": False}
    return storage


def _choice(names: dict[str, str], value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() not in names:
        raise HyperVError("InvalidParameter", f"Unknown value {value!r}; expected one of {', '.join(names)}")
    return names[value.lower()]
