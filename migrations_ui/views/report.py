"""The pre-maintenance report: what an evacuation of a host cannot move live, why, and the choice
for each VM. Read-only here (viewers see it, print it, export it); the evacuate page makes the
choices (views.batches)."""

from __future__ import annotations

from collections.abc import Mapping

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from fabric.models import Host, VmState
from migrations_ui.planning.inventory import evacuation
from migrations_ui.planning.report import LABELS, Report
from utilities.csv_export import csv_response
from utilities.texts import localized

CHOICE = "choice-"  # form fields: choice-<VM id>


def choices_in(params) -> dict[str, str]:
    """The choices a form or query sends (VM id -> choice); empty ones are no choice."""
    return {key.removeprefix(CHOICE): value for key, value in params.items() if key.startswith(CHOICE) and value}


def report_rows(report: Report, choices: Mapping[str, str], wrong: Mapping[str, str] | None = None) -> list[dict]:
    """What the report's table shows of each VM: the choice made (its default where none), each
    offered choice with its label and where it would move the VM, what is not possible and why."""
    wrong = wrong or {}
    rows = []
    for r in report.rows:
        destinations = dict(r.destinations)
        rows.append(
            {
                "row": r,
                "field": CHOICE + r.vm.id,
                "state": VmState(r.vm.state).label if r.vm.state in VmState.values else r.vm.state,
                "chosen": choices.get(r.vm.id, r.default) if choices.get(r.vm.id) in r.choices else r.default,
                "options": [(c, localized(LABELS[c]), destinations.get(c, "")) for c in r.choices],
                "unavailable": [(localized(LABELS[c]), why) for c, why in r.unavailable],
                "error": wrong.get(r.vm.id, ""),
            }
        )
    return rows


def _params(request, fqdn: str) -> tuple[Host, bool]:
    host = get_object_or_404(Host.objects.select_related("cluster"), fqdn=fqdn)
    return host, request.GET.get("move_stopped") in ("1", "on", "true")


@require_safe  # read-only: POST and the like are refused (405)
def maintenance_report(request, fqdn: str):
    host, move_stopped = _params(request, fqdn)
    report, chosen = evacuation(host, move_stopped=move_stopped)
    context = {"host": host, "rows": report_rows(report, chosen.choices), "move_stopped": move_stopped}
    context["live_moves"] = len(report.live.moves)
    context["running_names"] = ", ".join(v.vm for v in chosen.left_running)
    return render(request, "migrations_ui/maintenance_report.html", context)


@require_safe
def maintenance_report_csv(request, fqdn: str):
    host, move_stopped = _params(request, fqdn)
    report, _chosen = evacuation(host, move_stopped=move_stopped)
    header = [_("VM"), _("State"), _("Rules"), _("Why"), _("Remedy"), _("Choice"), _("Destination"), _("Not possible")]
    rows = []
    for item in report_rows(report, report.defaults()):
        r = item["row"]
        destination = next((d for c, _label, d in item["options"] if c == item["chosen"]), "")
        rows.append(
            [
                r.vm.name,
                r.vm.state,
                " ".join(f.rule for f in r.findings),
                " ".join(localized(f.message) for f in r.findings),
                " ".join(localized(f.remedy) for f in r.findings if f.remedy),
                localized(LABELS[item["chosen"]]),
                destination,
                "; ".join(f"{label}: {localized(why)}" for label, why in item["unavailable"]),
            ]
        )
    return csv_response(header, rows, f"maintenance-report-{host.name}")
