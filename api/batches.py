"""Plans and batches: evacuate a host, move a selection of VMs, follow a batch, move back. The
Evacuate and selection pages' services (migrations_ui.planning.inventory, migrations_ui.jobs.batches) do the work;
the plan JSON is the stable one of `manage.py evacuate --plan-only --json`."""

from __future__ import annotations

from django.http import Http404
from ninja import Query, Router, Schema, Status

from access import Perm, check
from api.errors import ERRORS, ApiError, bad_input
from api.inventory import get_host, host_json
from api.pagination import keyset
from api.schemas import (
    BatchOut,
    BatchPage,
    EndMaintenanceOut,
    EvacuationIn,
    Id,
    Limit,
    MoveBackOut,
    PlanOut,
    ReportOut,
    SelectionIn,
    Text,
)
from migrations_ui.forms import SelectionForm
from migrations_ui.jobs.batches import (
    batch_summary,
    evacuation_start_refusal,
    start_batch,
    start_evacuation,
    start_move_back,
)
from migrations_ui.jobs.drain import end_maintenance_of, start_resume
from migrations_ui.lookup import NotFound, find_host
from migrations_ui.models import Batch, BatchKind
from migrations_ui.planning.inventory import evacuation, evacuation_plan, selection_plan
from migrations_ui.serializers import job_json

router = Router(tags=["batches and evacuations"])


# The stored plan's stable part (it also keeps ids and refusals for the batch page).
PLAN_KEYS = (("host", None), ("moves", []), ("left", []), ("makespan_s", 0.0), ("lower_bound_s", 0.0))


def batch_json(batch: Batch) -> dict:
    summary = batch_summary(batch)  # the batch page's figures: percent, finished, actual time
    jobs = list(batch.jobs.select_related("vm", "source", "destination").order_by("pk"))
    plan = batch.plan
    return {
        "id": batch.pk,
        "name": batch.name,
        "kind": batch.kind,
        "host": batch.host.fqdn if batch.host else None,
        "created_by": batch.created_by.get_username() if batch.created_by else None,
        "created_at": batch.created_at,
        "plan": {key: plan.get(key, default) for key, default in PLAN_KEYS},
        "refused": plan.get("refused", []),
        "jobs": [job_json(j) for j in jobs],
        "counts": summary["counts"],
        "percent": summary["percent"],
        "finished": summary["finished"],
        "makespan_s": summary["makespan_s"],
        "actual_s": summary["actual_s"],
    }


def _batch(batch_id: int) -> Batch:
    batch = Batch.objects.select_related("host", "created_by").filter(pk=batch_id).first()
    if batch is None:
        raise Http404(f"There is no batch {batch_id}.")
    return batch


class PlanQuery(Schema):
    move_stopped: bool = False


@router.get("/hosts/{fqdn}/evacuation-plan", response={200: PlanOut, **ERRORS}, summary="Plan a host's evacuation")
def evacuation_plan_view(request, fqdn: str, query: Query[PlanQuery]):
    """Where each VM would go and when, within every host's slots; changes nothing (a read: not
    audited)."""
    host = get_host(fqdn)
    return evacuation_plan(host, move_stopped=query.move_stopped).as_json()


@router.get(
    "/hosts/{fqdn}/maintenance-report", response={200: ReportOut, **ERRORS}, summary="A host's pre-maintenance report"
)
def maintenance_report(request, fqdn: str, query: Query[PlanQuery]):
    """The VMs an evacuation cannot move live, why (rules and remedies), what may happen to each and
    what would by default; changes nothing."""
    report, _chosen = evacuation(get_host(fqdn), move_stopped=query.move_stopped)
    return report.as_json()


@router.post("/evacuations", response={201: BatchOut, **ERRORS}, summary="Evacuate a host (maintenance)")
def evacuate(request, payload: EvacuationIn):
    """Plan now and queue the moves in plan order as one batch; the host enters maintenance unless a
    VM stays running on it (choices). Refused (409) while an earlier evacuation of the host still runs,
    or when the host does not answer; a choice a VM does not have is a 400."""
    check(request, Perm.EVACUATE)
    try:
        host = find_host(payload.host)
    except NotFound as exc:
        raise bad_input("host", str(exc).capitalize() + ".") from None
    if refusal := evacuation_start_refusal(host):
        raise ApiError(409, refusal, code="refused")
    report, chosen = evacuation(host, move_stopped=payload.move_stopped, choices=payload.choices)
    if wrong := report.refused(report.by_id(payload.choices)):
        raise ApiError(400, " ".join(wrong.values()), {"choices": list(wrong.values())})
    batch = start_evacuation(host, chosen, move_stopped=payload.move_stopped, user=request.user, request=request)
    return Status(201, batch_json(_batch(batch.pk)))


def _selection(payload: SelectionIn) -> dict:
    """The selection page's form validates the VMs and the destination (one implementation)."""
    data = {"vm": payload.vms, "to": payload.to or "", "name": payload.name}
    if payload.move_stopped:
        data["move_stopped"] = "on"
    form = SelectionForm(data)
    if not form.is_valid():
        errors = {("vms" if f == "vm" else f): list(msgs) for f, msgs in form.errors.items()}
        raise ApiError(400, " ".join(m for msgs in errors.values() for m in msgs), errors)
    return form.cleaned_data


@router.post("/batches/plan", response={200: PlanOut, **ERRORS}, summary="Plan moving a selection (changes nothing)")
def plan_selection(request, payload: SelectionIn):
    data = _selection(payload)
    return selection_plan(data["vm"], data["to"], move_stopped=data["move_stopped"]).as_json()


@router.post("/batches", response={201: BatchOut, **ERRORS}, summary="Move a selection of VMs as one batch")
def start_selection(request, payload: SelectionIn):
    check(request, Perm.MIGRATE)
    data = _selection(payload)
    plan = selection_plan(data["vm"], data["to"], move_stopped=data["move_stopped"])
    name = data["name"] or f"{len(data['vm'])} VMs to {data['to'].name if data['to'] else 'placed hosts'}"
    batch = start_batch(
        plan, BatchKind.SELECTION, name, move_stopped=data["move_stopped"], user=request.user, request=request
    )
    return Status(201, batch_json(_batch(batch.pk)))


class BatchFilter(Schema):
    kind: BatchKind | None = None
    host: Text = ""
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/batches", response={200: BatchPage, **ERRORS}, summary="List batches, newest first")
def batches(request, filters: Query[BatchFilter]):
    rows = Batch.objects.select_related("host")
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.host:
        rows = rows.filter(host__fqdn__iexact=filters.host)
    items, cursor = keyset(rows, filters.cursor, filters.limit, desc=True)
    summaries = [
        {"id": b.pk, "name": b.name, "kind": b.kind, "host": b.host and b.host.fqdn, "created_at": b.created_at}
        for b in items
    ]
    return {"items": summaries, "next_cursor": cursor}


@router.get("/batches/{batch_id}", response={200: BatchOut, **ERRORS}, summary="A batch's status")
def batch(request, batch_id: Id):
    """The plan, each job, counts per state, percent done and whether the batch has finished."""
    return batch_json(_batch(batch_id))


@router.post("/batches/{batch_id}/move-back", response={200: MoveBackOut, **ERRORS}, summary="Move back")
def move_back(request, batch_id: Id):
    """After an evacuation: each VM it moved back to the host, and the maintenance ends."""
    check(request, Perm.EVACUATE)
    batch = _batch(batch_id)
    if batch.kind == BatchKind.DRAIN:  # the cluster brings the drained roles back (Failback Immediate)
        start_resume(batch, "immediate", request.user, request)
        return {"message": "Resuming the node; the cluster moves the drained roles back.", "batch": None}
    moving = start_move_back(batch, request.user, request)
    if moving is None:
        return {"message": "Nothing to move back: the host's maintenance has ended.", "batch": None}
    return {"message": f"Moving {len(moving.plan['moves'])} VMs back.", "batch": batch_json(_batch(moving.pk))}


@router.post(
    "/hosts/{fqdn}/end-maintenance", response={200: EndMaintenanceOut, **ERRORS}, summary="End a host's maintenance"
)
def end_host_maintenance(request, fqdn: str):
    """The host takes VMs again; the evacuated VMs stay where they are (move back returns them
    instead). Refused (409) while an evacuation of the host runs, or when it is not in maintenance."""
    check(request, Perm.EVACUATE)
    host = get_host(fqdn)
    end_maintenance_of(host, request.user, request)  # a drained node resumes without failback
    return {"message": f"{host.name}'s maintenance has ended; its VMs stay where they are.", "host": host_json(host)}
