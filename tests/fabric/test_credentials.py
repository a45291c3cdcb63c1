"""Host credentials: encrypted at rest, resolved for the driver, and the staff page that adds a host."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from fabric.credentials import HostCredential, credential_for, decrypt, forget_cached, resolve
from fabric.hyperv.api import Connection
from fabric.models import Host
from tests.fabric.conftest import PASSWORD, USER

SECRET = "Tr0ub4dor&3-never-shown"


@pytest.fixture(autouse=True)
def own_key(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.CREDENTIAL_KEY = ""
    forget_cached()
    yield
    forget_cached()


def make_host(fqdn="hv01.contoso.test", **kw):
    return Host.objects.create(fqdn=fqdn, name=fqdn.split(".")[0], address=kw.pop("address", "10.0.0.1"), **kw)


def store_credential(host=None, username="CONTOSO\\svc-hyperv", password=SECRET, auth="negotiate"):
    credential = HostCredential(host=host, username=username, auth=auth)
    credential.set_password(password)
    credential.save()
    return credential


@pytest.mark.django_db
def test_it_stores_only_ciphertext_and_decrypts_with_the_key(settings, tmp_path):
    credential = store_credential(make_host())

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM fabric_hostcredential WHERE id = %s", [credential.pk])
        raw = bytes(cursor.fetchone()[0])
    assert SECRET.encode() not in raw
    assert decrypt(HostCredential.objects.get(pk=credential.pk)) == SECRET
    assert SECRET not in repr(credential) and SECRET not in str(credential)
    key_file = tmp_path / "credential_key"
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_it_uses_the_key_from_the_environment_and_refuses_a_wrong_one(settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEY = first
    credential = store_credential(make_host())

    settings.CREDENTIAL_KEY = f"{second},{first}"  # rotation: a new key first, the old one still decrypts
    assert decrypt(credential) == SECRET
    settings.CREDENTIAL_KEY = second
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        decrypt(credential)
    settings.CREDENTIAL_KEY = "not-a-key"
    with pytest.raises(ImproperlyConfigured, match="Fernet"):
        decrypt(credential)


@pytest.mark.django_db
def test_it_resolves_the_hosts_own_credential_then_the_default_then_the_emulators(settings):
    own, other = make_host("hv01.contoso.test"), make_host("hv02.contoso.test", address="10.0.0.2")
    store_credential(own, username="CONTOSO\\hv01-admin", auth="kerberos")
    settings.HYPERV_EMULATOR = True
    settings.HYPERV_EMULATOR_USER, settings.HYPERV_EMULATOR_PASSWORD = "emu", "emu-pass"

    def conn(host):
        return Connection(host.fqdn, host.address, 5986)

    assert (resolve(conn(own)).username, resolve(conn(own)).auth) == ("CONTOSO\\hv01-admin", "kerberos")
    assert (resolve(conn(other)).username, resolve(conn(other)).auth) == ("emu", "basic")
    store_credential(None, username="CONTOSO\\default")
    assert resolve(conn(other)).username == "CONTOSO\\default"
    assert resolve(conn(other)).password == SECRET
    assert credential_for("hv02.contoso.test").is_default
    explicit = Connection("x.contoso.test", "10.0.0.9", 5986, username="given", password="given-pass")
    assert resolve(explicit) is explicit


@pytest.mark.django_db
def test_the_host_page_is_for_staff_with_the_manage_hosts_permission(admin_user, operator_user):
    url = reverse("fabric_admin:host_add")
    anonymous, operator, admin = Client(), Client(), Client()
    operator.force_login(operator_user)
    admin.force_login(admin_user)

    assert anonymous.get(url).status_code == 302  # to the login page
    assert operator.get(url).status_code == 403
    page = admin.get(url)
    assert page.status_code == 200
    assert b"Test connection" in page.content


def test_adding_a_host_encrypts_its_password_and_never_shows_or_logs_it(admin_client, demo_fabric, caplog):
    caplog.set_level(logging.DEBUG)
    form = {
        "fqdn": "hv-new9.contoso.test",
        "address": "127.0.0.99",
        "port": 5986,
        "transport": "https",
        "auth": "kerberos",
        "username": "CONTOSO\\svc-hyperv",
        "password": SECRET,
        "action": "save",
    }
    response = admin_client.post(reverse("fabric_admin:host_add"), form)

    host = Host.objects.get(fqdn="hv-new9.contoso.test")
    assert response.status_code == 302
    assert (host.address, host.port, host.transport) == ("127.0.0.99", 5986, "https")
    assert decrypt(host.credential) == SECRET
    assert not host.reachable  # the sync could not reach it, and says why
    assert "unreachable" in host.last_error
    event = AuditEvent.objects.filter(action="host.add").get()
    assert event.details["username"] == "CONTOSO\\svc-hyperv"
    assert SECRET not in str(event.details)
    assert SECRET not in caplog.text
    edit = admin_client.get(reverse("fabric_admin:host_edit", args=[host.fqdn]))
    assert SECRET.encode() not in edit.content
    assert b"CONTOSO\\svc-hyperv" in edit.content


def test_a_form_with_errors_does_not_send_the_password_back(admin_client, demo_fabric):
    response = admin_client.post(
        reverse("fabric_admin:host_add"),
        {"fqdn": "not a name", "port": 5986, "transport": "https", "auth": "ntlm", "username": "u", "password": SECRET},
    )

    assert response.status_code == 200
    assert SECRET.encode() not in response.content
    assert not Host.objects.filter(fqdn="not a name").exists()


def test_test_connection_reads_the_host_through_the_driver_and_saves_nothing(admin_client, demo_fabric):
    form = {
        "address": "10.9.9.9",
        "port": 5986,
        "transport": "https",
        "auth": "basic",
        "username": "u",
        "password": SECRET,
        "action": "test",
    }

    response = admin_client.post(reverse("fabric_admin:host_edit", args=["hv-s1.contoso.test"]), form)

    assert b"Connected: hv-s1 runs Windows Server 2022 Datacenter" in response.content
    assert SECRET.encode() not in response.content
    host = Host.objects.get(fqdn="hv-s1.contoso.test")
    assert host.address != "10.9.9.9"
    assert not HostCredential.objects.filter(host=host).exists()


def test_test_connection_through_the_emulator_over_winrm(admin_client, settings, emulator):
    settings.HYPERV_DRIVER = "psrp"
    settings.HYPERV_ALLOW_BASIC_HTTP = True
    address, port = emulator.address("hv-s3.contoso.test")
    form = {
        "fqdn": "hv-s3.contoso.test",
        "address": address,
        "port": port,
        "transport": "http",
        "auth": "basic",
        "username": USER,
        "action": "test",
    }

    connected = admin_client.post(reverse("fabric_admin:host_add"), {**form, "password": PASSWORD})
    refused = admin_client.post(reverse("fabric_admin:host_add"), {**form, "password": "wrong"})

    assert b"Connected: hv-s3 runs Windows Server 2019 Datacenter with 7 virtual machines" in connected.content
    assert b"Connection failed</strong> (AccessDenied)" in refused.content
    assert b"wrong" not in refused.content


def _edit_form(host, **changes):
    form = {
        "address": host.address,
        "port": host.port,
        "transport": host.transport,
        "auth": "negotiate",
        "username": "CONTOSO\\svc-hyperv",
        "password": "",
    }
    return {**form, **changes}


@pytest.mark.parametrize(
    "change",
    [{"address": "203.0.113.7"}, {"port": 15986}, {"transport": "other"}, {"auth": "basic"}],
    ids=["address", "port", "transport", "auth"],
)
@pytest.mark.parametrize("action", ["test", "save"])
def test_a_stored_password_is_never_sent_to_a_new_endpoint(admin_client, demo_fabric, monkeypatch, change, action):
    host = Host.objects.get(fqdn="hv-s1.contoso.test")
    store_credential(host)
    before = (host.address, host.port, host.transport)
    if change.get("transport") == "other":
        change = {"transport": "http" if host.transport == "https" else "https"}
    tried = []
    monkeypatch.setattr("fabric.admin_views._test", lambda conn: tried.append(conn) or {"ok": False, "code": "Mocked"})

    response = admin_client.post(
        reverse("fabric_admin:host_edit", args=[host.fqdn]), {**_edit_form(host, **change), "action": action}
    )

    assert response.status_code == 200
    assert b"Type the password again" in response.content
    assert tried == []  # no connection was opened with the stored password
    host.refresh_from_db()
    assert (host.address, host.port, host.transport, host.credential.auth) == (*before, "negotiate")


def test_the_stored_password_is_kept_for_the_same_endpoint_and_a_new_one_needs_it_typed(
    admin_client, demo_fabric, monkeypatch
):
    host = Host.objects.get(fqdn="hv-s1.contoso.test")
    store_credential(host)
    tried = []
    monkeypatch.setattr("fabric.admin_views._test", lambda conn: tried.append(conn) or {"ok": False, "code": "Mocked"})
    url = reverse("fabric_admin:host_edit", args=[host.fqdn])

    same = admin_client.post(url, {**_edit_form(host, username="CONTOSO\\other"), "action": "test"})
    moved_form = _edit_form(host, address="203.0.113.7", password="typed-again")
    moved = admin_client.post(url, {**moved_form, "action": "test"})

    assert b"Type the password again" not in same.content
    assert b"Type the password again" not in moved.content
    assert [(c.address, c.password) for c in tried] == [(host.address, SECRET), ("203.0.113.7", "typed-again")]


# --- issue 19 defect 9: an address as FQDN, a host never read, removing a host ---------------------

HOST_FORM = {"port": 5986, "transport": "https", "auth": "kerberos", "username": "u", "password": SECRET}


@pytest.mark.parametrize("typed", ["127.0.0.55", "10.1.2.3", "::1", "[fe80::1]"])
def test_an_ip_address_is_refused_as_the_fqdn_with_where_it_belongs(admin_client, demo_fabric, typed):
    # 127.0.0.55 used to make a host named "127", shown with values it never read.
    response = admin_client.post(reverse("fabric_admin:host_add"), {**HOST_FORM, "fqdn": typed, "action": "save"})
    assert response.status_code == 200
    errors = response.context["form"].errors["fqdn"]
    assert errors == [
        f"{typed} is an IP address, not a host name: give the host's "
        "fully qualified name (e.g. hv01.contoso.com), and the address under Address if WinRM must use it."
    ]
    assert Host.objects.filter(name__in=["127", "10"]).count() == 0
    assert not AuditEvent.objects.filter(action="host.add").exists()


@pytest.mark.parametrize("typed", ["hv01", "hv01..contoso.test", "-hv.contoso.test", "hv_01.contoso.test", "hv.123"])
def test_a_name_that_is_no_fqdn_is_refused(admin_client, demo_fabric, typed):
    response = admin_client.post(reverse("fabric_admin:host_add"), {**HOST_FORM, "fqdn": typed, "action": "save"})
    assert response.context["form"].errors["fqdn"] == ["Give the host's fully qualified name, e.g. hv01.contoso.com"]


def test_a_host_never_read_shows_no_figures_and_is_offered_for_no_settings_change(admin_client, demo_fabric):
    host = make_host("hv-new9.contoso.test", last_error="hv-new9.contoso.test is unreachable: connection refused")
    page = admin_client.get(host.get_absolute_url()).content.decode()
    assert "Not read yet" in page and "CPU load" not in page and "Disabled" not in page
    listing = admin_client.get(reverse("fabric:hosts")).content.decode()
    row = listing[listing.index('title="hv-new9.contoso.test"') :].split("</tr>")[0]
    assert "not read yet" in row and "2 / 2" not in row and "0 bytes" not in row
    settings_page = admin_client.get(reverse("fabric:settings")).content.decode()
    assert 'value="hv-new9.contoso.test"' not in settings_page  # not in "Apply to"
    answer = admin_client.post(reverse("fabric:settings"), {"hosts": [host.fqdn], "max_live_migrations": 3})
    assert answer.status_code == 400 and "hosts" in answer.context["form"].errors
    redirected = admin_client.get(reverse("fabric:host_settings", args=[host.fqdn]))
    assert redirected.status_code == 302 and redirected["Location"] == host.get_absolute_url()


def test_a_host_is_removed_with_its_credential_and_inventory_audited(admin_client, demo_fabric):
    host = make_host("hv-new9.contoso.test")
    store_credential(host)
    url = reverse("fabric_admin:host_remove", args=[host.fqdn])

    unconfirmed = admin_client.post(url, {}, follow=True)
    assert "Tick the box to confirm" in unconfirmed.content.decode()
    assert Host.objects.filter(pk=host.pk).exists()

    done = admin_client.post(url, {"confirm": "yes"}, follow=True)
    assert "hv-new9 was removed from the console; nothing changed on it." in done.content.decode()
    assert not Host.objects.filter(fqdn="hv-new9.contoso.test").exists()
    assert not HostCredential.objects.filter(host_id=host.pk).exists()
    event = AuditEvent.objects.get(action="host.remove")
    assert event.target_name == "hv-new9.contoso.test" and event.username == "admin"


def test_a_host_that_jobs_name_stays(admin_client, demo_fabric):
    from fabric.models import VirtualMachine
    from migrations_ui.models import MigrationJob

    vm = VirtualMachine.objects.get(name="file-s01")
    other = Host.objects.exclude(pk=vm.host_id).first()
    MigrationJob.objects.create(kind="live", vm=vm, vm_name=vm.name, source=vm.host, destination=other)
    vms_before = VirtualMachine.objects.filter(host=vm.host).count()

    answer = admin_client.post(
        reverse("fabric_admin:host_remove", args=[vm.host.fqdn]), {"confirm": "yes"}, follow=True
    )
    assert "stays: 1 migration jobs or batches name it or its VMs" in answer.content.decode()
    assert VirtualMachine.objects.filter(host=vm.host).count() == vms_before  # nothing deleted
    assert not AuditEvent.objects.filter(action="host.remove").exists()


def test_a_refused_connection_reads_as_a_reason_not_a_python_exception():
    import requests

    from fabric.hyperv.psrp_session import connection_reason

    wrapped = (
        "HTTPSConnectionPool(host='hv99.contoso.test', port=5986): Max retries exceeded with url: /wsman "
        '(Caused by NameResolutionError("<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to resolve '
        "'hv99.contoso.test' ([Errno -2] Name or service not known)\"))"
    )
    assert connection_reason(requests.ConnectionError(wrapped)) == "the name does not resolve (DNS)"
    unreachable = wrapped.replace("Name or service not known", "No route to host")
    assert connection_reason(requests.ConnectionError(unreachable.replace("NameResolution", "NewConnection"))) == (
        "no route to the host's address"
    )
    odd = "HTTPSConnectionPool(host='x', port=1): Max retries (Caused by NewConnectionError('[Errno 99] Cannot assign"
    odd += " requested address'))"
    assert connection_reason(requests.ConnectionError(odd)) == "Cannot assign requested address"
