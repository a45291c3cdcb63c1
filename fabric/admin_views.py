"""Adding and editing a managed host with its WinRM credentials, and testing the connection first.

Staff with the manage_hosts permission only. The password is write-only: it is encrypted when saved
(fabric.credentials), never put back into the form, never logged, never in the audit details, and
hidden from Django's error reports (sensitive_post_parameters / sensitive_variables).
"""

from __future__ import annotations

import logging

from django import forms
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from access import Perm, check
from fabric.credentials import HostCredential, WinRMAuth
from fabric.hyperv.api import Connection, HyperVError
from fabric.models import Host, Transport

log = logging.getLogger(__name__)


class HostForm(forms.Form):
    fqdn = forms.CharField(label="FQDN", max_length=255, help_text="hv01.contoso.com")
    address = forms.CharField(
        label=_("Address"),
        max_length=255,
        required=False,
        help_text=_("IP or DNS name WinRM answers on (default: the FQDN)"),
    )
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=5986)
    transport = forms.ChoiceField(label=_("Transport"), choices=Transport.choices, initial=Transport.HTTPS)
    auth = forms.ChoiceField(label=_("Authentication"), choices=WinRMAuth.choices, initial=WinRMAuth.NEGOTIATE)
    username = forms.CharField(label=_("User name"), max_length=255, help_text=_("DOMAIN\\user or user@domain"))
    # render_value=False: a password typed once is never sent back to the browser, not even on errors.
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput(render_value=False), required=False, strip=False
    )

    def __init__(self, *args, editing: Host | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing is not None:
            self.fields["fqdn"].disabled = True
            self.fields["password"].help_text = _(
                "Leave empty to keep the stored password (only while address, port, transport and "
                "authentication stay the same)"
            )

    def clean_fqdn(self) -> str:
        fqdn = self.cleaned_data["fqdn"].strip().lower().rstrip(".")
        if self.editing is None and Host.objects.filter(fqdn=fqdn).exists():
            raise forms.ValidationError(_("This host is already managed: edit it instead."))
        if "." not in fqdn or any(c.isspace() or c in "/\\@" for c in fqdn):
            raise forms.ValidationError(_("Give the host's fully qualified name, e.g. hv01.contoso.com"))
        return fqdn

    def clean(self):
        data = super().clean()
        stored = HostCredential.objects.filter(host=self.editing).first() if self.editing is not None else None
        if not data.get("password") and stored is None:
            self.add_error("password", _("A password is needed for a new host."))
        elif not data.get("password") and self._endpoint_changed(data, stored):
            # The stored password goes only where it went before: else anyone who may edit a host
            # could read it back by pointing the host at a listener of their own.
            self.add_error(
                "password",
                _(
                    "Type the password again: the address, port, transport or authentication changed, "
                    "and the stored password is never sent to a new endpoint."
                ),
            )
        return data

    def _endpoint_changed(self, data: dict, stored: HostCredential) -> bool:
        """Whether the form points the stored password anywhere (or any way) it was not sent before."""
        host = self.editing
        before = (host.address or host.fqdn, host.port, host.transport, stored.auth)
        after = (data.get("address") or host.fqdn, data.get("port"), data.get("transport"), data.get("auth"))
        if None in after:
            return False  # that field has its own error already
        return before != after

    @sensitive_variables("password")
    def connection(self) -> Connection:
        """The connection as typed (with the stored password when the field was left empty)."""
        data = self.cleaned_data
        password = data.get("password") or ""
        if not password and self.editing is not None:
            from fabric.credentials import decrypt

            password = decrypt(HostCredential.objects.get(host=self.editing))
        return Connection(
            fqdn=data["fqdn"],
            address=data.get("address") or data["fqdn"],
            port=data["port"],
            transport=data["transport"],
            auth=data["auth"],
            username=data["username"],
            password=password,
        )


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
