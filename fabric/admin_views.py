"""Adding, editing and removing a managed host with its WinRM credentials, and testing the
connection first.

Staff with the manage_hosts permission only. The password is write-only: it is encrypted when saved
(fabric.credentials), never put back into the form, never logged, never in the audit details, and
hidden from Django's error reports (sensitive_post_parameters / sensitive_variables).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from access import Perm, check
from fabric.credentials import HostCredential, WinRMAuth
from fabric.forms import HostForm
from fabric.hyperv.api import Connection, HyperVError
from fabric.models import Host
from fabric.removal import CannotRemove, remove_host
from utilities.texts import localized_error

log = logging.getLogger(__name__)


def _allowed(request) -> None:
    check(request, Perm.MANAGE_HOSTS)  # administrators; a refusal is audited


@sensitive_post_parameters("password")
def host_form(request, fqdn: str | None = None):
    """Add (or edit) a host: "Test connection" asks the host for its inventory and saves nothing."""
    _allowed(request)
    host = get_object_or_404(Host, fqdn=fqdn) if fqdn else None
    form = HostForm(request.POST or None, editing=host, initial=_initial(host))
    tested = None
    if request.method == "POST" and form.is_valid():
        if request.POST.get("action") == "test":
            tested = _test(form.connection())
        else:
            saved = _save(request, form, host)
            return redirect(saved.get_absolute_url())
    return render(request, "fabric/host_form.html", {"form": form, "host": host, "tested": tested})


def _initial(host: Host | None) -> dict:
    if host is None:
        return {}
    credential = HostCredential.objects.filter(host=host).first()
    return {
        "fqdn": host.fqdn,
        "address": host.address,
        "port": host.port,
        "transport": host.transport,
        "auth": credential.auth if credential else WinRMAuth.NEGOTIATE,
        "username": credential.username if credential else "",
    }


@sensitive_variables("conn")
def _test(conn: Connection) -> dict:
    """Open a session with exactly these settings, read the host, close it again."""
    from django.conf import settings

    if settings.HYPERV_DRIVER == "sim":
        from fabric.driver import get_driver

        driver, close = get_driver(), None
    else:
        from fabric.driver import psrp_options
        from fabric.hyperv.psrp import PsrpDriver

        driver = PsrpDriver(psrp_options())
        close = driver.close
    try:
        inventory = driver.inventory(conn)
    except HyperVError as exc:
        return {"ok": False, "code": exc.code, "message": exc.message, "remedy": exc.remedy}
    finally:
        if close is not None:
            close()
    info = inventory.host
    return {
        "ok": True,
        "name": info.name,
        "os": info.os_version,
        "vms": len(inventory.vms),
        "cluster": inventory.cluster.name if inventory.cluster else "",
    }


def _save(request, form: HostForm, host: Host | None) -> Host:
    from audit.log import record

    data = form.cleaned_data
    fqdn = host.fqdn if host else data["fqdn"]
    with transaction.atomic():
        host, created = Host.objects.update_or_create(
            fqdn=fqdn,
            defaults={
                "name": fqdn.split(".")[0],
                "address": data.get("address") or fqdn,
                "port": data["port"],
                "transport": data["transport"],
            },
        )
        credential = HostCredential.objects.filter(host=host).first() or HostCredential(host=host)
        credential.auth, credential.username = data["auth"], data["username"]
        if data.get("password"):
            credential.set_password(data["password"])
        credential.save()
        record(
            "host.add" if created else "host.change",
            request=request,
            target=host,
            details={
                "address": host.address,
                "port": host.port,
                "transport": host.transport,
                "auth": credential.auth,
                "username": credential.username,
                "password_changed": bool(data.get("password")),
            },
        )
    _sync(host)
    return host


def _sync(host: Host) -> None:
    """Read the new host's inventory now; a failure marks it unreachable with the reason (sync does)."""
    from fabric.driver import get_driver
    from fabric.sync import sync_inventory

    try:
        sync_inventory(get_driver(), [host])
    except Exception:
        log.exception("the first inventory sync of %s failed", host.fqdn)


@require_POST
def host_remove(request, fqdn: str):
    """Remove a host from the console (not from Hyper-V): confirmed, audited; refused while its
    history needs it (fabric.removal)."""
    _allowed(request)
    host = get_object_or_404(Host, fqdn=fqdn)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Tick the box to confirm that %(host)s is to be removed.") % {"host": host.name})
        return redirect("fabric_admin:host_edit", fqdn)
    try:
        remove_host(host, user=request.user, request=request)
    except CannotRemove as exc:
        messages.error(request, localized_error(exc))
        return redirect("fabric_admin:host_edit", fqdn)
    messages.success(request, _("%(host)s was removed from the console; nothing changed on it.") % {"host": host.name})
    return redirect("fabric:hosts")
