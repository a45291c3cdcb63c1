from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from access import Perm, requires
from fabric.models import Host
from migrations_ui.jobs.queue import QueueError, cancel_jobs, move_job, set_paused
from migrations_ui.live import progress
from utilities.http import redirect_back
from utilities.texts import localized, localized_error


@require_POST
@requires(Perm.MIGRATE)
def job_move(request, pk: int):
    try:
        job = move_job(pk, request.POST.get("direction", ""), request.user, request)
    except QueueError as exc:
        return _answer(request, [(messages.ERROR, localized_error(exc))], 409)
    return _answer(request, [(messages.SUCCESS, _moved_text(job, request.POST["direction"]))])


@require_POST
@requires(Perm.MIGRATE)
def jobs_cancel(request):
    raw = request.POST.getlist("job")
    if not all(value.isdigit() for value in raw):
        return _answer(request, [(messages.ERROR, _("Job ids must be numbers; nothing was cancelled."))], 400)
    try:
        results = cancel_jobs([int(value) for value in raw], request.user)
    except QueueError as exc:
        return _answer(request, [(messages.ERROR, localized_error(exc))], 400)
    notes = [(messages.SUCCESS if r.ok else messages.ERROR, localized(r.message)) for r in results]
    return _answer(request, notes, 200 if any(r.ok for r in results) else 409)


@require_POST
@requires(Perm.MIGRATE)
def host_queue(request, fqdn: str):
    host = get_object_or_404(Host, fqdn=fqdn)
    paused = request.POST.get("paused")
    if paused not in ("0", "1"):
        messages.error(request, _("Say paused=1 to pause the queue or paused=0 to resume it; nothing changed."))
        return redirect(host)
    set_paused(host, paused == "1", request.user, request)
    if paused == "1":
        text = _("The queue of %(host)s is paused: its queued jobs wait.") % {"host": host.name}
    else:
        text = _("The queue of %(host)s is resumed.") % {"host": host.name}
    messages.success(request, text)
    return redirect_back(request, host.get_absolute_url())


def _answer(request, notes: list[tuple[int, str]], status: int = 200) -> HttpResponse:
    """htmx: the notices, with the Jobs page's sections redrawn out of band; plain: messages, back."""
    if request.htmx:
        html = "".join(
            render_to_string("partials/job_notice.html", {"text": text, "level": messages.DEFAULT_TAGS[level]})
            for level, text in notes
        )
        return HttpResponse(html + progress.render_sections(), status=status)
    for level, text in notes:
        messages.add_message(request, level, text)
    return redirect_back(request, "/jobs/")


def _moved_text(job, direction: str) -> str:
    values = {"pk": job.pk, "vm": job.vm_name}
    if direction == "up":
        return _("Job %(pk)s (%(vm)s) moved up.") % values
    if direction == "down":
        return _("Job %(pk)s (%(vm)s) moved down.") % values
    return _("Job %(pk)s (%(vm)s) moved %(direction)s.") % {**values, "direction": direction}
