from dataclasses import dataclass, field

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST, require_safe

from access import Perm, requires
from fabric.drift import find_drift
from fabric.queries import settings_views
from migrations_ui.forms import MoveForm, StorageMoveForm
from migrations_ui.jobs.operations import (
    DECISIONS,
    CannotCancel,
    CannotDecide,
    Refused,
    cancel_job,
    create_job,
    decide_unknown,
)
from migrations_ui.jobs.supervisor import ask_hosts_again
from migrations_ui.live import progress
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.preflight.assess import Preflight, vm_for_preflight
from migrations_ui.preflight.rules import Finding
from migrations_ui.preflight.transfer import Assessment
from utilities.http import go, page_or_fragment, redirect_back
from utilities.texts import Msg, localized_error


@dataclass
class WizardOutcome:
    selected: Assessment | None = None
    refusal: list[Finding] = field(default_factory=list)
    status: int = 200
    job: MigrationJob | None = None


def _wizard(request, vm, form, assess, submit) -> WizardOutcome:
    """Both wizards' flow: validate; assess; on POST create the job. Bad input answers 400, a refusal
    409 (to htmx and to POSTs; a plain GET page shows the message with 200)."""
    strict = request.method == "POST" or bool(request.htmx)
    out = WizardOutcome()
    if vm.removed:
        out.refusal = [
            Finding(
                "vm-gone", "block", Msg("%(vm)s is no longer in Hyper-V's inventory; nothing can move it.", vm=vm.name)
            )
        ]
    if form.is_bound and not form.is_valid():
        out.status = 400 if strict else 200
        return out
    if form.is_bound:
        out.selected = assess(form)
        if out.selected is not None and request.method == "POST" and not out.refusal:
            try:
                out.job = submit(form, out.selected)
                return out
            except Refused as exc:
                out.refusal = exc.findings
    if out.refusal:
        out.status = 409 if strict else 200
    return out


@requires(Perm.MIGRATE)
def migrate_vm(request, guid):
    vm = get_object_or_404(vm_for_preflight(), guid=guid)
    form = MoveForm(request.POST if request.method == "POST" else request.GET, vm=vm)
    preflight = Preflight(vm)

    def assess(f):
        destination = f.cleaned_data["to"]
        return preflight.assess_move(destination, f.cleaned_data["storage_path"]) if destination else None

    def submit(f, selected):
        path, performance = selected.proposal.storage_path, f.cleaned_data["performance"]
        return create_job(
            vm,
            f.cleaned_data["to"],
            storage_path=path,
            performance_option=performance,
            user=request.user,
            request=request,
        )

    out = _wizard(request, vm, form, assess, submit)
    if out.job:
        return go(request, out.job)
    if out.selected is None and _only_the_path_is_wrong(form):
        # The steps stay on the page, the error at the path field and nothing to start: htmx swaps the
        # Summary card in as typed, and a card missing from the answer would vanish with no message.
        out.selected = preflight.assess(form.cleaned_data["to"])
    context = {
        "vm": vm,
        "form": form,
        "selected": out.selected,
        "refusal": out.refusal,
        "source_performance": vm.host.get_performance_option_display(),
        "locations": _locations(form.cleaned_data.get("to") if out.selected else None),
    }
    if not request.htmx:
        context["ranked"] = _with_drift(vm.host, preflight.destinations())
    return page_or_fragment(
        request, "migrations_ui/migrate_vm.html", "partials/migrate_details.html", context, out.status
    )


def _only_the_path_is_wrong(form) -> bool:
    return form.is_bound and set(form.errors) == {"storage_path"} and form.cleaned_data.get("to") is not None


def _with_drift(source, ranked):
    """The drift guard's reasons on the source and each destination: a move uses the source's
    performance option and both hosts' limits and authentication, so drift there affects it."""
    flags = find_drift(settings_views())
    source.drift = flags.get(source.fqdn, [])
    for host, _ in ranked:
        host.drift = flags.get(host.fqdn, [])
    return ranked


def _locations(host) -> list[str]:
    return list(host.storage_locations.values_list("path", flat=True)) if host else []


@requires(Perm.MIGRATE)
def migrate_storage(request, guid):
    vm = get_object_or_404(vm_for_preflight(), guid=guid)
    disks = list(vm.disks.all())
    form = StorageMoveForm(request.POST if request.method == "POST" else (request.GET or None), disks=disks)

    def assess(f):
        return Preflight(vm).assess(vm.host, storage_path=f.target(), vhds=f.vhds())

    def submit(f, selected):
        return create_job(
            vm,
            vm.host,
            storage_path=f.target(),
            vhds=f.vhds(),
            add_location=f.add_location(),
            user=request.user,
            request=request,
        )

    out = _wizard(request, vm, form, assess, submit)
    if out.job:
        return go(request, out.job)
    context = {
        "vm": vm,
        "form": form,
        "disks": disks,
        "locations": vm.host.storage_locations.all(),
        "selected": out.selected,
        "refusal": out.refusal,
    }
    return page_or_fragment(
        request, "migrations_ui/migrate_storage.html", "partials/storage_details.html", context, out.status
    )


@require_safe  # a read-only page: POST and the like are refused (405)
def job_list(request):
    # Filters and pages are plain GET links: the websocket URL carries the same filters, so a change
    # of filter must load the page (and reconnect) rather than swap only the table.
    filters = progress.finished_filters(request.GET)
    context = {**progress.board_context(filters), "filter_problems": progress.filter_problems(request.GET, filters)}
    return render(request, "migrations_ui/jobs.html", context)


@require_safe  # a read-only page: POST and the like are refused (405)
def job_detail(request, pk: int):
    try:
        job = progress.job_for_page(pk)
    except MigrationJob.DoesNotExist:
        raise Http404("No such job") from None
    return render(request, "migrations_ui/job_detail.html", progress.detail_context(job))


@require_POST
@requires(Perm.MIGRATE)
def job_cancel(request, pk: int):
    try:
        job = cancel_job(pk, request.user)
    except CannotCancel as exc:
        status = 409 if MigrationJob.objects.filter(pk=pk).exists() else 404
        return _job_answer(request, pk, localized_error(exc), messages.ERROR, status)
    if job.state == JobState.CANCELLED:
        text = gettext("Job %(pk)s cancelled: it had not started.") % {"pk": pk}
    else:
        text = gettext(
            "Cancelling job %(pk)s: the host is asked to stop the migration; the job ends when it confirms."
        ) % {"pk": pk}
    return _job_answer(request, pk, text, messages.SUCCESS, 200)


@require_POST
@requires(Perm.MIGRATE)
def job_ask_again(request, pk: int):
    """An unknown job's hosts asked now rather than at the supervisor's next turn; the answer
    reaches the page over the websocket, as any change of the job."""
    job = MigrationJob.objects.filter(pk=pk).first()
    if job is None:
        return _job_answer(request, pk, gettext("There is no job %(pk)s.") % {"pk": pk}, messages.ERROR, 404)
    if job.state != JobState.UNKNOWN:
        text = gettext("Job %(pk)s is not waiting for its hosts to answer: its outcome is known.") % {"pk": pk}
        return _job_answer(request, pk, text, messages.ERROR, 409)
    if not ask_hosts_again(pk, request.user, request):
        # A recovery holds the job already (the supervisor's turn, or another operator's click).
        text = gettext("The console is asking the hosts of job %(pk)s right now; this page shows their answer.")
        return _job_answer(request, pk, text % {"pk": pk}, messages.INFO, 200)
    text = gettext("The hosts of job %(pk)s are asked again now; this page shows their answer.") % {"pk": pk}
    return _job_answer(request, pk, text, messages.SUCCESS, 200)


@require_POST
@requires(Perm.MIGRATE)
def job_decide(request, pk: int):
    """An operator who checked the VM in Hyper-V Manager or Failover Cluster Manager ends an unknown
    job as succeeded or failed (outcome); "checked" confirms they looked."""
    outcome = request.POST.get("outcome", "")
    if not MigrationJob.objects.filter(pk=pk).exists():
        return _job_answer(request, pk, gettext("There is no job %(pk)s.") % {"pk": pk}, messages.ERROR, 404)
    if outcome in DECISIONS and not request.POST.get("checked"):
        text = gettext(
            "Nothing changed: confirm that you checked the VM in Hyper-V Manager or Failover Cluster Manager."
        )
        return _job_answer(request, pk, text, messages.ERROR, 400)
    try:
        job = decide_unknown(pk, outcome, request.user, request)
    except CannotDecide as exc:
        return _job_answer(request, pk, localized_error(exc), messages.ERROR, 409 if outcome in DECISIONS else 400)
    if job.state == JobState.SUCCEEDED:
        text = gettext("Job %(pk)s marked succeeded: %(vm)s moved, as you checked. Its slots are free.")
    else:
        text = gettext(
            "Job %(pk)s marked failed: %(vm)s did not move, as you checked. Its slots are free; check the VM's "
            "high availability before moving it again."
        )
    return _job_answer(request, pk, text % {"pk": pk, "vm": job.vm_name}, messages.SUCCESS, 200)


def _job_answer(request, pk: int, text: str, level: int, status: int) -> HttpResponse:
    """htmx: the message as a fragment with the status; plain: a Django message and a redirect."""
    if request.htmx:
        context = {"text": text, "level": messages.DEFAULT_TAGS[level]}
        return render(request, "partials/job_notice.html", context, status=status)
    messages.add_message(request, level, text)
    return redirect_back(request, *(("migrations_ui:job", pk) if status != 404 else ("migrations_ui:jobs",)))
