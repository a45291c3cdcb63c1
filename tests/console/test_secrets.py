"""A known host password, set through the console, must appear nowhere: pages, logs, audit, exports."""

import logging
import socket

import pytest
from django.urls import reverse

from fabric.credentials import HostCredential
from fabric.models import Host

pytestmark = pytest.mark.django_db
PASSWORD = "Kn0wn-S3cret-Pa55!"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: a refusing host


def test_a_host_password_is_never_shown_logged_or_audited(admin_client, caplog, settings):
    settings.HYPERV_DRIVER = "psrp"
    caplog.set_level(logging.DEBUG)
    form = {
        "fqdn": "hv-secret.contoso.test",
        "address": "127.0.0.1",
        "port": closed_port(),
        "transport": "http",
        "auth": "basic",
        "username": "CONTOSO\\svc-hyperv",
        "password": PASSWORD,
    }
    pages = [admin_client.post(reverse("fabric_admin:host_add"), {**form, "action": "test"})]
    pages.append(admin_client.post(reverse("fabric_admin:host_add"), form, follow=True))
    host = Host.objects.get(fqdn="hv-secret.contoso.test")
    for url in [
        "/",
        host.get_absolute_url(),
        reverse("fabric_admin:host_edit", args=[host.fqdn]),
        reverse("audit:list"),
        reverse("audit:export_csv"),
        reverse("audit:export_json"),
        reverse("audit:export_jsonl"),
        reverse("admin:audit_auditevent_changelist"),
    ]:
        pages.append(admin_client.get(url))

    for response in pages:
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert PASSWORD.encode() not in body, response.request["PATH_INFO"]
    assert PASSWORD not in caplog.text
    credential = HostCredential.objects.get(host=host)
    assert PASSWORD.encode() not in bytes(credential.secret)
    assert PASSWORD not in repr(credential) and PASSWORD not in str(credential)
    assert host.reachable is False and host.last_error  # the sync failed, and said why without the secret
    assert PASSWORD not in host.last_error
