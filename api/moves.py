"""Pre-flight and migration jobs, through the wizards' domain code: Preflight for the findings,
create_job (which runs pre-flight again and records the job and its audit row) and cancel_job."""

from __future__ import annotations

from typing import Literal

from django.http import Http404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from access import Perm, check
from api.errors import ERRORS, ApiError, bad_input
from api.pagination import keyset
from api.schemas import (
    Cursor,
    EventPage,
    Id,
    JobOut,
    JobPage,
    Limit,
    MigrationIn,
    PathText,
    PreflightOut,
    Text,
)
from fabric.hyperv.host_values import renamed_vhd
from migrations_ui.jobs.operations import cancel_job, create_job, decide_unknown
from migrations_ui.jobs.supervisor import ask_hosts_again
from migrations_ui.lookup import NotFound, find_host, find_vm
from migrations_ui.models import JobEvent, JobState, MigrationJob
from migrations_ui.preflight.assess import Preflight, vm_for_preflight
from migrations_ui.preflight.paths import path_problem
from migrations_ui.serializers import job_json

router = Router(tags=["migrations"])


def _vm(text: str, field: str = "vm"):
    try:
        return find_vm(text, vm_for_preflight())
    except NotFound as exc:
        raise bad_input(field, str(exc).capitalize() + ".") from None


def _host(text: str, field: str = "to"):
    try:
        return find_host(text)
    except NotFound as exc:
        raise bad_input(field, str(exc).capitalize() + ".") from None


def _path(value: str, field: str) -> None:
    if value and (problem := path_problem(value)):
        raise bad_input(field, problem)


class PreflightQuery(Schema):
    vm: Text = Field(description="VM name or GUID")
    to: Text = Field(description="Destination host (FQDN or name)")
    storage_path: PathText = ""


@router.get("/preflight", response={200: PreflightOut, **ERRORS}, summary="Pre-flight one move (changes nothing)")
def preflight(request, query: Query[PreflightQuery]):
    """The preflight JSON of `manage.py preflight --json`: kind of move, allowed, stars, findings."""
    vm, destination = _vm(query.vm), _host(query.to)
    _path(query.storage_path, "storage_path")
    return Preflight(vm).assess_move(destination, storage_path=query.storage_path).as_json()


def _jobs():
    return MigrationJob.objects.select_related("vm", "source", "destination")


def _job(job_id: int) -> MigrationJob:
    job = _jobs().filter(pk=job_id).first()
    if job is None:
        raise Http404(f"There is no job {job_id}.")
    return job


@router.post("/migrations", response={201: JobOut, **ERRORS}, summary="Start a migration or storage move")
def create_migration(request, payload: MigrationIn):
    """Live, Live (VSM), quick, network (offline) or cross-cluster to another host (`to`); a storage
    move when `to` is the VM's own host or omitted. Pre-flight decides the kind; a blocked move is
    refused (409, errors keyed by rule id) and nothing is recorded."""
    check(request, Perm.MIGRATE)
    vm = _vm(payload.vm)
    destination = _host(payload.to) if payload.to else vm.host
    _path(payload.storage_path, "storage_path")
    disks = {d.path.lower() for d in vm.disks.all()}
    for i, vhd in enumerate(payload.vhds):
        if vhd.source.lower() not in disks:
            raise bad_input(f"vhds.{i}.source", f"{vm.name} has no virtual disk {vhd.source}.")
        if problem := renamed_vhd(vhd.source, vhd.destination):
            # Move-VMStorage and Move-VM refuse a renamed disk (their -Vhds help): nothing is recorded.
            raise bad_input(f"vhds.{i}.destination", f"{problem}. Give the same file name in another folder.")
    vhds = tuple((v.source, v.destination) for v in payload.vhds)
    if payload.transfer_type:
        found = Preflight(vm).assess_move(destination, payload.storage_path, vhds).transfer_type
        if found != payload.transfer_type:
            message = f"Pre-flight finds a {found or 'impossible'} move, not {payload.transfer_type}; nothing started."
            raise ApiError(409, message, {"transfer_type": [message]}, code="refused")
    job = create_job(
        vm,
        destination,
        storage_path=payload.storage_path,
        vhds=vhds,
        performance_option=payload.performance_option or "",
        add_location=payload.storage_path if payload.add_default_location else "",
        user=request.user,
        request=request,
    )
    return Status(201, job_json(_job(job.pk)))


class JobFilter(Schema):
    state: JobState | None = None
    vm: Text = ""
    host: Text = ""
    batch: Id | None = None
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/migrations", response={200: JobPage, **ERRORS}, summary="List jobs, newest first")
def migrations(request, filters: Query[JobFilter]):
    rows = _jobs()
    if filters.state:
        rows = rows.filter(state=filters.state)
    if filters.vm:
        rows = rows.filter(vm_name__iexact=filters.vm)
    if filters.host:
        rows = rows.filter(source__fqdn__iexact=filters.host) | rows.filter(destination__fqdn__iexact=filters.host)
    if filters.batch:
        rows = rows.filter(batch_id=filters.batch)
    items, cursor = keyset(rows, filters.cursor, filters.limit, desc=True)
    return {"items": [job_json(j) for j in items], "next_cursor": cursor}


@router.get("/migrations/{job_id}", response={200: JobOut, **ERRORS}, summary="One job")
def migration(request, job_id: Id):
    return job_json(_job(job_id))


@router.post("/migrations/{job_id}/cancel", response={200: JobOut, **ERRORS}, summary="Cancel a job")
def cancel(request, job_id: Id):
    """A waiting job ends cancelled at once; a running one becomes `cancelling` until the host stops it."""
    check(request, Perm.MIGRATE)
    _job(job_id)  # 404 before 409
    cancel_job(job_id, request.user)
    return job_json(_job(job_id))


def _unknown(job_id: int) -> None:
    if _job(job_id).state != JobState.UNKNOWN:  # 404 before 409
        message = f"Job {job_id} is not waiting for its hosts to answer: its outcome is known."
        raise ApiError(409, message)


@router.post(
    "/migrations/{job_id}/ask-again", response={200: JobOut, **ERRORS}, summary="Ask an unknown job's hosts again now"
)
def ask_again(request, job_id: Id):
    """A job in state `unknown` (its host stopped answering after the move was sent) is handed to
    recovery now instead of within 10 s; it stays `unknown` until the hosts answer. Nothing is sent
    to the hosts but questions. 409 for a job in any other state."""
    check(request, Perm.MIGRATE)
    _unknown(job_id)
    ask_hosts_again(job_id, request.user, request)  # False: a recovery is asking them already
    return job_json(_job(job_id))


class DecisionIn(Schema):
    outcome: Literal["succeeded", "failed"] = Field(
        description="How the move ended, as you checked in Hyper-V Manager or Failover Cluster Manager"
    )


@router.post(
    "/migrations/{job_id}/decide", response={200: JobOut, **ERRORS}, summary="Say how an unknown job's move ended"
)
def decide(request, job_id: Id, payload: DecisionIn):
    """End a job in state `unknown` as `succeeded` or `failed`, on your word (you checked the VM on
    the hosts): its slots are freed and the decision is audited. The console changes nothing on the
    hosts. 409 for a job in any other state."""
    check(request, Perm.MIGRATE)
    _unknown(job_id)
    decide_unknown(job_id, payload.outcome, request.user, request)
    return job_json(_job(job_id))


class EventsQuery(Schema):
    after: Cursor = 0
    job: Id | None = None
    batch: Id | None = None
    limit: Limit = 200


@router.get("/events", response={200: EventPage, **ERRORS}, summary="Job events after a cursor")
def events(request, query: Query[EventsQuery]):
    """State changes and progress samples of every job (or one job, or one batch's jobs), oldest
    first, with an id above `after`. Follow a run by passing the answer's `cursor` back as `after`."""
    rows = JobEvent.objects.filter(pk__gt=query.after)
    if query.job:
        rows = rows.filter(job_id=query.job)
    if query.batch:
        rows = rows.filter(job__batch_id=query.batch)
    items = list(rows.order_by("pk")[: query.limit])
    return {
        "items": [
            {"id": e.pk, "job": e.job_id, "sequence": e.sequence, "time": e.time, "kind": e.kind, "data": e.data}
            for e in items
        ],
        "cursor": items[-1].pk if items else query.after,
    }
