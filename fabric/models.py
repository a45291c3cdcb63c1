"""Inventory of the Hyper-V fabric as last synced from the hosts (see fabric.sync).

Field names follow what the pre-flight rules of hyperv.md need; values come from Get-VMHost,
Get-VM, Get-VMHardDiskDrive, Get-Cluster and the hosts' SMB connections.
"""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class PerformanceOption(models.TextChoices):
    TCPIP = "tcpip", "TCP/IP"
    COMPRESSION = "compression", _("Compression")
    SMB = "smb", "SMB"


class AuthType(models.TextChoices):
    KERBEROS = "kerberos", "Kerberos"
    CREDSSP = "credssp", "CredSSP"


class Delegation(models.TextChoices):
    """Kerberos constrained delegation of the host's computer account, as an administrator recorded it:
    it lives in Active Directory, not on the host, so the console cannot read it (hyperv.md section 9)."""

    UNKNOWN = "unknown", _("Unknown")
    CONFIGURED = "configured", _("Configured")
    MISSING = "missing", _("Missing")


class Transport(models.TextChoices):
    HTTPS = "https", "HTTPS (5986)"
    HTTP = "http", "HTTP (5985)"


class VmState(models.TextChoices):
    RUNNING = "running", _("Running")
    OFF = "off", _("Off")
    SAVED = "saved", _("Saved")
    PAUSED = "paused", _("Paused")
    STARTING = "starting", _("Starting")
    STOPPING = "stopping", _("Stopping")
    OTHER = "other", _("Other")


class VhdType(models.TextChoices):
    # Get-VHD VhdType, named as Hyper-V Manager names them; a value not listed shows as sent.
    FIXED = "Fixed", _("Fixed size")
    DYNAMIC = "Dynamic", _("Dynamically expanding")
    DIFFERENCING = "Differencing", _("Differencing")


class Cluster(models.Model):
    name = models.CharField(max_length=63)
    fqdn = models.CharField(max_length=255, unique=True)
    functional_level = models.PositiveSmallIntegerField(help_text="ClusterFunctionalLevel: 9 = 2016, 10 = 2019 ...")
    # None: the cluster has no such property (before WS2022 with the September 2022 update): no cluster cap.
    max_parallel_migrations = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Cluster MaximumParallelMigrations; wins over the nodes' own limit"
    )
    last_sync = models.DateTimeField(null=True, blank=True)
    # Written by migrations_ui.planning.readiness: {"n_plus_one": bool, "nodes": {fqdn: host readiness}, "at"}.
    readiness = models.JSONField(null=True, blank=True, help_text="Could any one node be emptied into the others")
    # Move timeouts of the cluster's nodes (console state, not Hyper-V's): None = the console's default.
    move_stall_timeout_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cancel a move without progress for this long (s); 0: never; empty: default"
    )
    move_timeout_s_per_gib = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cancel a move running longer than this per GiB (s); 0: never; empty: default"
    )
    move_timeout_retry_compression = models.BooleanField(
        null=True, blank=True, help_text="After a completion timeout, start the move once more with Compression"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("fabric:cluster", args=[self.name])


class HostQuerySet(models.QuerySet):
    def read(self):
        """Hosts a sync has read at least once: the others hold the model's defaults, no figures."""
        return self.filter(last_sync__isnull=False)


class Host(models.Model):
    # Identity is the FQDN; name is the short name shown in lists.
    fqdn = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=63)
    address = models.CharField(max_length=255, help_text="Where WinRM answers: IP or DNS name")
    port = models.PositiveIntegerField(default=5986)
    transport = models.CharField(max_length=8, choices=Transport.choices, default=Transport.HTTPS)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="nodes")

    os_version = models.CharField(max_length=64, blank=True)
    supported_config_versions = models.JSONField(default=list, blank=True)
    memory_total_bytes = models.BigIntegerField(default=0)
    memory_available_bytes = models.BigIntegerField(default=0)
    processor_family = models.CharField(max_length=64, blank=True)
    logical_processors = models.PositiveSmallIntegerField(default=0)
    cpu_load_percent = models.PositiveSmallIntegerField(default=0)
    nic_gbps = models.FloatField(default=10.0, help_text="Bandwidth of the live-migration network")

    migration_enabled = models.BooleanField(default=False)
    max_live_migrations = models.PositiveSmallIntegerField(default=2)
    max_storage_migrations = models.PositiveSmallIntegerField(default=2)
    performance_option = models.CharField(
        max_length=16, choices=PerformanceOption.choices, default=PerformanceOption.COMPRESSION
    )
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.CREDSSP)
    # Recorded by an administrator (or set to missing when a move fails with 0x8009030E): not read from the host.
    kerberos_delegation = models.CharField(max_length=16, choices=Delegation.choices, default=Delegation.UNKNOWN)
    use_any_network = models.BooleanField(default=False)
    migration_networks = models.JSONField(default=list, blank=True, help_text="Subnets, by priority")
    virtual_switches = models.JSONField(default=list, blank=True)
    vm_path = models.CharField(max_length=260, blank=True, help_text="Default folder for VM files")
    vhd_path = models.CharField(max_length=260, blank=True, help_text="Default folder for virtual disks")

    reachable = models.BooleanField(default=False)
    # Console state, not Hyper-V's: a paused queue starts no job touching the host; maintenance marks
    # a host being evacuated (cleared by Move back).
    queue_paused = models.BooleanField(default=False, help_text="Queued jobs touching this host wait")
    maintenance = models.BooleanField(default=False, help_text="Evacuated for maintenance by the console")
    last_sync = models.DateTimeField(null=True, blank=True)
    # Written by migrations_ui.planning.readiness: {"ready", "moves", "estimate_s", "blockers": [...], "at"}.
    readiness = models.JSONField(null=True, blank=True, help_text="Could it be emptied now, and how long it would take")
    last_error = models.TextField(blank=True)
    # Move timeouts of moves out of this host (console state): None = its cluster's, else the default.
    move_stall_timeout_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cancel a move without progress for this long (s); 0: never; empty: inherit"
    )
    move_timeout_s_per_gib = models.PositiveIntegerField(
        null=True, blank=True, help_text="Cancel a move running longer than this per GiB (s); 0: never; empty: inherit"
    )
    move_timeout_retry_compression = models.BooleanField(
        null=True, blank=True, help_text="After a completion timeout, start the move once more with Compression"
    )

    objects = HostQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_hosts", "Can add and remove hosts and their credentials"),
            ("change_host_settings", "Can change hosts' and clusters' live-migration settings"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("fabric:host", args=[self.fqdn])

    @property
    def effective_max_live_migrations(self) -> int:
        """On a cluster node, the cluster's MaximumParallelMigrations wins (hyperv.md section 3)."""
        if self.cluster_id is not None and self.cluster.max_parallel_migrations is not None:
            return self.cluster.max_parallel_migrations
        return self.max_live_migrations


class SmbShare(models.Model):
    unc_path = models.CharField(max_length=260, unique=True, help_text="As registered, e.g. \\\\fs01.contoso.com\\vms")
    file_server = models.CharField(max_length=255, help_text="Server part of the path as registered")
    file_server_fqdn = models.CharField(max_length=255, blank=True, help_text="The file server's FQDN when known")
    hosts = models.ManyToManyField(Host, related_name="shares", blank=True)

    class Meta:
        ordering = ["unc_path"]
        verbose_name = "SMB 3.0 share"

    def __str__(self):
        return self.unc_path

    def get_absolute_url(self):
        return reverse("fabric:share", args=[self.pk])


class VirtualMachine(models.Model):
    guid = models.UUIDField(unique=True)
    name = models.CharField(max_length=255)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="vms")
    state = models.CharField(max_length=16, choices=VmState.choices, default=VmState.OFF)
    memory_assigned_bytes = models.BigIntegerField(default=0)
    config_version = models.CharField(max_length=8, blank=True)
    config_path = models.CharField(max_length=260, blank=True)
    share = models.ForeignKey(SmbShare, null=True, blank=True, on_delete=models.SET_NULL, related_name="vms")
    is_clustered = models.BooleanField(default=False, help_text="Highly available: a role of its host's cluster")
    compat_vector_stale = models.BooleanField(
        default=False, help_text="Came from an older cluster version and has not restarted since"
    )
    processor_compatibility = models.BooleanField(
        default=False, help_text="Processor compatibility mode for migration (CompatibilityForMigrationEnabled)"
    )
    processor_count = models.PositiveSmallIntegerField(default=0, help_text="Virtual processors; 0 when not read")
    switch_names = models.JSONField(default=list, blank=True, help_text="Switch of each connected adapter")
    dirty_rate_mbps = models.FloatField(default=0, help_text="Memory dirty rate (MB/s), a simulator figure")
    migrating = models.BooleanField(default=False, help_text="A migration of this VM was running at the last sync")
    # What real moves fail on (hyperv.md section 9), as the host reported it at the last sync.
    dvd_isos = models.JSONField(default=list, blank=True, help_text="ISO files in its DVD drives (Get-VMDvdDrive)")
    checkpoints = models.PositiveIntegerField(default=0, help_text="Checkpoints (Get-VMSnapshot)")
    snapshot_path = models.CharField(max_length=260, blank=True, help_text="Checkpoint file location")
    smart_paging_path = models.CharField(max_length=260, blank=True, help_text="Smart paging file location")
    passthrough_disks = models.JSONField(default=list, blank=True, help_text="Disk numbers of pass-through disks")
    fc_sans = models.JSONField(default=list, blank=True, help_text="Virtual SAN of each virtual Fibre Channel adapter")
    replication_mode = models.CharField(max_length=16, blank=True, help_text="Hyper-V Replica: primary, replica ...")
    replication_primary = models.CharField(max_length=255, blank=True, help_text="Hyper-V Replica primary server")
    replication_replica = models.CharField(max_length=255, blank=True, help_text="Replica server or Replica Broker")
    possible_owners = models.JSONField(
        default=list, blank=True, help_text="Cluster nodes that may own its role; empty when not known"
    )
    maintenance_choice = models.CharField(
        max_length=16, blank=True, help_text="What a maintenance did with it last (pre-maintenance report): its default"
    )
    removed = models.BooleanField(default=False, help_text="Gone from Hyper-V at the last sync")
    last_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["removed", "name"]),
            models.Index(fields=["removed", "state", "name"]),
            models.Index(fields=["host", "removed"]),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("fabric:vm", args=[self.guid])


class VirtualDisk(models.Model):
    # Lower-cased path for a disk on a share; "<host fqdn>|<path>" for a host's local disk.
    key = models.CharField(max_length=600, unique=True)
    path = models.CharField(max_length=260)
    size_bytes = models.BigIntegerField(default=0)
    shared = models.BooleanField(default=False, help_text="SupportPersistentReservations: a shared VHDX")
    vhd_type = models.CharField(max_length=16, blank=True, choices=VhdType.choices, help_text="Get-VHD VhdType")
    max_size_bytes = models.BigIntegerField(default=0, help_text="The disk's size as the guest sees it (Get-VHD Size)")
    share = models.ForeignKey(SmbShare, null=True, blank=True, on_delete=models.SET_NULL, related_name="disks")
    vms = models.ManyToManyField(VirtualMachine, related_name="disks", blank=True)

    class Meta:
        ordering = ["path"]

    def __str__(self):
        return self.path


class StorageLocation(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="storage_locations")
    path = models.CharField(max_length=260)
    is_default = models.BooleanField(default=False, help_text="The host's own default VM or VHD folder")
    added_by_user = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_default", "path"]
        constraints = [models.UniqueConstraint(fields=["host", "path"], name="unique_storage_location")]

    def __str__(self):
        return self.path


from fabric.credentials import HostCredential  # noqa: E402, F401 - WinRM credentials live in their own module
