"""Migration jobs and their event log.

A job's lifecycle is explicit: queued -> admitted (it holds its hosts' slots, a worker is about to
take it) -> running -> succeeded | failed | cancelled (cancelling in between while the host stops a
running move). Every state change and progress sample is written
as a JobEvent row before it is announced to browsers.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from fabric.models import Host, PerformanceOption, VirtualMachine


class TransferType(models.TextChoices):
    LIVE = "live", "Live"
    LIVE_VSM = "live_vsm", "Live (VSM)"
    STORAGE = "storage", _("Storage")
    QUICK = "quick", _("Quick")
    NETWORK = "network", _("Network")


class JobState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    ADMITTED = "admitted", pgettext_lazy("job state", "Starting")
    RUNNING = "running", pgettext_lazy("job state", "Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLING = "cancelling", _("Cancelling")
    CANCELLED = "cancelled", _("Cancelled")
    # The host stopped answering while the move may have been under way: the console does not know
    # how it ended. The job keeps its slots until the host answers (recovery asks it) or an operator
    # decides (jobs.decide_unknown).
    UNKNOWN = "unknown", pgettext_lazy("job state", "Unknown")


ACTIVE_STATES = (JobState.QUEUED, JobState.ADMITTED, JobState.RUNNING, JobState.CANCELLING, JobState.UNKNOWN)
# Hold their hosts' slots (until the host reports the move ended: slots_released_at).
SLOT_STATES = (JobState.ADMITTED, JobState.RUNNING, JobState.CANCELLING, JobState.UNKNOWN)
FINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class BatchKind(models.TextChoices):
    EVACUATION = "evacuation", _("Evacuation")
    SELECTION = "selection", _("Selection")
    MOVE_BACK = "move_back", _("Move back")
    # The cluster moves a node's roles itself (Suspend-ClusterNode -Drain); the console follows it.
    DRAIN = "drain", _("Cluster drain")


class Batch(models.Model):
    """Jobs started together (an evacuation, a selection, a move back) with the plan they follow."""

    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=BatchKind.choices)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.PROTECT, related_name="batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    plan = models.JSONField(default=dict, blank=True, help_text="The plan as started (see migrations_ui.jobs.batches)")
    created_at = models.DateTimeField(auto_now_add=True)
    deadline = models.DateTimeField(
        null=True, blank=True, help_text="Its maintenance window's deadline: moves not started by then are not started"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("migrations_ui:batch", args=[self.pk])

    @property
    def title(self) -> str:
        """The name in the reader's language. The console names evacuations and move backs itself
        (`name` keeps that English name: the API and the audit trail show it); a selection keeps the
        name an operator gave it."""
        if self.host is not None and self.name == f"Evacuate {self.host.name}":
            return gettext("Evacuate %(name)s") % {"name": self.host.name}
        if self.host is not None and self.name == f"Drain {self.host.name}":
            return gettext("Drain %(name)s") % {"name": self.host.name}
        if self.host is not None and self.name == f"Move back to {self.host.name}":
            return gettext("Move back to %(name)s") % {"name": self.host.name}
        return self.name


class WindowState(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    STARTED = "started", _("Started")
    CANCELLED = "cancelled", _("Cancelled")
    REFUSED = "refused", _("Not started")


class MaintenanceWindow(models.Model):
    """An evacuation, a selection or a move back to start at a set time, with an optional deadline.

    Kept in the database, so it survives restarts: the workers' supervisor starts it when due
    (jobs.windows) and the batch it starts carries the deadline. Until it starts it can be edited or
    cancelled; the plan is made when it starts, from the inventory of that moment."""

    kind = models.CharField(max_length=16, choices=BatchKind.choices)
    name = models.CharField(max_length=255)
    host = models.ForeignKey(
        Host, null=True, blank=True, on_delete=models.PROTECT, related_name="windows", help_text="The host to evacuate"
    )
    vm_ids = models.JSONField(default=list, blank=True, help_text="A selection's VM GUIDs")
    destination = models.ForeignKey(
        Host, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="A selection's destination"
    )
    evacuation = models.ForeignKey(
        "Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="What a move back undoes"
    )
    move_stopped = models.BooleanField(default=False)
    starts_at = models.DateTimeField()
    deadline = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=WindowState.choices, default=WindowState.SCHEDULED)
    outcome = models.JSONField(default=dict, blank=True, help_text="Why it did not start: reason, i18n")
    batch = models.ForeignKey("Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="windows")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [models.Index(fields=["state", "starts_at"])]

    def __str__(self):
        return self.name


class MigrationJob(models.Model):
    kind = models.CharField(max_length=16, choices=TransferType.choices)
    vm = models.ForeignKey(VirtualMachine, on_delete=models.PROTECT, related_name="jobs")
    vm_name = models.CharField(max_length=255, help_text="The VM's name when the job was created")
    # The history page charts durations against it, and the planner's measured rates need it.
    memory_bytes = models.BigIntegerField(default=0, help_text="The VM's assigned memory when the job was created")
    source = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="outgoing_jobs")
    destination = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="incoming_jobs")
    storage_path = models.CharField(max_length=300, blank=True, help_text="One destination for all files")
    vhds = models.JSONField(default=list, blank=True, help_text="Selected VHDs: [[source, destination], ...]")
    add_default_location = models.BooleanField(default=False)
    performance_option = models.CharField(
        max_length=16, choices=PerformanceOption.choices, blank=True, help_text="Empty: the host's own setting"
    )
    findings = models.JSONField(default=list, blank=True, help_text="Pre-flight findings when the job was created")
    priority = models.SmallIntegerField(default=0)
    # Set when an operator reorders the queue (scheduler.queue_order); new jobs (null) queue after them.
    queue_key = models.IntegerField(null=True, blank=True)
    # A batch's plan may hold a move back so that it does not share a disk or link with another at
    # the start (planning.ordering.hold_back): until then the admission neither starts it nor keeps
    # its slots for it.
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Its batch's plan holds the job in the queue until then"
    )
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)

    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    percent = models.PositiveSmallIntegerField(default=0)
    bytes_sent = models.BigIntegerField(default=0)
    bytes_remaining = models.BigIntegerField(default=0)
    pass_number = models.PositiveSmallIntegerField(default=0)
    dirty_rate_mbps = models.FloatField(default=0)
    transfer_rate_mbps = models.FloatField(default=0)
    blackout_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    error_remedy = models.TextField(blank=True)
    step = models.CharField(max_length=32, blank=True, help_text="The step running now (see runner.STEPS)")
    ha_removed = models.BooleanField(default=False, help_text="The VM's cluster role was removed for this move")
    move_requested_at = models.DateTimeField(null=True, blank=True, help_text="When Move-VM was sent to the host")
    host_migration_id = models.CharField(max_length=64, blank=True, help_text="The host's migration job id")
    # The pre-maintenance report's choice for a VM that cannot move live: saved or shut down on the
    # source before an offline move, and started again on the destination (runner: power_off, start).
    power = models.CharField(
        max_length=16,
        choices=[("save", "Save-VM"), ("shut_down", "Stop-VM")],
        blank=True,
        help_text="Saved or shut down before its offline move, started after it",
    )
    powered_off = models.BooleanField(default=False, help_text="The power step is done: the VM is off or saved")
    powered_on = models.BooleanField(default=False, help_text="The VM was started again on the destination")
    # The move ended on the host (the VM runs on the destination): the job no longer holds its hosts'
    # slots (scheduler.slots_in_use), so the next job starts while this one verifies and refreshes.
    slots_released_at = models.DateTimeField(
        null=True, blank=True, help_text="When the move ended on the host and the job gave its hosts' slots back"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=64, blank=True)
    # The fencing token: every claim of the job (a worker starting it, the supervisor handing it to
    # recovery, an operator's decision) adds one, and every write of the job requires the value its
    # writer read (events.save_fields). A worker whose lease was taken writes nothing more.
    lease = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("start_migration", "Can start and cancel migrations and storage moves"),
            ("evacuate_host", "Can plan and run host evacuations"),
        ]
        indexes = [models.Index(fields=["state", "priority", "created_at"])]
        constraints = [
            # One active move per VM, enforced by the database across processes.
            models.UniqueConstraint(
                fields=["vm"], condition=models.Q(state__in=ACTIVE_STATES), name="one_active_job_per_vm"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} migration of {self.vm_name} #{self.pk}"

    def get_absolute_url(self):
        return reverse("migrations_ui:job", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class JobEvent(models.Model):
    job = models.ForeignKey(MigrationJob, on_delete=models.CASCADE, related_name="events")
    sequence = models.PositiveIntegerField()
    time = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["job", "sequence"]
        constraints = [models.UniqueConstraint(fields=["job", "sequence"], name="unique_job_event_sequence")]

    def __str__(self):
        return f"{self.job_id}#{self.sequence} {self.kind}"


class ProcessKind(models.TextChoices):
    WORKER = "worker", _("Job worker")
    WEB = "web", _("Web server")


class ProcessBeat(models.Model):
    """One row per running console process (a job worker, a web server serving websockets), rewritten
    every few seconds (migrations_ui.beats): the metrics read workers' heartbeats and the websocket
    clients of every process from here, whichever process answers the scrape."""

    kind = models.CharField(max_length=8, choices=ProcessKind.choices)
    name = models.CharField(max_length=128, unique=True, help_text="host:pid")
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    websocket_clients = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["kind", "beat_at"])]

    def __str__(self):
        return f"{self.kind} {self.name}"
