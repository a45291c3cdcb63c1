"""HTTP answers every app gives the same way: back to a form's "next" after a POST, safely; a page or
its htmx fragment; a redirect htmx follows."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect


def redirect_back(request, *default) -> HttpResponseRedirect:
    """To the POST's "next" when it is a path of this site; else to default (a URL, or a view name and
    its arguments, as django.shortcuts.redirect takes them). "next" is never resolved as a view name:
    redirect("x") would look a view "x" up and fail."""
    back = request.POST.get("next", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return HttpResponseRedirect(back)
    return redirect(*default)


def page_or_fragment(request, page: str, fragment: str, context: dict, status: int = 200) -> HttpResponse:
    """The whole page, or only the fragment htmx asked for. A history restore needs the whole page
    back; Vary: HX-Request keeps caches from serving one for the other."""
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, fragment if partial else page, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def go(request, to) -> HttpResponse:
    """A redirect after a POST; for htmx, one the browser follows as a page load."""
    return HttpResponseClientRedirect(resolve_url(to)) if request.htmx else redirect(to)
