"""The simulated hosts' answers beyond moving: Get-VM, Compare-VM, the migration jobs, cluster roles, Set-VMHost.

A mixin of the Fabric (simulator.py), kept apart so each module stays readable. Every command that
changes the world or checks a move goes into the fabric's record with its parameters as received;
pure reads (Get-VM, a job's status) do not, since recording them would turn every read of the shared
world into a write of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fabric.hyperv.api import HyperVError, Incompatibility, MigrationStatus, MoveRequest, VmInfo
from fabric.hyperv.host_values import folder_problem, subnet_problem
from fabric.sim import report as sim_report
from fabric.sim.checks import PERFORMANCE_OPTIONS, REMEDY_MEMORY, validate
from fabric.sim.world import MEMORY_STATES, SimCluster, SimHost, SimVm, is_csv_path, unc_parts

if TYPE_CHECKING:
    from fabric.sim.simulator import Fabric

    _Base = Fabric
else:
    _Base = object

AUTH_TYPES = ("kerberos", "credssp")
REMEDY_SHARED_STORAGE = "Move the VM's files to a Cluster Shared Volume or an SMB share the nodes reach first"

# (cmdlet, parameters) exactly as a host received them, for the record; None: described from the arguments.
Command = tuple[str, dict[str, Any]] | None


# Host settings Set-VMHost (and Enable-VMMigration) can change.
HOST_SETTINGS = frozenset(
    {
        "max_live_migrations",
        "max_storage_migrations",
        "performance_option",
        "auth_type",
        "migration_enabled",
        "use_any_network",
        "migration_networks",  # Add-/Remove-VMMigrationNetwork
        "vm_path",
        "vhd_path",
    }
)


def request_params(request: MoveRequest) -> dict[str, Any]:
    return {
        "vm_id": request.vm_id,
        "source": request.source,
        "destination": request.destination,
        "kind": request.kind,
        "storage_path": request.storage_path,
        "vhds": [list(pair) for pair in request.vhds],
        "performance_option": request.performance_option,
    }


def message_id(code: str) -> int:
    """Compare-VM's MessageId for a code: the event id, the HRESULT as a number, or 0 for a symbolic id."""
    if code.isdigit():
        return int(code)
    if code.lower().startswith("0x"):
        return int(code, 16)
    return 0


class FabricAdmin(_Base):
    """Fabric methods for what a host answers or changes besides a move (see simulator.Fabric)."""

    # --- reads -------------------------------------------------------------------------------

    def get_vm(self, fqdn: str, vm_id: str) -> VmInfo | None:
        """Get-VM -Id on that host: None when the VM does not run there."""
        self.reachable_host(fqdn)
        vm = self.vms.get(vm_id)
        if vm is None or vm.host != fqdn:
            return None
        return sim_report.vm_info(vm, self.migration_of_vm(vm_id) is not None)

    def find_migration(self, fqdn: str, vm_id: str) -> MigrationStatus | None:
        """The latest migration job of a VM that this host took part in (Msvm_MigrationJob), running or ended."""
        self.reachable_host(fqdn)
        jobs = [m for m in self.migrations.values() if m.vm_id == vm_id and fqdn in (m.source, m.destination)]
        if not jobs:
            return None
        # Ids carry no order; insertion order of the dict is the order the jobs started in.
        return sim_report.status(self, jobs[-1])

    def compare(self, request: MoveRequest, command: Command = None) -> tuple[Incompatibility, ...]:
        """Compare-VM: every configuration incompatibility that would stop this move, without starting anything.

        Addressing errors (unknown VM or host, contradictory parameters) raise, as Compare-VM throws
        them. MessageId is Hyper-V's code where it has a number (33012, 21502, 10698), 0 for the refusals
        known only by an error id; Source names the object concerned. Runtime refusals (limits 21501,
        memory 0x800705AA, credentials 0x8009030E) come from the move itself, not from here (hyperv.md
        section 9).
        """
        cmdlet, params = command or ("Compare-VM", request_params(request))
        found: list[Incompatibility] = []

        def collect(exc: HyperVError, source: str) -> None:
            found.append(Incompatibility(message_id(exc.code), exc.message, source))

        try:
            validate(self, request, collect, runtime=False)
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        self._log(cmdlet, params, result="compared", incompatibilities=[i.message_id for i in found])
        self._check_job(request)
        return tuple(found)

    def _check_job(self, request: MoveRequest) -> None:
        """The job Compare-VM's check leaves on the source: Msvm_MigrationJob JobType 301 (checking the
        VM) or 302 (the VM and its storage), per Msvm_MigrationJob's JobType values."""
        with_storage = bool(request.storage_path or request.vhds) or request.kind in ("live_vsm", "network")
        self.sequence += 1
        self.check_jobs.append(
            {
                "id": f"check-{self.seed}-{self.sequence}",
                "vm_id": request.vm_id,
                "source": request.source,
                "destination": request.destination,
                "job_type": 302 if with_storage else 301,
                "at": self.now,
            }
        )
        del self.check_jobs[: max(0, len(self.check_jobs) - 50)]

    # --- cluster roles -----------------------------------------------------------------------

    def remove_cluster_role(self, fqdn: str, vm_id: str, command: Command = None) -> None:
        """Remove-ClusterGroup -VMId -RemoveResources -Force: the VM stays on its node, no longer highly available.

        A move the console makes afterwards is that of a standalone VM (storage options allowed), and
        nothing re-adds the role implicitly: that is add_cluster_role's job.
        """
        cmdlet, params = command or ("Remove-ClusterGroup", {"VMId": vm_id, "RemoveResources": True, "Force": True})
        host = self.reachable_host(fqdn)
        vm = self.vms.get(vm_id)
        try:
            if vm is None or not vm.is_clustered or not host.cluster or self.hosts[vm.host].cluster != host.cluster:
                raise HyperVError(
                    "ObjectNotFound",
                    f"No cluster group for the virtual machine '{vm_id}' in cluster '{host.cluster or fqdn}'",
                    "Refresh the inventory: the VM is not a clustered role of this host's cluster",
                )
            self._not_migrating(vm)
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        vm.is_clustered = False
        self._log(cmdlet, params, result="removed")

    def stop_vm(self, fqdn: str, vm_id: str, *, save: bool = False, command: Command = None) -> SimVm:
        """Stop-VM -Force (shut the guest down) or Save-VM, on the host the VM runs on. A VM that is
        off stays so (Stop-VM of an off VM is no error); a saved VM is off only after Stop-VM. A shut
        down VM starts later with its host's compatibility vector, so a stale one no longer holds."""
        cmdlet, params = command or (("Save-VM", {"VMId": vm_id}) if save else ("Stop-VM", {"VMId": vm_id}))
        host = self.reachable_host(fqdn)
        try:
            vm = self._vm_on(host, vm_id)
            self._not_migrating(vm)
            # Hyper-V refuses to save a VM that is off ("cannot be performed while the object is in its
            # current state"); the error id InvalidState is this emulator's reading, not confirmed on a host.
            if save and vm.state == "off":
                raise HyperVError(
                    "InvalidState",
                    f"'{vm.name}' failed to change state: the operation cannot be performed while the "
                    "object is in its current state (Off)",
                    "Only a running or paused VM can be saved",
                )
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        if not save:
            vm.compat_vector_stale = False
        self._power(vm, host, "saved" if save else "off")
        self._log(cmdlet, params, result=vm.state)
        return vm

    def start_vm(self, fqdn: str, vm_id: str, *, command: Command = None) -> SimVm:
        """Start-VM on the host the VM is on: an off VM boots, a saved one resumes. A running VM stays
        so (the driver only starts one that is not running: what a host answers then is not modelled)."""
        cmdlet, params = command or ("Start-VM", {"VMId": vm_id})
        host = self.reachable_host(fqdn)
        try:
            vm = self._vm_on(host, vm_id)
            self._not_migrating(vm)
            self._power(vm, host, "running")
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        self._log(cmdlet, params, result=vm.state)
        return vm

    def _vm_on(self, host, vm_id: str) -> SimVm:
        vm = self.vms.get(vm_id)
        if vm is None or vm.host != host.fqdn:
            raise HyperVError(
                "ObjectNotFound",
                f"Hyper-V was unable to find a virtual machine with id '{vm_id}' on '{host.name}'",
                "Refresh the inventory: the VM is not on this host",
            )
        return vm

    def add_cluster_role(self, fqdn: str, vm_id: str, command: Command = None) -> None:
        """Add-ClusterVirtualMachineRole -VMId on the cluster of the host asked: the VM is highly available again."""
        host = self.reachable_host(fqdn)
        cmdlet, params = command or ("Add-ClusterVirtualMachineRole", {"VMId": vm_id, "Cluster": host.cluster})
        vm = self.vms.get(vm_id)
        try:
            if not host.cluster:
                raise HyperVError("InvalidOperation", f"'{host.name}' is not a node of a failover cluster")
            if vm is None or self.hosts[vm.host].cluster != host.cluster:
                raise HyperVError(
                    "ObjectNotFound", f"No virtual machine with id '{vm_id}' on the nodes of cluster '{host.cluster}'"
                )
            if vm.is_clustered:
                raise HyperVError("InvalidState", f"'{vm.name}' is already a clustered role of '{host.cluster}'")
            self._not_migrating(vm)
            files = [vm.config_path, *(d.path for d in vm.disks)]
            local = [p for p in files if not (unc_parts(p) or is_csv_path(p))]
            if local:
                raise HyperVError(
                    "OperationFailed",
                    f"'{vm.name}' cannot be made highly available: '{local[0]}' is not on storage the cluster shares",
                    REMEDY_SHARED_STORAGE,
                )
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        vm.is_clustered = True
        self._log(cmdlet, params, result="added")

    def _not_migrating(self, vm: SimVm) -> None:
        if self.migration_of_vm(vm.id) is not None:
            raise HyperVError("InvalidState", f"'{vm.name}' is migrating", "Wait for the migration to end")

    # --- administration (what Set-VMHost, Start-VM and friends would do) ---------------------

    def set_host_settings(self, fqdn: str, *, command: Command = None, **values: Any) -> SimHost:
        """Set-VMHost / Enable-VMMigration / Disable-VMMigration; unknown or invalid values change nothing."""
        host = self.reachable_host(fqdn)
        cmdlet, params = command or ("Set-VMHost", {"ComputerName": fqdn, **values})
        try:
            unknown = set(values) - HOST_SETTINGS
            if unknown:
                raise HyperVError("InvalidParameter", f"Unknown host setting(s): {', '.join(sorted(unknown))}")
            _check_settings(values)
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        for name, value in values.items():
            setattr(host, name, value)
        self._log(cmdlet, params)
        return host

    def set_cluster_parallel_migrations(
        self, name: str, value: int, *, fqdn: str | None = None, command: Command = None
    ) -> SimCluster:
        """(Get-Cluster -Name X).MaximumParallelMigrations = N, asked of a node (fqdn) or of the world.

        The cluster refuses anything but a whole number of at least 1, as Hyper-V's cluster service
        refuses the property change (ERROR_INVALID_PARAMETER); a refusal changes nothing.
        """
        cmdlet, params = command or ("Set-ClusterParameter", {"Cluster": name, "MaximumParallelMigrations": value})
        host = self.reachable_host(fqdn) if fqdn is not None else None
        try:
            if host is not None:
                known = (host.cluster.lower(), self.clusters[host.cluster].fqdn.lower()) if host.cluster else ()
                if name.lower() not in known:
                    raise HyperVError(
                        "ClusterNotFound",
                        f"The cluster '{name}' was not found from '{host.name}': it is not the cluster of this node",
                    )
                name = host.cluster
            if name not in self.clusters:
                raise HyperVError("ClusterNotFound", f"The cluster '{name}' was not found")
            if self.clusters[name].max_parallel_migrations is None:
                # A WS2016/2019 cluster object has no such property: PowerShell's own refusal of the assignment.
                raise HyperVError(
                    "PropertyNotFound",
                    "The property 'MaximumParallelMigrations' cannot be found on this object. Verify that the "
                    "property exists and can be set.",
                    "This cluster has no MaximumParallelMigrations (Windows Server 2022 with the September 2022 "
                    "update and later): it does not cap its nodes' live migrations",
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise HyperVError(
                    "0x80070057",
                    f'Exception setting "MaximumParallelMigrations": "Unable to save property changes for '
                    f"'{name}'. The parameter is incorrect: MaximumParallelMigrations must be 1 or more, not "
                    f'{value!r}."',
                    "Set at least 1 parallel migration",
                )
        except HyperVError as exc:
            self._log(cmdlet, params, result="refused", code=exc.code)
            raise
        cluster = self.clusters[name]
        cluster.max_parallel_migrations = value
        self._log(cmdlet, params)
        return cluster

    def set_vm_state(self, vm_id: str, state: str) -> None:
        """Start-VM / Stop-VM / Save-VM: the VM takes or frees memory; a start refreshes its compatibility vector."""
        vm = self.vms[vm_id]
        host = self.hosts[vm.host]
        if self.migration_of_vm(vm_id) is not None:
            raise HyperVError("InvalidState", f"'{vm.name}' is migrating")
        if state in MEMORY_STATES and vm.state not in MEMORY_STATES:
            vm.compat_vector_stale = False
        self._power(vm, host, state)
        self._log("Set-VMState", {"VMId": vm_id, "State": state})

    @staticmethod
    def _power(vm: SimVm, host, state: str) -> None:
        """A VM that starts takes its memory from its host (refused when there is not enough); one
        that stops or is saved frees it."""
        was, now = vm.state in MEMORY_STATES, state in MEMORY_STATES
        if now and not was:
            if host.memory_available_bytes < vm.memory_bytes:
                raise HyperVError("0x800705AA", f"Not enough memory to start '{vm.name}'", REMEDY_MEMORY)
            host.memory_available_bytes -= vm.memory_bytes
        elif was and not now:
            host.memory_available_bytes += vm.memory_bytes
        vm.state = state

    def restart_vm(self, vm_id: str) -> None:
        """Restart-VM: the compatibility vector catches up with the host."""
        self.vms[vm_id].compat_vector_stale = False
        self._log("Restart-VM", {"VMId": vm_id})


# Set-VMHost's parameter for each limit, as its messages name it.
_LIMIT_PARAMETERS = {
    "max_live_migrations": "MaximumVirtualMachineMigrations",
    "max_storage_migrations": "MaximumStorageMigrations",
}


def _check_settings(values: dict[str, Any]) -> None:
    for name, parameter in _LIMIT_PARAMETERS.items():
        value = values.get(name)
        if name in values and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            # PowerShell's ValidateRange text, as Set-VMHost answers a limit of 0.
            raise HyperVError(
                "InvalidParameter",
                f"Cannot validate argument on parameter '{parameter}'. The {value} argument is less than the "
                "minimum allowed range of 1. Supply an argument that is greater than or equal to 1 and then try "
                "the command again.",
                "Set at least 1",
            )
    for name in ("vm_path", "vhd_path"):
        if name in values and (problem := folder_problem(str(values[name]))):
            raise HyperVError("InvalidParameter", f"Failed to modify the host's default folder: {problem}")
    for subnet in values.get("migration_networks", ()):
        if problem := subnet_problem(str(subnet)):
            raise HyperVError("InvalidParameter", f"Failed to add the migration network: {problem}")
    if "performance_option" in values and values["performance_option"] not in PERFORMANCE_OPTIONS:
        raise HyperVError("InvalidParameter", f"Unknown performance option {values['performance_option']!r}")
    if "auth_type" in values and values["auth_type"] not in AUTH_TYPES:
        raise HyperVError("InvalidParameter", f"Unknown authentication type {values['auth_type']!r}")
    for name in ("migration_enabled", "use_any_network"):
        if name in values and not isinstance(values[name], bool):
            raise HyperVError("InvalidParameter", f"{name} must be true or false, not {values[name]!r}")
