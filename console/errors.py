"""The site's error handlers.

handler400: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 (in the API's error shape under /api/, a
plain page elsewhere), any other bad request Django's own 400. Django turns every
SuspiciousOperation raised while a request is read (RequestDataTooBig, TooManyFieldsSent) into a
call of this handler, in a middleware or in a view alike.

handler404: the page says what is missing, from the URL that was asked for: a job, a batch, or
something of the inventory (which a sync may have renamed or removed).
"""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults


def bad_request(request, exception):
    if isinstance(exception, RequestDataTooBig):
        if request.path.startswith("/api/"):
            from api.errors import TOO_LARGE, body

            return JsonResponse(body("too_large", TOO_LARGE), status=413)
        return render(request, "413.html", status=413)
    return defaults.bad_request(request, exception)


# URL names (migrations_ui) whose missing object is a job or a batch; everything else is inventory.
JOB_PAGES = {"job", "cancel_job", "ask_hosts_again", "decide_job", "move_job"}
BATCH_PAGES = {"batch", "batch_move_back"}


def not_found(request, exception):
    match = request.resolver_match
    name = match.url_name if match is not None and match.namespace == "migrations_ui" else None
    missing = "job" if name in JOB_PAGES else "batch" if name in BATCH_PAGES else "inventory" if match else "page"
    context = {"request_path": request.path, "missing": missing, "pk": match.kwargs.get("pk") if match else None}
    return render(request, "404.html", context, status=404)
