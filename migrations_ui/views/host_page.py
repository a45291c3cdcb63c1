"""The migration parts of the inventory's pages (fabric.page_sections): evacuation, maintenance and
queue actions, slots in use and the slots chart on the host page; the move buttons and the migration
history on the VM page;
Migrate on each row of the VM list and Migrate selected for the rows checked."""

from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from access import Perm
from fabric.page_sections import Action, add_row_action, add_section, add_selection_action
from migrations_ui.models import MigrationJob


def host_actions(request, host) -> str:
    # Imported here: every process registers these sections when Django starts, and a job worker
    # must not load the batch page's renderers (migrations_ui.jobs.batches, timeline) for it.
    from migrations_ui.jobs.batches import evacuation_refusal

    # Move back and End maintenance wait for the evacuation's moves: not offered while they run.
    running = host.maintenance and evacuation_refusal(host) is not None
    context = {"host": host, "evacuation_running": running}
    return render_to_string("migrations_ui/host_actions.html", context, request=request)


def host_slots(request, host) -> str:
    return render_to_string("migrations_ui/host_slots.html", {"host": host}, request=request)


def host_chart(request, host) -> str:
    return render_to_string("migrations_ui/host_chart.html", {"host": host}, request=request)


def vm_actions(request, vm) -> str:
    return render_to_string("migrations_ui/vm_actions.html", {"vm": vm}, request=request)


HISTORY_SHOWN = 50  # the newest moves; the Jobs page's filters find older ones


def vm_history(request, vm) -> str:
    jobs = MigrationJob.objects.filter(vm=vm).select_related("source", "destination", "requested_by")
    context = {"vm": vm, "jobs": jobs.order_by("-created_at", "-pk")[:HISTORY_SHOWN], "shown": HISTORY_SHOWN}
    return render_to_string("migrations_ui/vm_history.html", context, request=request)


def register() -> None:
    add_section("host", "actions", host_actions)
    add_section("host", "details", host_slots)
    add_section("host", "wide", host_chart)
    add_section("vm", "actions", vm_actions)
    add_section("vm", "wide", vm_history)
    add_row_action("vm", Action(_("Migrate"), "migrations_ui:migrate_vm", Perm.MIGRATE))
    add_selection_action("vm", Action(_("Migrate selected…"), "migrations_ui:migrate_selected", Perm.MIGRATE))
