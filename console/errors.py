"""Django's handler400 for the whole site: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 (in the
API's error shape under /api/, a plain page elsewhere), any other bad request Django's own 400.

Django turns every SuspiciousOperation raised while a request is read (RequestDataTooBig,
TooManyFieldsSent) into a call of this handler, in a middleware or in a view alike."""

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
