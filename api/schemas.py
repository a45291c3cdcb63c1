"""Request and response shapes. The preflight, plan and job shapes are the project's stable JSON
(architecture.md): the endpoints return what migrations_ui's serializers produce, these schemas only
describe it for OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field, StrictBool, StringConstraints

from migrations_ui.models import JobState
from notifications.models import EventKind

# JSON bodies are strict about booleans (0 is not false); query strings are text, read leniently.
# Bounded so no value overflows a database integer; text without NUL (PostgreSQL refuses it).
MAX_ID = 2**53
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Cursor = Annotated[int, Field(ge=0, le=MAX_ID)]
Text = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00]*$")]
PathText = Annotated[str, StringConstraints(max_length=400, pattern=r"^[^\x00]*$")]
Limit = Annotated[int, Field(ge=1, le=200)]
TransferType = Literal["live", "live_vsm", "storage", "quick", "network"]


class Page(Schema):
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page")


# --- inventory ---------------------------------------------------------------------------------------


class BlockerOut(Schema):
    vm: str
    vm_id: str
    reason: str


class ReadinessOut(Schema):
    """Could the host be emptied now (every running VM moved live), as Evacuate would plan it."""

    ready: bool
    moves: int
    estimate_s: float = Field(description="The planner's estimate of the evacuation, wall-clock seconds")
    blockers: list[BlockerOut] = Field(description="Running VMs no host can take live now, and why")
    at: datetime = Field(description="When it was assessed (after each sync and each finished move)")


class ClusterReadinessOut(Schema):
    n_plus_one: bool = Field(description="Every node could be emptied into the cluster's other nodes now")
    nodes: dict[str, ReadinessOut] = Field(description="Per node FQDN: emptied into the other nodes only")
    at: datetime


class ClusterOut(Schema):
    name: str
    fqdn: str
    functional_level: int
    max_parallel_migrations: int | None  # None: no such cluster property (WS2016/2019), no cluster cap
    nodes: list[str]
    last_sync: datetime | None
    readiness: ClusterReadinessOut | None = Field(description="None until the workers first assess it")


class ClusterPage(Page):
    items: list[ClusterOut]


class HostOut(Schema):
    fqdn: str
    name: str
    cluster: str | None
    os_version: str
    reachable: bool
    last_error: str
    last_sync: datetime | None
    maintenance: bool
    queue_paused: bool
    memory_total_bytes: int
    memory_available_bytes: int
    logical_processors: int
    cpu_load_percent: int
    processor_family: str
    migration_enabled: bool
    max_live_migrations: int
    effective_max_live_migrations: int
    max_storage_migrations: int
    performance_option: str
    auth_type: str
    use_any_network: bool
    migration_networks: list[Any]
    virtual_switches: list[Any]
    vm_path: str
    vhd_path: str
    readiness: ReadinessOut | None = Field(description="None until assessed, and while the host does not answer")


class HostPage(Page):
    items: list[HostOut]


class ShareOut(Schema):
    id: int
    unc_path: str
    file_server: str
    file_server_fqdn: str
    hosts: list[str]


class SharePage(Page):
    items: list[ShareOut]


class DiskOut(Schema):
    path: str
    size_bytes: int = Field(description="The file's size (Get-VHD FileSize): what a storage move copies")
    shared: bool
    vhd_type: str = Field(description="Fixed, Dynamic or Differencing; empty when not read")
    max_size_bytes: int = Field(description="The disk's size as the guest sees it (Get-VHD Size); 0 when not read")


class VmOut(Schema):
    id: str
    name: str
    host: str
    cluster: str | None
    state: str
    memory_assigned_bytes: int
    config_version: str
    is_clustered: bool
    migrating: bool
    removed: bool
    share: str | None
    last_seen: datetime | None


class VmDetailOut(VmOut):
    config_path: str
    switch_names: list[Any]
    processor_compatibility: bool
    processor_count: int = Field(description="Virtual processors; 0 when not read")
    compat_vector_stale: bool
    disks: list[DiskOut]


class VmPage(Page):
    items: list[VmOut]


# --- preflight and jobs ------------------------------------------------------------------------------


class FindingOut(Schema):
    rule: str
    severity: Literal["block", "warn", "info"]
    message: str
    remedy: str


class PreflightOut(Schema):
    vm: str
    destination: str
    transfer_type: TransferType | None
    allowed: bool
    rating: float
    findings: list[FindingOut]


class VhdIn(Schema):
    source: PathText
    destination: PathText


class MigrationIn(Schema):
    vm: Text = Field(description="VM name or GUID", examples=["api-01"])
    to: Text | None = Field(
        None,
        description="Destination host (FQDN or name); omitted: a storage move on the VM's host",
        examples=["hv-new2.contoso.test"],
    )
    storage_path: PathText = Field("", description="One folder for all the VM's files (Live VSM, storage move)")
    vhds: list[VhdIn] = Field([], max_length=64, description="Storage move of selected disks: source -> destination")
    performance_option: Literal["tcpip", "compression", "smb"] | None = None
    add_default_location: StrictBool = Field(False, description="Add storage_path to the host's storage locations")
    transfer_type: TransferType | None = Field(
        None, description="The kind of move expected: refused (409) when pre-flight finds another kind"
    )


class JobErrorOut(Schema):
    code: str
    message: str
    remedy: str


class JobOut(Schema):
    id: int
    vm: str
    vm_id: str
    transfer_type: str
    source: str
    destination: str
    storage_path: str
    vhds: list[Any]
    performance_option: str | None
    # unknown: the host stopped answering after the move was sent (POST .../ask-again or .../decide).
    state: JobState
    step: str | None
    percent: int
    bytes_sent: int
    bytes_remaining: int
    pass_number: int
    transfer_rate_mbps: float
    dirty_rate_mbps: float
    blackout_ms: int | None
    error: JobErrorOut | None
    findings: list[FindingOut]
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobPage(Page):
    items: list[JobOut]


class EventOut(Schema):
    id: int
    job: int
    sequence: int
    time: datetime
    kind: str
    data: dict[str, Any]


class EventPage(Schema):
    items: list[EventOut]
    cursor: int = Field(description="The last event's id (or the one given): pass as ?after= to get only newer events")


# --- plans and batches -------------------------------------------------------------------------------


class PlannedMoveOut(Schema):
    vm: str
    destination: str
    transfer_type: str
    start_s: float
    end_s: float


class LeftOut(Schema):
    vm: str
    reason: str


class LinkCapOut(Schema):
    host: str
    limit: int = Field(description="The host's live-migration limit")
    cap: int = Field(description="Moves at once the plan runs on the host: more would end no sooner")
    nic_gbps: float


class PlanOut(Schema):
    host: str | None
    moves: list[PlannedMoveOut]
    left: list[LeftOut]
    makespan_s: float
    lower_bound_s: float
    link_caps: list[LinkCapOut] = Field(
        default_factory=list, description="Hosts whose link, not their live-migration limit, is the bottleneck"
    )


class SelectionIn(Schema):
    vms: list[Text] = Field(description="VM GUIDs", max_length=500)
    to: Text | None = Field(None, description="One destination host (FQDN); omitted: the console places each VM")
    move_stopped: StrictBool = False
    name: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] = ""


class EvacuationIn(Schema):
    host: Text = Field(description="The host to evacuate (FQDN or name)", examples=["hv-s1.contoso.test"])
    move_stopped: StrictBool = Field(False, description="Copy stopped and saved VMs offline too")
    choices: dict[Text, Text] = Field(
        default_factory=dict,
        description="What happens to a VM of the pre-maintenance report (by VM name or GUID): save_move, "
        "shut_down_move, shut_down_stay, leave_running; move_offline or stay for an off or saved VM. A VM "
        "not named gets its kept default; a VM left running keeps the host out of maintenance.",
        examples=[{"iso-s01": "shut_down_stay"}],
        max_length=500,
    )


class ReportFindingOut(Schema):
    rule: str
    severity: str
    message: str
    remedy: str


class ReportVmOut(Schema):
    vm: str
    vm_id: str
    state: str
    findings: list[ReportFindingOut]
    choices: list[str] = Field(description="What may happen to it now")
    unavailable: dict[str, str] = Field(description="The other choices of its state, with why not")
    default: str = Field(description="What an evacuation does with it when nobody chooses")
    default_kept: bool = Field(description="The default is the choice made at its last maintenance")
    destinations: dict[str, str] = Field(description="Where each move choice would take it")


class ReportOut(Schema):
    host: str
    vms: list[ReportVmOut] = Field(description="The VMs that cannot move live")
    live_moves: int


class RefusedMoveOut(Schema):
    vm: str
    vm_id: str
    reason: str


class BatchOut(Schema):
    id: int
    name: str
    kind: Literal["evacuation", "selection", "move_back"]
    host: str | None
    created_by: str | None
    created_at: datetime
    plan: PlanOut
    refused: list[RefusedMoveOut]
    jobs: list[JobOut]
    counts: dict[str, int]
    percent: int
    finished: bool
    # The plan's clock, unchanged: the pages show wall-clock seconds, the API keeps these keys' unit.
    makespan_s: float = Field(description="The plan's estimate, in the fabric's seconds (as the plan's start_s, end_s)")
    actual_s: float | None = Field(description="The run's length once it ended, in the fabric's seconds")


class BatchSummaryOut(Schema):
    id: int
    name: str
    kind: str
    host: str | None
    created_at: datetime


class BatchPage(Page):
    items: list[BatchSummaryOut]


class MoveBackOut(Schema):
    message: str
    batch: BatchOut | None


class EndMaintenanceOut(Schema):
    message: str
    host: HostOut


# --- audit ---------------------------------------------------------------------------------------------


class AuditOut(Schema):
    id: int
    time: datetime
    username: str
    role: str
    action: str
    target_type: str
    target_id: str
    target_name: str
    outcome: str
    source_ip: str | None
    request_id: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Page):
    items: list[AuditOut]


# --- notifications -------------------------------------------------------------------------------------
# Input is checked by the pages' forms (notifications.forms): the same rules and messages. A secret is
# write-only: accepted here, never in any answer (secret_set says whether one is stored).

# Text a form judges (lengths included); no NUL, no lone surrogate (a database cannot store one).
FormText = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]
Secret = Annotated[
    FormText,
    Field(
        description="The HMAC-SHA256 key (at least 16 characters); stored encrypted, never returned",
        json_schema_extra={"format": "password", "writeOnly": True},
    ),
]


class WebhookIn(Schema):
    name: FormText = Field(description="Unique, at most 100 characters")
    url: FormText = Field(description="http:// or https://; the console POSTs signed JSON to it")
    kinds: list[EventKind] = Field([], description="The events it receives")
    secret: Secret
    enabled: StrictBool = True


class WebhookChangeIn(Schema):
    """Only the fields given change; an omitted (or empty) secret keeps the stored one."""

    name: FormText | None = None
    url: FormText | None = None
    kinds: list[EventKind] | None = None
    secret: Secret | None = None
    enabled: StrictBool | None = None


class WebhookOut(Schema):
    id: int
    name: str
    url: str
    kinds: list[str]
    enabled: bool
    secret_set: bool = Field(description="A signing secret is stored (it is never returned)")
    created_at: datetime
    updated_at: datetime


class WebhookPage(Page):
    items: list[WebhookOut]


class DeliveryOut(Schema):
    id: int
    kind: str = Field(description="The event's kind (ping: an administrator's test)")
    event: int = Field(description="The event's id")
    state: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status: int | None = Field(description="HTTP status of the last answer; null if none came")
    last_answer: str = Field(description="The last answer's first KB, or the error")
    next_attempt_at: datetime | None = Field(description="When it is tried again (pending only)")
    created_at: datetime
    updated_at: datetime


class SubscriptionIn(Schema):
    kinds: list[EventKind] = Field(description="The events you are told of; [] for none")
    email: StrictBool = Field(description="By e-mail, to your account's address")


class SubscriptionOut(Schema):
    kinds: list[str]
    email: bool
    email_enabled: bool = Field(description="The console can send e-mail (EMAIL_HOST is set)")
    address: str = Field(description="Your account's e-mail address; empty if it has none")
