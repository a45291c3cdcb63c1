"""Small helpers that create inventory rows for tests: every field has a sensible default."""

import itertools
import uuid

from django.utils import timezone

from fabric.models import Cluster, Host, SmbShare, StorageLocation, VirtualDisk, VirtualMachine, VmState

_seq = itertools.count(1)

GB = 1024**3


def make_cluster(name=None, **fields) -> Cluster:
    n = next(_seq)
    name = name or f"clu{n:02d}"
    defaults = {"fqdn": f"{name}.contoso.test", "functional_level": 10, "max_parallel_migrations": 1}
    return Cluster.objects.create(name=name, **(defaults | fields))


def make_host(name=None, cluster=None, **fields) -> Host:
    n = next(_seq)
    name = name or f"hv{n:03d}"
    defaults = {
        "fqdn": f"{name}.contoso.test",
        "address": f"10.0.{n // 250}.{n % 250 + 1}",
        "os_version": "Windows Server 2022 Datacenter",
        "supported_config_versions": ["8.0", "9.0", "10.0"],
        "memory_total_bytes": 256 * GB,
        "memory_available_bytes": 128 * GB,
        "migration_enabled": True,
        "reachable": True,
        "last_sync": timezone.now(),
        "virtual_switches": ["External"],
    }
    return Host.objects.create(name=name, cluster=cluster, **(defaults | fields))


def make_share(unc_path=None, hosts=(), **fields) -> SmbShare:
    n = next(_seq)
    unc_path = unc_path or f"\\\\fs{n:02d}.contoso.test\\vms"
    server = unc_path.lstrip("\\").split("\\")[0]
    defaults = {"file_server": server, "file_server_fqdn": server}
    share = SmbShare.objects.create(unc_path=unc_path, **(defaults | fields))
    share.hosts.set(hosts)
    return share


def make_vm(name=None, host=None, **fields) -> VirtualMachine:
    n = next(_seq)
    host = host or make_host()
    defaults = {
        "guid": uuid.uuid4(),
        "state": VmState.RUNNING,
        "memory_assigned_bytes": 4 * GB,
        "config_version": "10.0",
        "config_path": f"C:\\VMs\\vm{n:04d}",
        "switch_names": ["External"],
    }
    return VirtualMachine.objects.create(name=name or f"vm{n:04d}", host=host, **(defaults | fields))


def make_disk(path=None, vms=(), **fields) -> VirtualDisk:
    n = next(_seq)
    path = path or f"C:\\VMs\\disk{n:04d}.vhdx"
    defaults = {"key": path.lower(), "size_bytes": 60 * GB}
    disk = VirtualDisk.objects.create(path=path, **(defaults | fields))
    disk.vms.set(vms)
    return disk


def make_location(host, path, **fields) -> StorageLocation:
    return StorageLocation.objects.create(host=host, path=path, **fields)
