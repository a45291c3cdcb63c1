from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_safe

from access import Perm, requires
from fabric.driver import fabric_seconds_per_second
from fabric.models import Host
from migrations_ui.forms import Folders, SelectionForm, folder_field
from migrations_ui.jobs.batches import (
    BatchRefused,
    evacuation_start_refusal,
    last_evacuation,
    start_batch,
    start_evacuation,
    start_move_back,
)
from migrations_ui.jobs.drain import drain_refusal, end_maintenance_of, start_drain, start_resume
from migrations_ui.live.batch_page import batch_context, batch_for_page
from migrations_ui.live.timeline import timeline_svg
from migrations_ui.models import Batch, BatchKind
from migrations_ui.planning.inventory import drain_plan, evacuation, selection_plan
from migrations_ui.views.report import choices_in, report_rows
from utilities.http import go
from utilities.texts import localized, localized_error


@requires(Perm.MIGRATE)
def migrate_selected(request):
    form = SelectionForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return render(request, "migrations_ui/migrate_selected.html", {"form": form}, status=400)
    data = form.cleaned_data
    plan = selection_plan(data["vm"], data["to"], move_stopped=data["move_stopped"])
    # The folders are known once the plan says which moves copy the files, and to which host.
    folders = _folders(plan)
    chosen = form.clean_folders(folders)
    if form.errors:  # the plan stays on the page, the error at its folder, and nothing starts
        context = _preview(form, plan, folders, chosen)
        return render(request, "migrations_ui/migrate_selected.html", context, status=400)
    if request.method == "POST":
        name = data["name"] or f"{len(data['vm'])} VMs to {data['to'].name if data['to'] else 'placed hosts'}"
        try:
            batch = start_batch(
                plan,
                BatchKind.SELECTION,
                name,
                move_stopped=data["move_stopped"],
                storage_paths=chosen,
                user=request.user,
                request=request,
            )
        except BatchRefused as exc:
            context = _preview(form, plan, folders, chosen, localized_error(exc))
            return render(request, "migrations_ui/migrate_selected.html", context, status=409)
        return redirect(batch)
    return render(request, "migrations_ui/migrate_selected.html", _preview(form, plan, folders, chosen))


def _preview(form, plan, folders: dict[str, Folders], chosen: dict[str, str], refusal: str = "") -> dict:
    return {
        "form": form,
        "plan": plan,
        "refusal": refusal,
        "vms": form.cleaned_data["vm"],
        "svg": _svg(plan),
        "files_to": _files_to(plan, chosen),
        "folders": folders,
        "chosen": chosen,
        "folder_errors": {
            vm_id: form.errors[folder_field(vm_id)] for vm_id in folders if folder_field(vm_id) in form.errors
        },
    }


def _folders(plan) -> dict[str, Folders]:
    """The folders each Live (VSM) move may put the files in (VM id -> Folders): its destination's
    default VM folder first, then the storage locations the single-VM wizard lists, those a job can use."""
    copies = [m for m in plan.moves if m.transfer_type == "live_vsm"]
    if not copies:
        return {}
    hosts = Host.objects.filter(fqdn__in={m.destination for m in copies}).prefetch_related("storage_locations")
    offered = {h.fqdn: Folders.of(h) for h in hosts}
    return {m.vm_id: offered[m.destination] for m in copies if m.destination in offered}


def _files_to(plan, chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Where each Live (VSM) move's files go (VM id -> folder): the folder chosen for it, else its
    destination's default VM folder, as a batch's jobs send them (jobs.operations: no path given,
    the destination's default, as VMM does)."""
    copies = [m for m in plan.moves if m.transfer_type == "live_vsm"]
    if not copies:
        return {}
    defaults = dict(Host.objects.filter(fqdn__in={m.destination for m in copies}).values_list("fqdn", "vm_path"))
    chosen = chosen or {}
    return {m.vm_id: chosen.get(m.vm_id) or defaults.get(m.destination, "") for m in copies}


def _svg(plan) -> str:
    # timeline_svg escapes every name it draws: its output is the only markup marked safe here.
    svg = timeline_svg(plan, per_second=fabric_seconds_per_second())  # wall-clock, as the job pages read
    return mark_safe(svg) if plan.moves else ""  # noqa: S308


@requires(Perm.EVACUATE)
def evacuate_host(request, fqdn: str):
    """The evacuation's plan with the pre-maintenance report: a choice for each VM that cannot move
    live (report.choices_in); POST runs it as chosen."""
    host = get_object_or_404(Host.objects.select_related("cluster"), fqdn=fqdn)
    params = request.POST if request.method == "POST" else request.GET
    move_stopped = params.get("move_stopped") in ("1", "on", "true")
    if host.cluster_id is not None and params.get("method") == "drain":
        return _drain(request, host)
    choices = choices_in(params)
    refusal = evacuation_start_refusal(host)
    report, chosen = evacuation(host, move_stopped=move_stopped, choices=choices)
    wrong = {vm_id: localized(why) for vm_id, why in report.refused(choices).items()}
    if request.method == "POST" and not refusal and not wrong:
        batch = start_evacuation(host, chosen, move_stopped=move_stopped, user=request.user, request=request)
        n = len(chosen.plan.moves)
        if host.maintenance:
            done = ngettext(
                "%(host)s is in maintenance; %(n)s move queued.", "%(host)s is in maintenance; %(n)s moves queued.", n
            ) % {"host": host.name, "n": n}
        else:
            running = ", ".join(v.vm for v in chosen.left_running)
            done = ngettext(
                "%(n)s move queued; %(host)s does not enter maintenance, left running there: %(vms)s.",
                "%(n)s moves queued; %(host)s does not enter maintenance, left running there: %(vms)s.",
                n,
            ) % {"host": host.name, "n": n, "vms": running}
        messages.success(request, done)
        return redirect(batch)
    plan = chosen.plan
    context = {"host": host, "plan": plan, "move_stopped": move_stopped, "refusal": refusal, "svg": _svg(plan)}
    context |= {"files_to": _files_to(plan), "rows": report_rows(report, chosen.choices, wrong)}
    context |= {"running_names": ", ".join(v.vm for v in chosen.left_running), "wrong": wrong}
    if host.cluster_id is not None:
        drain, roles, staying = drain_plan(host)
        context["drain"] = {"plan": drain, "roles": len(roles), "staying": staying, "refusal": drain_refusal(host)}
        context["drain"]["faster"] = "drain" if drain.makespan_s < plan.makespan_s else "console"
    status = 400 if wrong else 409 if refusal and request.method == "POST" else 200
    return render(request, "migrations_ui/evacuate.html", context, status=status)


def _drain(request, host: Host):
    """POST: the cluster drains the node (Suspend-ClusterNode -Drain), the batch page follows it."""
    if request.method != "POST":
        return redirect("migrations_ui:evacuate", host.fqdn)
    plan, roles, _staying = drain_plan(host)
    try:
        batch = start_drain(host, plan, clustered=roles, user=request.user, request=request)
    except BatchRefused as exc:
        messages.error(request, localized_error(exc))
        return redirect("migrations_ui:evacuate", host.fqdn)
    messages.success(
        request,
        _("%(host)s is in maintenance; the cluster drains its %(n)s roles.") % {"host": host.name, "n": len(roles)},
    )
    return redirect(batch)


@require_safe  # a read-only page: POST and the like are refused (405)
def batch_detail(request, pk: int):
    try:
        batch = batch_for_page(pk)
    except Batch.DoesNotExist:
        raise Http404("No such batch") from None
    return render(request, "migrations_ui/batch.html", batch_context(batch))


@requires(Perm.EVACUATE)
def batch_move_back(request, pk: int):
    if request.method != "POST":
        return redirect("migrations_ui:batch", pk)
    batch = get_object_or_404(Batch.objects.select_related("host"), pk=pk)
    return _move_back(request, batch, batch)


@requires(Perm.EVACUATE)
def host_move_back(request, fqdn: str):
    host = get_object_or_404(Host, fqdn=fqdn)
    if request.method != "POST":
        return redirect(host)
    batch = last_evacuation(host)
    if batch is None:
        messages.error(
            request, _("%(host)s has not been evacuated by the console: nothing to move back.") % {"host": host.name}
        )
        return redirect(host)
    return _move_back(request, batch, host)


def _move_back(request, batch: Batch, back_to):
    if batch.kind == BatchKind.DRAIN:
        try:
            start_resume(batch, "immediate", request.user, request)
        except BatchRefused as exc:
            messages.error(request, localized_error(exc))
            return go(request, back_to)
        messages.success(
            request,
            _("%(host)s resumes; the cluster moves its drained roles back (Failback Immediate).")
            % {"host": batch.host.name},
        )
        return go(request, batch)
    try:
        moving = start_move_back(batch, request.user, request)
    except BatchRefused as exc:
        messages.error(request, localized_error(exc))
        return go(request, back_to)
    if moving is None:
        messages.success(
            request, _("Nothing to move back: %(host)s's maintenance has ended.") % {"host": batch.host.name}
        )
        return go(request, batch.host)
    messages.success(
        request,
        _("Moving %(n)s VMs back to %(host)s.") % {"n": len(moving.plan["moves"]), "host": batch.host.name},
    )
    return go(request, moving)


@requires(Perm.EVACUATE)
def host_end_maintenance(request, fqdn: str):
    """End the maintenance and leave the VMs where the evacuation put them."""
    host = get_object_or_404(Host, fqdn=fqdn)
    if request.method != "POST":
        return redirect(host)
    try:
        end_maintenance_of(host, request.user, request)  # a drained node resumes, its roles stay
    except BatchRefused as exc:
        messages.error(request, localized_error(exc))
    else:
        messages.success(
            request, _("%(host)s's maintenance has ended; its VMs stay where they are.") % {"host": host.name}
        )
    return go(request, host)
