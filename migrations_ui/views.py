from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from console.access import Perm, requires
from migrations_ui import progress
from migrations_ui.facts import Kind
from migrations_ui.forms import MoveForm, StorageMoveForm
from migrations_ui.jobs import CannotCancel, Refused, cancel_job, create_job
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.preflight import Preflight, vm_for_preflight
from migrations_ui.rules import Finding


def _render(request, full: str, partial: str, context: dict, status: int = 200) -> HttpResponse:
    """The wizard page, or only its details fragment for an htmx request."""
    fragment = request.htmx and not request.htmx.history_restore_request
    response = render(request, partial if fragment else full, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _created(request, job: MigrationJob) -> HttpResponse:
    url = job.get_absolute_url()
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _gone(vm) -> list[Finding]:
    if vm.removed:
        return [Finding("vm-gone", "block", f"{vm.name} is no longer in Hyper-V's inventory; nothing can move it.")]
    return []


@requires(Perm.MIGRATE)
def migrate_vm(request, guid):
    vm = get_object_or_404(vm_for_preflight(), guid=guid)
    form = MoveForm(request.POST if request.method == "POST" else request.GET, vm=vm)
    preflight = Preflight(vm)
    refusal, status = _gone(vm), 200
    selected = None
    if not form.is_valid():
        status = 400 if request.method == "POST" or request.htmx else 200
    elif (destination := form.cleaned_data["to"]) is not None:
        storage_path = form.cleaned_data["storage_path"]
        selected = preflight.assess(destination, storage_path=storage_path)
        if selected.transfer_type == Kind.LIVE_VSM and not storage_path and destination.vm_path:
            # Live (VSM) needs a target: start from the destination's default location, as VMM does.
            selected = preflight.assess(destination, storage_path=destination.vm_path)
        if request.method == "POST" and not refusal:
            try:
                job = create_job(
                    vm,
                    destination,
                    storage_path=selected.proposal.storage_path,
                    performance_option=form.cleaned_data["performance"],
                    user=request.user,
                    request=request,
                )
                return _created(request, job)
            except Refused as exc:
                refusal, status = exc.findings, 409
    if refusal:
        status = 409 if request.method == "POST" or request.htmx else 200
    context = {
        "vm": vm,
        "form": form,
        "selected": selected,
        "refusal": refusal,
        "source_performance": vm.host.get_performance_option_display(),
        "locations": _locations(form.cleaned_data.get("to") if selected else None),
    }
    if not request.htmx:
        context["ranked"] = preflight.destinations()
    return _render(request, "migrations_ui/migrate_vm.html", "partials/migrate_details.html", context, status)


def _locations(host) -> list[str]:
    return list(host.storage_locations.values_list("path", flat=True)) if host else []


@requires(Perm.MIGRATE)
def migrate_storage(request, guid):
    vm = get_object_or_404(vm_for_preflight(), guid=guid)
    disks = list(vm.disks.all())
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = StorageMoveForm(data, disks=disks)
    refusal, status, selected = _gone(vm), 200, None
    if form.is_bound and not form.is_valid():
        status = 400 if request.method == "POST" or request.htmx else 200
    elif form.is_bound:
        preflight = Preflight(vm)
        selected = preflight.assess(vm.host, storage_path=form.target(), vhds=form.vhds())
        if request.method == "POST" and not refusal:
            try:
                job = create_job(
                    vm,
                    vm.host,
                    storage_path=form.target(),
                    vhds=form.vhds(),
                    add_location=form.add_location(),
                    user=request.user,
                    request=request,
                )
                return _created(request, job)
            except Refused as exc:
                refusal, status = exc.findings, 409
    if refusal:
        status = 409 if request.method == "POST" or request.htmx else 200
    context = {
        "vm": vm,
        "form": form,
        "disks": disks,
        "locations": vm.host.storage_locations.all(),
        "selected": selected,
        "refusal": refusal,
    }
    return _render(request, "migrations_ui/migrate_storage.html", "partials/storage_details.html", context, status)


def job_list(request):
    # Filters and pages are plain GET links: the websocket URL carries the same filters, so a change
    # of filter must load the page (and reconnect) rather than swap only the table.
    filters = progress.finished_filters(request.GET)
    return render(request, "migrations_ui/jobs.html", progress.board_context(filters))


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
        return _cancel_answer(request, pk, str(exc), messages.ERROR, status)
    if job.state == JobState.CANCELLED:
        text = f"Job {pk} cancelled: it had not started."
    else:
        text = f"Cancelling job {pk}: the host is asked to stop the migration; the job ends when it confirms."
    return _cancel_answer(request, pk, text, messages.SUCCESS, 200)


def _cancel_answer(request, pk: int, text: str, level: int, status: int) -> HttpResponse:
    """htmx: the message as a fragment with the status; plain: a Django message and a redirect."""
    if request.htmx:
        context = {"text": text, "level": messages.DEFAULT_TAGS[level]}
        return render(request, "partials/job_notice.html", context, status=status)
    messages.add_message(request, level, text)
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return redirect(back)
    return redirect("migrations_ui:job", pk) if status != 404 else redirect("migrations_ui:jobs")
