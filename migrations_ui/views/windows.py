"""Maintenance windows: schedule an evacuation, a selection or a move back; list, edit, cancel.

The workers start a window when it is due (jobs.windows). Scheduling asks what the Evacuate,
Migrate selected or Move back button would (the same permission, the same refusals that hold
already), and when.
"""

from __future__ import annotations

from datetime import UTC
from itertools import groupby

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from access import Perm, check, requires
from audit.log import record
from fabric.models import Host
from migrations_ui.forms import SelectionForm, WindowForm
from migrations_ui.models import Batch, BatchKind, MaintenanceWindow, WindowState

RECENT = 20  # windows that started, or did not, listed below the coming ones


@requires(Perm.MIGRATE)
def schedule(request):
    params = request.POST if request.method == "POST" else request.GET
    target = _target(params)
    form = WindowForm(request.POST if request.method == "POST" else None)
    context = {"form": form, "target": target}
    if target.get("error"):
        return render(request, "migrations_ui/window_form.html", context, status=400)
    if request.method != "POST":
        return render(request, "migrations_ui/window_form.html", context)
    if target["kind"] != BatchKind.SELECTION:
        check(request, Perm.EVACUATE)
    if not form.is_valid():
        return render(request, "migrations_ui/window_form.html", context, status=400)
    window = MaintenanceWindow.objects.create(
        kind=target["kind"],
        name=target["name"],
        host=target.get("host"),
        vm_ids=[str(vm.guid) for vm in target.get("vms", ())],
        destination=target.get("destination"),
        evacuation=target.get("evacuation"),
        move_stopped=target.get("move_stopped", False),
        starts_at=form.cleaned_data["starts_at"],
        deadline=form.cleaned_data["deadline"],
        created_by=request.user,
    )
    _audit("window.scheduled", request, window)
    messages.success(request, _("Scheduled: %(name)s.") % {"name": window.name})
    return redirect("migrations_ui:windows")


def _target(params) -> dict:
    """What the window will start, from the query or form: kind and its object, or an error."""
    kind = params.get("kind", "")
    move_stopped = params.get("move_stopped") in ("1", "on", "true")
    if kind == BatchKind.EVACUATION:
        host = Host.objects.filter(fqdn=params.get("host", "")).first()
        if host is None:
            return {"error": _("There is no such host.")}
        return {"kind": kind, "host": host, "name": f"Evacuate {host.name}", "move_stopped": move_stopped}
    if kind == BatchKind.MOVE_BACK:
        batch = Batch.objects.filter(pk=_int(params.get("batch")), kind=BatchKind.EVACUATION, host__isnull=False)
        if (evacuation := batch.select_related("host").first()) is None:
            return {"error": _("There is no such evacuation.")}
        name = f"Move back to {evacuation.host.name}"
        return {"kind": kind, "evacuation": evacuation, "host": evacuation.host, "name": name}
    if kind == BatchKind.SELECTION:
        selection = SelectionForm(params)
        if not selection.is_valid():
            return {"error": " ".join(e for errors in selection.errors.values() for e in errors)}
        data = selection.cleaned_data
        to = data["to"].name if data["to"] else "placed hosts"  # an English name, as Migrate selected gives
        name = data["name"] or f"{len(data['vm'])} VMs to {to}"
        return {"kind": kind, "vms": data["vm"], "destination": data["to"], "name": name, "move_stopped": move_stopped}
    return {"error": _("Say what to schedule: an evacuation, a selection or a move back.")}


def _int(value) -> int | None:
    return int(value) if str(value or "").isdigit() else None


@require_safe
def window_list(request):
    windows = MaintenanceWindow.objects.select_related("host", "created_by", "batch")
    coming = list(windows.filter(state=WindowState.SCHEDULED))
    days = [(day, list(rows)) for day, rows in groupby(coming, key=lambda w: timezone.localdate(w.starts_at))]
    past = windows.exclude(state=WindowState.SCHEDULED).order_by("-starts_at", "-pk")[:RECENT]
    return render(request, "migrations_ui/windows.html", {"days": days, "past": past})


@requires(Perm.MIGRATE)
def window_edit(request, pk: int):
    window = get_object_or_404(MaintenanceWindow.objects.select_related("host"), pk=pk)
    initial = {"starts_at": window.starts_at, "deadline": window.deadline}
    form = WindowForm(request.POST if request.method == "POST" else None, initial=initial)
    context = {"form": form, "window": window}
    if window.state != WindowState.SCHEDULED:
        context["refusal"] = _("This window has already started or ended; it can no longer be changed.")
        return render(request, "migrations_ui/window_form.html", context, status=409)
    if request.method != "POST":
        return render(request, "migrations_ui/window_form.html", context)
    _check_kind(request, window)
    if not form.is_valid():
        return render(request, "migrations_ui/window_form.html", context, status=400)
    changed = MaintenanceWindow.objects.filter(pk=window.pk, state=WindowState.SCHEDULED).update(
        starts_at=form.cleaned_data["starts_at"], deadline=form.cleaned_data["deadline"]
    )
    if not changed:  # a worker started it meanwhile
        context["refusal"] = _("This window has already started or ended; it can no longer be changed.")
        return render(request, "migrations_ui/window_form.html", context, status=409)
    window.refresh_from_db()
    _audit("window.changed", request, window)
    messages.success(request, _("Changed: %(name)s.") % {"name": window.name})
    return redirect("migrations_ui:windows")


@require_POST
@requires(Perm.MIGRATE)
def window_cancel(request, pk: int):
    window = get_object_or_404(MaintenanceWindow, pk=pk)
    _check_kind(request, window)
    if MaintenanceWindow.objects.filter(pk=pk, state=WindowState.SCHEDULED).update(state=WindowState.CANCELLED):
        _audit("window.cancelled", request, window)
        messages.success(request, _("Cancelled: %(name)s. Nothing was started.") % {"name": window.name})
    else:
        messages.error(request, _("This window has already started or ended; it can no longer be changed."))
    return redirect("migrations_ui:windows")


def _check_kind(request, window: MaintenanceWindow) -> None:
    if window.kind != BatchKind.SELECTION:
        check(request, Perm.EVACUATE)


def _audit(action: str, request, window: MaintenanceWindow) -> None:
    details = {
        "kind": window.kind,
        "name": window.name,
        "starts_at": window.starts_at.astimezone(UTC).isoformat(),  # the trail keeps one clock, UTC
        "deadline": window.deadline.astimezone(UTC).isoformat() if window.deadline else None,
    }
    record(action, actor=request.user, request=request, target_type="window", target_id=str(window.pk), details=details)
