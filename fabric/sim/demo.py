"""The demo fabric (contoso.test) and larger generated fabrics for benchmarks; deterministic per seed.

The demo holds a case for every pre-flight rule: a share registered by short name, a shared VHDX
guest cluster, a VM with a stale compatibility vector, a cluster limited to one parallel migration,
a host with another performance option, a host that cannot take a 10.0 VM, missing switches, a
host short of memory, a VM whose name is a PowerShell injection attempt, and a standalone host
without the FailoverClusters PowerShell module (hv-s4).
"""

from __future__ import annotations

import random
import uuid

from fabric.hyperv.api import Connection
from fabric.sim.simulator import Fabric
from fabric.sim.world import GIB, SimCluster, SimDisk, SimHost, SimShare, SimTuning, SimVm, join_path

DOMAIN = "contoso.test"
FILE_SERVER = f"fs01.{DOMAIN}"
SHARE_FQDN = f"\\\\{FILE_SERVER}\\vms"
SHARE_SHORT = "\\\\fs01\\vmstore2"  # registered by short name: the smb-path-not-fqdn rule has a real case
CSV1 = "C:\\ClusterStorage\\Volume1"
CSV2 = "C:\\ClusterStorage\\Volume2"
LOCAL = "D:\\Hyper-V"
INJECTION_NAME = 'legacy-app\'; $(Remove-VM -Name *) ; "x"'

WS2019 = ("Windows Server 2019 Datacenter", ["5.0", "6.2", "7.0", "7.1", "8.0", "8.1", "8.2", "8.3", "9.0"])
WS2022 = ("Windows Server 2022 Datacenter", ["8.0", "8.1", "8.2", "8.3", "9.0", "9.1", "9.2", "9.3", "10.0"])
CPU = "Intel Xeon Gold 6248R (Cascade Lake)"
HOST_RESERVE = 8 * GIB  # memory the parent partition keeps


def demo_tuning() -> SimTuning:
    # Demo moves first spend a few seconds on checks and staging the planned VM (Compare-VM), as real ones do.
    return SimTuning(prepare_s=5.0)


def vcpus_for(memory_gib: int) -> int:
    """A plausible processor count for a VM of this memory: 2 up to 8 GiB, then one per 4 GiB, at most 16."""
    return max(2, min(16, memory_gib // 4))


def address(index: int) -> str:
    """WinRM address of the index-th host: 127.0.0.11, .12, ... (the host emulator listens there)."""
    n = 11 + index
    return f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def host_connections(fabric: Fabric, **kwargs) -> list[Connection]:
    """Connections to every host of a fabric (see Fabric.connections for auth, username, password)."""
    return fabric.connections(**kwargs)


def build_demo_fabric(seed: int = 1, hosts: int | None = None, vms: int | None = None) -> Fabric:
    """The contoso.test demo; with hosts and/or vms, a generated fabric of that size instead."""
    if hosts is None and vms is None:
        return _Demo(seed).build()
    hosts = hosts or max(2, (vms or 0) // 200)
    return _generated(seed, hosts, hosts * 20 if vms is None else vms)


class _Demo:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fabric = Fabric(seed, demo_tuning())
        self.index = 0

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def host(self, name: str, os: tuple[str, list[str]], memory_gib: int, **kw) -> SimHost:
        host = SimHost(
            fqdn=f"{name}.{DOMAIN}",
            name=name,
            address=address(self.index),
            os_version=os[0],
            supported_config_versions=list(os[1]),
            memory_total_bytes=memory_gib * GIB,
            memory_available_bytes=memory_gib * GIB - HOST_RESERVE,
            processor_family=CPU,
            logical_processors=self.rng.choice([32, 48, 64]),
            cpu_load_percent=self.rng.randint(5, 45),
            **kw,
        )
        self.index += 1
        return self.fabric.add_host(host)

    def vm(self, name: str, host: SimHost, memory_gib: int, folder: str, **kw) -> SimVm:
        """A VM whose configuration and disks sit in folder\\<name>; a clustered host makes it HA."""
        data_gib = kw.pop("data_gib", 0)
        folder_name = kw.pop("folder_name", name)
        home = join_path(folder, folder_name)
        vm = SimVm(
            id=self.guid(),
            name=name,
            host=host.fqdn,
            memory_bytes=memory_gib * GIB,
            config_version=kw.pop("version", "10.0" if "10.0" in host.supported_config_versions else "9.0"),
            config_path=home,
            is_clustered=bool(host.cluster),
            switch_names=kw.pop("switches", ["vSwitch-Prod"]),
            dirty_rate_mbps=kw.pop("dirty", round(self.rng.uniform(2, 120), 1)),
            processor_count=kw.pop("vcpus", vcpus_for(memory_gib)),
            **kw,
        )
        # A dynamically expanding system disk: what a storage move copies is the file, not the disk size.
        vm.disks.append(SimDisk(join_path(home, f"{folder_name}.vhdx"), self.rng.randint(8, 24) * GIB))
        if data_gib:  # data disks are fixed-size, as database servers' usually are: the file is the disk
            vm.disks.append(
                SimDisk(join_path(home, "data.vhdx"), data_gib * GIB, vhd_type="Fixed", max_bytes=data_gib * GIB)
            )
        return self.fabric.add_vm(vm)

    def build(self) -> Fabric:
        f = self.fabric
        f.add_share(SimShare(SHARE_FQDN, FILE_SERVER, FILE_SERVER))
        f.add_share(SimShare(SHARE_SHORT, "fs01", FILE_SERVER))
        # A WS2019 cluster has no MaximumParallelMigrations property: no cluster cap (hyperv.md section 9).
        old = f.add_cluster(SimCluster("CL-OLD", f"cl-old.{DOMAIN}", functional_level=10, max_parallel_migrations=None))
        new = f.add_cluster(SimCluster("CL-NEW", f"cl-new.{DOMAIN}", functional_level=11, max_parallel_migrations=1))
        cluster_paths = {"vm_path": f"{CSV1}\\VMs", "vhd_path": f"{CSV1}\\VMs", "storage_mbps": 1000.0}
        old_nodes = [
            self.host(
                f"hv-old{i}",
                WS2019,
                384,
                cluster=old.name,
                virtual_switches=["vSwitch-Prod", "vSwitch-Legacy"],
                migration_networks=["10.20.0.0/24"],
                shares=[SHARE_FQDN],  # HA VMs on the share: every node reaches it
                **cluster_paths,
            )
            for i in (1, 2)
        ]
        new_nodes = [
            self.host(
                f"hv-new{i}",
                WS2022,
                512,
                cluster=new.name,
                virtual_switches=["vSwitch-Prod", "vSwitch-DMZ"],
                migration_networks=["10.30.0.0/24"],
                shares=[SHARE_FQDN],  # HA VMs on the share: every node reaches it
                **cluster_paths,
            )
            for i in (1, 2, 3)
        ]
        standalone = {"virtual_switches": ["vSwitch-Prod", "vSwitch-DMZ"], "storage_mbps": 800.0}
        s1 = self.host("hv-s1", WS2022, 256, shares=[SHARE_FQDN, SHARE_SHORT], vm_path=SHARE_FQDN, **standalone)
        s2 = self.host("hv-s2", WS2022, 256, shares=[SHARE_FQDN, SHARE_SHORT], vm_path=SHARE_FQDN, **standalone)
        s3 = self.host(
            "hv-s3",
            WS2019,
            128,
            performance_option="tcpip",  # the one host that differs from the rest (Compression)
            vm_path=LOCAL,
            vhd_path=f"{LOCAL}\\Virtual Hard Disks",
            storage_mbps=1500.0,
        )
        s1.vhd_path = s2.vhd_path = SHARE_FQDN

        o1, o2 = old_nodes
        self.vm("erp-db01", o1, 64, CSV1, data_gib=80, dirty=240.0)
        self.vm("erp-web01", o1, 8, SHARE_FQDN)  # on the share hv-new1 also reaches: a cross-cluster Live move
        self.vm("erp-web02", o1, 8, SHARE_FQDN)
        self.vm("print01", o1, 2, CSV1)
        self.vm("legacy-fax", o1, 1, SHARE_FQDN, switches=["vSwitch-Legacy"])  # no such switch in CL-NEW: 33012
        self.vm("ts-old01", o1, 16, CSV1, state="off")
        self.vm("erp-app02", o2, 24, CSV2)
        self.vm("hr-app01", o2, 12, CSV2)
        self.vm("wsus01", o2, 4, CSV2, state="saved")
        self.vm("mon-old01", o2, 6, CSV2)

        n1, n2, n3 = new_nodes
        self.vm("sql-prod01", n1, 64, CSV1, data_gib=120, dirty=250.0)
        self.vm("web-new01", n1, 4, CSV1, switches=["vSwitch-Prod", "vSwitch-DMZ"])
        self.vm("web-new02", n1, 4, CSV1, switches=["vSwitch-Prod", "vSwitch-DMZ"])
        self.vm("api-01", n1, 8, CSV1)
        # Live-migrated from CL-OLD and not restarted since: blocked inside CL-NEW until it restarts.
        self.vm("erp-app01", n1, 16, SHARE_FQDN, version="9.0", compat_vector_stale=True)
        self.vm("sql-prod02", n2, 48, CSV2, data_gib=100, dirty=180.0)
        self.vm("cache-01", n2, 4, CSV2, dirty=700.0)  # dirties faster than a stream copies: never converges
        self.vm("jump-01", n2, 2, CSV2)
        self.vm("build-01", n2, 16, CSV2, state="off")
        self.vm("k8s-node01", n2, 16, CSV2)
        self.vm("k8s-node02", n3, 16, CSV1)
        self.vm("k8s-node03", n3, 16, CSV1)
        self.vm("log-01", n3, 12, CSV1, data_gib=60)
        self.vm("dc-new01", n3, 4, CSV1)
        self.vm("backup-new01", n3, 8, CSV2, state="saved")

        self.vm("file-s01", s1, 8, SHARE_FQDN, data_gib=40)
        self.vm("app-s01", s1, 12, SHARE_FQDN, version="9.0")
        self.vm("dev-s01", s1, 4, SHARE_FQDN, state="off")
        self.vm("web-dmz01", s1, 4, SHARE_FQDN, switches=["vSwitch-DMZ"])  # hv-s3 has no DMZ switch
        self.vm(INJECTION_NAME, s1, 4, SHARE_FQDN, version="9.0", folder_name="legacy-app")
        self.vm("app-s02", s2, 12, SHARE_SHORT, version="9.0")  # files named by the short server name
        self.vm("test-s02", s2, 2, SHARE_SHORT, state="saved")
        self.vm("web-dmz02", s2, 6, SHARE_FQDN, switches=["vSwitch-DMZ"])
        self.vm("ci-runner01", s2, 16, SHARE_FQDN)
        self.vm("analytics01", s2, 48, SHARE_FQDN, version="9.0")
        self._guest_cluster(s1, s2)

        self.vm("dc01", s3, 4, LOCAL, version="9.0")
        self.vm("dc02", s3, 4, LOCAL, version="9.0")
        self.vm("backup01", s3, 16, LOCAL, version="9.0", data_gib=24)
        self.vm("monitor01", s3, 8, LOCAL, version="9.0")
        self.vm("old-crm01", s3, 32, LOCAL, version="9.0", state="off")
        self.vm("lab-01", s3, 48, LOCAL, version="9.0")  # leaves hv-s3 40 GB: too little for analytics01

        # The usual standalone Hyper-V host: no Failover Clustering feature, so the FailoverClusters
        # cmdlets do not exist there (the other standalone hosts have the module and no cluster).
        s4 = self.host(
            "hv-s4",
            WS2022,
            128,
            failover_clustering_installed=False,
            vm_path=LOCAL,
            vhd_path=f"{LOCAL}\\Virtual Hard Disks",
            **standalone,
        )
        self.vm("ops-s401", s4, 4, LOCAL)
        self._move_blockers(o2, n1, s1, s2, s3)
        return f

    def _move_blockers(self, o2: SimHost, n1: SimHost, s1: SimHost, s2: SimHost, s3: SimHost) -> None:
        """A VM for each fact real moves fail on (hyperv.md section 9), added last so the VMs above
        keep their ids. Every host has the virtual SAN SAN-Prod: a vFC VM moves where the rule warns."""
        for host in self.fabric.hosts.values():
            host.virtual_sans = ["SAN-Prod"]
        # An ISO on the host's own disk: no other host can open it.
        self.vm("iso-s01", s1, 2, SHARE_FQDN, dvd_isos=["C:\\ISO\\WS2022-install.iso"])
        # Checkpoints in a local folder: a move inside CL-NEW leaves them behind (on hv-new1, which the
        # evacuation tests do not empty: this VM cannot leave it).
        self.vm("ckpt-new01", n1, 2, CSV1, checkpoints=2, snapshot_path="D:\\Hyper-V\\Checkpoints")
        # Smart paging on a local disk (used only while the VM restarts with less memory than it starts with).
        self.vm("page-s02", s2, 2, SHARE_FQDN, smart_paging_path="D:\\SmartPaging")
        # A physical disk passed through: movable only inside its cluster.
        self.vm("sqlpt-old01", o2, 4, CSV2, passthrough_disks=[3])
        # Virtual Fibre Channel to the SAN-Prod fabric.
        self.vm("tape-new01", n1, 2, CSV1, fc_sans=["SAN-Prod"])
        # Hyper-V Replica: a primary on hv-s2 replicating to hv-s3, and the replica of a VM of hv-s1 on hv-s3.
        self.vm(
            "crm-s02", s2, 4, SHARE_FQDN, replication_mode="primary", primary_server=s2.fqdn, replica_server=s3.fqdn
        )
        self.vm(
            "erp-dr01",
            s3,
            4,
            LOCAL,
            version="9.0",
            state="off",
            replication_mode="replica",
            primary_server=s1.fqdn,
            replica_server=s3.fqdn,
        )
        # Possible owners restricted to two of CL-NEW's three nodes.
        self.vm("lic-new01", n1, 2, CSV1, possible_owners=["hv-new1", "hv-new2"])

    def _guest_cluster(self, a: SimHost, b: SimHost) -> None:
        """Two SQL failover-cluster VMs sharing one VHDX: their storage cannot be moved live."""
        first = self.vm("sql-fc1", a, 32, SHARE_FQDN, dirty=150.0)
        second = self.vm("sql-fc2", b, 32, SHARE_FQDN, dirty=150.0)
        path = join_path(SHARE_FQDN, "sql-fc\\sql-fc-shared.vhdx")
        for vm in (first, second):
            vm.disks.append(SimDisk(path, 100 * GIB, shared=True, attached=[first.id, second.id]))


MEMORY_CHOICES_GIB = (1, 2, 2, 4, 4, 4, 8, 8, 8, 12, 16, 16, 24, 32, 48, 64)


def _generated(seed: int, host_count: int, vm_count: int) -> Fabric:
    """host_count hosts (half of them in 4-node clusters) and vm_count VMs spread evenly over them."""
    rng = random.Random(seed)
    fabric = Fabric(seed, demo_tuning())
    shares = [f"\\\\fs{i:02d}.{DOMAIN}\\vms" for i in (1, 2)]
    for unc in shares:
        server = unc[2:].split("\\")[0]
        fabric.add_share(SimShare(unc, server, server))
    clustered = (host_count // 2) // 4 * 4
    plans: list[list[tuple[str, int]]] = [[] for _ in range(host_count)]
    for i in range(vm_count):
        plans[i % host_count].append((f"vm{i:05d}", rng.choice(MEMORY_CHOICES_GIB)))
    for h in range(host_count):
        name = f"hv{h:03d}"
        cluster = ""
        if h < clustered:
            cluster = f"CL{h // 4:02d}"
            if h % 4 == 0:
                fabric.add_cluster(SimCluster(cluster, f"{cluster.lower()}.{DOMAIN}", 11, 1 + h // 4 % 2))
        need = sum(mem for _, mem in plans[h]) * GIB
        total = max(256 * GIB, (int(need * 1.3) // (64 * GIB) + 1) * 64 * GIB)
        fabric.add_host(
            SimHost(
                fqdn=f"{name}.{DOMAIN}",
                name=name,
                address=address(h),
                cluster=cluster,
                os_version=WS2022[0],
                supported_config_versions=list(WS2022[1]),
                memory_total_bytes=total,
                memory_available_bytes=total - HOST_RESERVE,
                processor_family=CPU,
                cpu_load_percent=rng.randint(5, 60),
                shares=list(shares),
                vm_path=f"{CSV1}\\VMs" if cluster else shares[h % 2],
            )
        )
        for vm_name, mem in plans[h]:
            folder = join_path(CSV1 if cluster else shares[h % 2], vm_name)
            fabric.add_vm(
                SimVm(
                    id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    name=vm_name,
                    host=f"{name}.{DOMAIN}",
                    state="running" if rng.random() < 0.85 else "off",
                    memory_bytes=mem * GIB,
                    config_path=folder,
                    is_clustered=bool(cluster),
                    switch_names=["vSwitch-Prod"],
                    dirty_rate_mbps=round(rng.uniform(1, 150), 1),
                    processor_count=vcpus_for(mem),
                    disks=[SimDisk(join_path(folder, "os.vhdx"), rng.randint(12, 60) * GIB)],
                )
            )
    return fabric
