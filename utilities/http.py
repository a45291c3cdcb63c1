"""Where a form sends the browser back to after a POST (its "next" field), safely."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


def redirect_back(request, *default) -> HttpResponseRedirect:
    """To the POST's "next" when it is a path of this site; else to default (a URL, or a view name and
    its arguments, as django.shortcuts.redirect takes them). "next" is never resolved as a view name:
    redirect("x") would look a view "x" up and fail."""
    back = request.POST.get("next", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return HttpResponseRedirect(back)
    return redirect(*default)
