"""check_host against the host emulator over real WinRM: the demo hosts pass, hosts made to lack a
prerequisite fail with its remedy, and nothing but an audit row is written."""

import datetime
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from fabric import host_probe
from fabric.credentials import HostCredential, forget_cached
from fabric.driver import get_driver
from fabric.emulator import Emulator, build_emulator
from fabric.emulator.tls import ensure_certificates, server_context
from fabric.host_check import FAIL, PASS, UNKNOWN, WARN
from fabric.models import Host
from fabric.sim.store import FabricStore
from fabric.sync import sync_inventory
from tests.fabric.conftest import PASSWORD, SCALE, USER

pytestmark = pytest.mark.django_db
D = ".contoso.test"
DEMO = ["hv-old1", "hv-old2", "hv-new1", "hv-new2", "hv-new3", "hv-s1", "hv-s2", "hv-s3"]


def use_emulator(settings, store: FabricStore, transport: str = "http") -> None:
    """The console set up for the emulated fabric, with its hosts registered and synced."""
    settings.HYPERV_DRIVER = "psrp"
    settings.HYPERV_EMULATOR = True
    settings.HYPERV_EMULATOR_USER, settings.HYPERV_EMULATOR_PASSWORD = USER, PASSWORD
    settings.HYPERV_ALLOW_BASIC_HTTP = True
    settings.HYPERV_CONNECT_TIMEOUT, settings.HYPERV_READ_TIMEOUT = 2, 12
    with store.session() as fabric:
        for conn in fabric.connections():
            Host.objects.create(
                fqdn=conn.fqdn, name=conn.fqdn.split(".")[0], address=conn.address, port=conn.port, transport=transport
            )
    sync_inventory(get_driver())


@pytest.fixture
def emulated(settings, emulator, emu_store):
    use_emulator(settings, emu_store)
    yield emulator
    get_driver().close()
    forget_cached()  # a credential a test stored is rolled back with its database, not in the cache


def check(name: str) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("check_host", name, "--json", stdout=out)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    report = json.loads(out.getvalue())
    return code, {r["id"]: r for r in report["results"]}


def change_host(store: FabricStore, fqdn: str, **values) -> None:
    with store.session() as fabric:
        for name, value in values.items():
            setattr(fabric.hosts[fqdn], name, value)
        fabric.touch()


def test_every_demo_host_passes_and_the_check_changes_nothing_but_the_audit_trail(emulated):
    before = list(Host.objects.order_by("pk").values())
    sent_before = len(emulated.commands())

    for name in DEMO:
        code, results = check(name)
        assert code == 0, (name, [r for r in results.values() if r["status"] == FAIL])
        assert results["winrm-port"]["status"] == results["winrm-logon"]["status"] == PASS
        assert results["time-skew"]["status"] == PASS
        assert results["live-migration"]["status"] == results["migration-networks"]["status"] == PASS
        # The emulator logs on with Basic: what pypsrp used, read back from its transport.
        assert "agreed on basic" in results["winrm-auth"]["message"]
        # Delegation lives in Active Directory: never passed, never failed from the host alone.
        assert results["migration-auth"]["status"] == UNKNOWN
        assert "use any authentication protocol" in results["migration-auth"]["remedy"]

    assert list(Host.objects.order_by("pk").values()) == before
    sent = {c["cmdlet"] for c in emulated.commands()[sent_before:]}
    assert sent and all(cmdlet.startswith("Get-") for cmdlet in sent), sent  # read-only cmdlets only
    events = AuditEvent.objects.filter(action="host.checked")
    assert events.count() == len(DEMO)
    assert events.filter(target_name="hv-new1").get().details["results"]["winrm-logon"] == PASS


def test_the_cluster_module_tells_nodes_from_standalone_hosts(emulated):
    _, node = check("hv-new1")
    _, standalone = check("hv-s1")

    assert node["failover-clusters"] == {**node["failover-clusters"], "status": PASS}
    assert "CL-NEW" in node["failover-clusters"]["message"]
    assert standalone["failover-clusters"]["status"] == PASS
    assert standalone["failover-clusters"]["message"].startswith("A standalone host")
    assert standalone["cluster-cmdlets"]["status"] == PASS


def test_a_cluster_node_without_a_credssp_session_passes_through_the_drivers_credssp_logon(emulated):
    got_cluster = len(emulated.commands("Get-Cluster"))

    code, results = check("hv-old1")

    result = results["cluster-cmdlets"]
    assert "agreed on basic" in results["winrm-auth"]["message"]  # the ordinary session is not CredSSP
    assert code == 0 and result["status"] == PASS, result
    assert "the console logs on with CredSSP for the cluster cmdlets" in result["message"]
    # Get-Cluster twice: on the ordinary session, then on the CredSSP one the probe opened; nothing else.
    assert [c["host"] for c in emulated.commands("Get-Cluster")[got_cluster:]] == ["hv-old1" + D] * 2
    assert not emulated.commands("Move-ClusterVirtualMachineRole")


def test_a_cluster_node_refusing_credssp_fails_with_the_drivers_remedy(emulated):
    emulated.configure("hv-old1" + D, credssp=False)  # Disable-WSManCredSSP -Role Server

    code, results = check("hv-old1")

    result = results["cluster-cmdlets"]
    assert code == 1 and result["status"] == FAIL
    assert "(CredSSPNotEnabled)" in result["message"] and "Move-ClusterVirtualMachineRole" in result["message"]
    assert result["remedy"].startswith("On every cluster node run Enable-WSManCredSSP -Role Server")
    assert "a user name and password" in result["remedy"]
    assert results["winrm-logon"]["status"] == PASS  # the ordinary logon does not need CredSSP


def test_a_standalone_host_opens_no_credssp_session(emulated):
    got_cluster = len(emulated.commands("Get-Cluster"))

    _, results = check("hv-s1")

    assert results["cluster-cmdlets"]["status"] == PASS
    assert len(emulated.commands("Get-Cluster")[got_cluster:]) == 1  # the ordinary session's only


def test_migration_disabled_on_a_standalone_host_fails_with_enable_vmmigration(emulated, emu_store):
    change_host(emu_store, "hv-s2" + D, migration_enabled=False)

    code, results = check("hv-s2")

    assert code == 1
    assert results["live-migration"]["status"] == FAIL
    assert results["live-migration"]["message"].startswith("Live migration is disabled")
    assert "Enable-VMMigration" in results["live-migration"]["remedy"]


def test_migration_disabled_on_a_cluster_node_only_warns(emulated, emu_store):
    change_host(emu_store, "hv-new2" + D, migration_enabled=False)

    code, results = check("hv-new2")

    assert code == 0
    assert results["live-migration"]["status"] == WARN
    assert "moves inside the cluster work" in results["live-migration"]["message"]


def test_no_migration_network_and_not_any_network_fails(emulated, emu_store):
    change_host(emu_store, "hv-s3" + D, migration_networks=[], use_any_network=False)

    code, results = check("hv-s3")

    assert code == 1
    result = results["migration-networks"]
    assert result["status"] == FAIL
    assert "Add-VMMigrationNetwork" in result["remedy"] and "UseAnyNetworkForMigration" in result["remedy"]


def test_any_network_passes_without_a_listed_subnet(emulated, emu_store):
    change_host(emu_store, "hv-s3" + D, migration_networks=[], use_any_network=True)

    _, results = check("hv-s3")

    assert results["migration-networks"]["status"] == PASS


def test_a_switch_the_cluster_s_vms_use_missing_on_a_node_fails(emulated, emu_store):
    change_host(emu_store, "hv-new3" + D, virtual_switches=["vSwitch-Prod"])  # web-new01/02 on hv-new1 use DMZ

    code, results = check("hv-new3")

    assert code == 1
    result = results["virtual-switches"]
    assert result["status"] == FAIL
    assert "vSwitch-DMZ" in result["message"] and "web-new01 (hv-new1)" in result["message"]
    assert "New-VMSwitch -Name vSwitch-DMZ" in result["remedy"]


def test_a_switch_only_other_hosts_vms_use_warns(emulated):
    _, results = check("hv-s3")  # no DMZ switch: web-dmz01 and web-dmz02 cannot come here

    result = results["virtual-switches"]
    assert result["status"] == WARN
    assert "vSwitch-DMZ" in result["message"] and "web-dmz01 (hv-s1)" in result["message"]


def test_a_host_whose_winrm_port_is_closed_fails_and_the_rest_is_unknown(emulated):
    emulated.stop_host("hv-s3" + D)

    code, results = check("hv-s3")

    assert code == 1
    assert results["winrm-port"]["status"] == FAIL
    assert "connection refused" in results["winrm-port"]["message"]
    assert "open TCP" in results["winrm-port"]["remedy"]
    assert {results[i]["status"] for i in ("winrm-logon", "live-migration", "virtual-switches")} == {UNKNOWN}
    assert AuditEvent.objects.get(action="host.checked").outcome == "failure"


def test_an_unreachable_address_fails(emulated, settings):
    settings.HYPERV_CONNECT_TIMEOUT = 1
    Host.objects.filter(name="hv-s2").update(address="192.0.2.10")  # TEST-NET-1: nothing answers there

    code, results = check("hv-s2")

    assert code == 1 and results["winrm-port"]["status"] == FAIL


def test_a_wrong_password_fails_the_logon_with_the_credential_remedy(emulated):
    credential = HostCredential(host=Host.objects.get(name="hv-s1"), auth="basic", username=USER)
    credential.set_password("not-the-password")
    credential.save()

    code, results = check("hv-s1")

    assert code == 1
    assert results["winrm-port"]["status"] == results["winrm-answer"]["status"] == PASS
    assert results["winrm-logon"]["status"] == FAIL
    assert "refused the WinRM credentials" in results["winrm-logon"]["message"]
    assert results["winrm-logon"]["remedy"] == "Check the user and password stored for this host"
    assert results["live-migration"]["status"] == UNKNOWN


def test_a_stored_password_the_key_cannot_decrypt_fails_the_logon_not_the_page(emulated):
    credential = HostCredential(host=Host.objects.get(name="hv-s2"), auth="basic", username=USER)
    credential.secret = b"encrypted with another CREDENTIAL_KEY"
    credential.save()

    code, results = check("hv-s2")

    assert code == 1
    assert results["winrm-logon"]["status"] == FAIL and "(CredentialKey)" in results["winrm-logon"]["message"]
    assert "CREDENTIAL_KEY" in results["winrm-logon"]["remedy"]


def test_a_host_clock_six_minutes_off_fails(emulated, monkeypatch):
    real = host_probe.clock
    monkeypatch.setattr(host_probe, "clock", lambda: real() + 360)  # the console runs 6 minutes ahead

    code, results = check("hv-s1")

    assert code == 1
    assert results["time-skew"]["status"] == FAIL
    assert "behind the console's" in results["time-skew"]["message"]
    assert "5 minutes" in results["time-skew"]["remedy"]


def test_an_unknown_host_exits_2(emulated):
    with pytest.raises(CommandError) as raised:
        call_command("check_host", "hv-nowhere", stdout=io.StringIO())

    assert raised.value.returncode == 2 and "no host 'hv-nowhere' in the inventory" in str(raised.value)


def test_the_text_output_names_each_check_and_its_remedy(emulated, emu_store):
    change_host(emu_store, "hv-s2" + D, migration_enabled=False)
    out = io.StringIO()

    with pytest.raises(CommandError):
        call_command("check_host", "hv-s2", stdout=out)

    text = out.getvalue()
    assert "  FAIL  Live migration: Live migration is disabled" in text
    assert "-> Enable-VMMigration" in text
    assert "PASS  Logon:" in text


# --- HTTPS --------------------------------------------------------------------------------------------


def _https_emulator(store: FabricStore, tls) -> Emulator:
    emulator = Emulator(store, username=USER, password=PASSWORD, tls=tls, free_ports=True, progress_interval=0.05)
    emulator.start()
    return emulator


@pytest.fixture
def https_store(emu_fabric_path):
    store = FabricStore(emu_fabric_path, time_scale=SCALE)
    yield store
    get_driver().close()
    store.close()


def test_over_https_a_certificate_from_the_configured_ca_passes(settings, https_store, tmp_path):
    emulator = build_emulator(
        https_store, username=USER, password=PASSWORD, https=True, cert_dir=tmp_path / "tls", free_ports=True
    )
    emulator.start()
    try:
        settings.HYPERV_CA_BUNDLE = str(tmp_path / "tls" / "ca.pem")
        use_emulator(settings, https_store, transport="https")

        code, results = check("hv-s1")
    finally:
        emulator.stop()

    assert code == 0
    assert results["tls-certificate"]["status"] == PASS
    assert "Hyper-V emulator CA" in results["tls-certificate"]["message"]
    assert results["winrm-answer"]["message"].startswith("WinRM answers on /wsman over HTTPS and offers:")


def test_over_https_a_certificate_no_trusted_ca_signed_fails(settings, https_store, tmp_path):
    emulator = build_emulator(
        https_store, username=USER, password=PASSWORD, https=True, cert_dir=tmp_path / "tls", free_ports=True
    )
    emulator.start()
    try:
        settings.HYPERV_CA_BUNDLE = ""  # the system's CAs, which never signed the emulator's
        settings.HYPERV_EMULATOR_HTTPS = False
        use_emulator(settings, https_store, transport="https")

        code, results = check("hv-s1")
    finally:
        emulator.stop()

    assert code == 1
    result = results["tls-certificate"]
    assert result["status"] == FAIL
    assert "certificate" in result["message"] and "Hyper-V emulator CA" in result["message"]
    assert "HYPERV_CA_BUNDLE" in result["remedy"]
    assert results["winrm-logon"]["status"] == FAIL  # the driver refuses the same certificate
    assert results["winrm-answer"]["status"] == PASS  # WinRM itself answers


def test_over_https_a_certificate_for_other_names_fails_with_the_address_remedy(settings, https_store, tmp_path):
    ca, cert, key = ensure_certificates(tmp_path / "tls", ["other.contoso.test"], ["127.0.0.250"])
    emulator = _https_emulator(https_store, server_context(cert, key))
    try:
        settings.HYPERV_CA_BUNDLE = str(ca)
        use_emulator(settings, https_store, transport="https")

        code, results = check("hv-s2")
    finally:
        emulator.stop()

    assert code == 1
    result = results["tls-certificate"]
    assert result["status"] == FAIL and "other.contoso.test" in result["message"]
    address = Host.objects.get(name="hv-s2").address
    assert result["remedy"].startswith(f"The console dials {address}")


# --- the host page ------------------------------------------------------------------------------------


def _post_check(client, name: str, **headers):
    from django.urls import reverse

    return client.post(reverse("fabric:host_check", args=[Host.objects.get(name=name).fqdn]), **headers)


def test_an_administrator_runs_the_check_from_the_host_page(emulated, admin_client):
    from django.urls import reverse

    page = admin_client.get(reverse("fabric:host", args=["hv-new1" + D])).content.decode()
    assert "Check prerequisites" in page and 'hx-post="/' in page

    response = _post_check(admin_client, "hv-new1", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the fragment only
    assert 'id="check-cluster-cmdlets"' in html and "logs on with CredSSP for the cluster cmdlets" in html
    assert "No check failed" in html
    event = AuditEvent.objects.get(action="host.checked")
    assert (event.username, event.target_name, event.outcome) == ("admin", "hv-new1", "success")


def test_an_operator_may_check_a_viewer_may_not(emulated, operator_client, viewer_user, client):
    assert _post_check(operator_client, "hv-s1", HTTP_HX_REQUEST="true").status_code == 200

    client.force_login(viewer_user)
    refused = _post_check(client, "hv-s1", HTTP_HX_REQUEST="true")

    assert refused.status_code == 403
    assert AuditEvent.objects.filter(action="permission_denied", username="viewer").exists()
    assert AuditEvent.objects.filter(action="host.checked").count() == 1  # the operator's only


def test_a_host_that_is_down_shows_failed_results_not_an_error_page(emulated, admin_client):
    emulated.stop_host("hv-s3" + D)

    response = _post_check(admin_client, "hv-s3")  # without htmx: the whole page, results in place

    html = response.content.decode()
    assert response.status_code == 200
    assert "A check failed" in html and "connection refused" in html
    assert 'id="check-winrm-port"' in html


def test_the_results_read_in_german(emulated, admin_client, settings):
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"

    html = _post_check(admin_client, "hv-old1", HTTP_HX_REQUEST="true").content.decode()

    assert "Keine Prüfung ist fehlgeschlagen" in html
    assert "Cluster-Cmdlets (CredSSP)" in html
    assert "meldet sich die Konsole mit CredSSP an" in html
    assert "Not checked" not in html and "The session is" not in html


def test_with_the_simulator_driver_the_page_says_there_is_nothing_to_check(demo_fabric, admin_client):
    response = _post_check(admin_client, "hv-s1", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "HYPERV_DRIVER=sim" in response.content.decode()


# --- pure evaluation ------------------------------------------------------------------------------------


def _facts(**values):
    from fabric.host_check import Facts, Settings

    now = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.UTC)
    settings = Settings(True, "kerberos", "compression", 2, 2, False, ("10.0.0.0/24",), ("vSwitch-Prod",))
    base = dict(
        fqdn="hv1.contoso.test",
        address="hv1.contoso.test",
        port=5986,
        transport="https",
        configured_auth="negotiate",
        username="CONTOSO\\svc",
        now=now,
        host_date=now,
        http_status=401,
        offered_auth=("Negotiate", "Kerberos"),
        negotiated="kerberos",
        settings=settings,
        cluster_error="CommandNotFoundException",
    )
    return Facts(**{**base, **values})


def _results(**values) -> dict:
    from fabric.host_check import evaluate

    return {r.id: r for r in evaluate(_facts(**values))}


def test_a_certificate_that_expires_within_30_days_warns():
    from fabric.host_check import Tls

    soon = datetime.datetime(2026, 12, 20, tzinfo=datetime.UTC)
    result = _results(tls=Tls(True, subject="hv1", issuer="Contoso CA", not_after=soon))["tls-certificate"]

    assert result.status == WARN and "expires in 14 days" in result.message


def test_an_expired_certificate_fails_with_renew():
    from fabric.host_check import Tls

    result = _results(tls=Tls(False, error="certificate has expired"))["tls-certificate"]

    assert result.status == FAIL and result.remedy.startswith("Renew the host's WinRM certificate")


def test_negotiate_falling_back_to_ntlm_warns_and_kerberos_passes():
    assert _results(negotiated="ntlm")["winrm-auth"].status == WARN
    assert "fell back to NTLM" in _results(negotiated="ntlm")["winrm-auth"].remedy
    assert _results(negotiated="kerberos")["winrm-auth"].status == PASS


NODE = {"cluster": "CL1", "cluster_error": "", "inventory_cluster": "CL1"}


def test_a_node_passes_on_a_credssp_session_or_on_the_credssp_logon_the_probe_made():
    from fabric.host_check import Failure

    assert _results(negotiated="credssp", **NODE)["cluster-cmdlets"].status == PASS
    assert _results(credssp_tried=True, **NODE)["cluster-cmdlets"].status == PASS
    # Tried but no answer, or not tried at all: not known, never passed.
    gone = Failure("unreachable", "hv1.contoso.test is unreachable: connection refused")
    assert _results(credssp_tried=True, credssp_error=gone, **NODE)["cluster-cmdlets"].status == UNKNOWN
    assert _results(**NODE)["cluster-cmdlets"].status == UNKNOWN


def test_a_node_whose_credential_cannot_delegate_fails_with_the_drivers_remedy_in_german(settings):
    from django.utils import translation

    from fabric.host_check import Failure
    from fabric.hyperv.psrp_session import REMEDY_CREDSSP
    from utilities.texts import localized

    ticket_only = Failure("CredSSPRequired", "hv1.contoso.test: ... has no password", REMEDY_CREDSSP)
    result = _results(credssp_tried=True, credssp_error=ticket_only, **NODE)["cluster-cmdlets"]

    assert result.status == FAIL and "(CredSSPRequired)" in result.message
    assert result.remedy == REMEDY_CREDSSP
    with translation.override("de"):
        assert localized(result.remedy).startswith("Auf jedem Clusterknoten Enable-WSManCredSSP -Role Server")
        assert "fehlgeschlagen" in localized(result.message)


def test_credssp_migration_auth_without_a_credssp_session_fails_on_a_standalone_host():
    from fabric.host_check import Settings

    credssp = Settings(True, "credssp", "compression", 2, 2, True, (), ("vSwitch-Prod",))

    assert _results(settings=credssp)["migration-auth"].status == FAIL
    assert _results(settings=credssp, negotiated="credssp")["migration-auth"].status == PASS


def test_a_stopped_cluster_service_on_a_node_fails_and_the_module_missing_means_standalone():
    stopped = _results(cluster_error="ClusterServiceNotRunning", inventory_cluster="CL1")["failover-clusters"]
    missing = _results(cluster_error="CommandNotFoundException")["failover-clusters"]
    unregistered = _results(cluster_error="ClusterEndpointNotRegistered")["failover-clusters"]

    assert stopped.status == FAIL and "Start-ClusterNode" in stopped.remedy
    assert missing.status == PASS and "FailoverClusters module is not installed" in missing.message
    assert unregistered.status == PASS and "in no cluster" in unregistered.message


def test_a_clock_two_minutes_off_warns():
    now = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.UTC)
    result = _results(host_date=now + datetime.timedelta(seconds=120))["time-skew"]

    assert result.status == WARN and "120 s ahead of" in result.message


def test_no_english_is_left_in_the_german_results(emulated, admin_client, settings):
    from tests.console.test_i18n import SAME_IN_GERMAN, data_words, untranslated

    def fragment(language: str) -> str:
        admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        return _post_check(admin_client, "hv-s3", HTTP_HX_REQUEST="true").content.decode()

    english, german = fragment("en"), fragment("de")

    allowed = SAME_IN_GERMAN | data_words() | {"wsman", "kerberos", "compression", "tcpip"}
    assert untranslated(english, german, allowed) == []


# --- the auth pypsrp negotiated, read from its own objects ------------------------------------------------


def _session_with(auth: str):
    """A HostSession whose pool is a real pypsrp RunspacePool over a real WSMan, as after a logon."""
    from pypsrp.powershell import RunspacePool
    from pypsrp.wsman import WSMan

    from fabric.hyperv.api import Connection
    from fabric.hyperv.psrp_session import HostSession, PsrpOptions

    wsman = WSMan("hv1.contoso.test", username="u", password="p", ssl=True, auth=auth, encryption="never")
    wsman.transport.session = wsman.transport._build_session()  # what pypsrp does on its first request
    session = HostSession(Connection("hv1.contoso.test", "hv1.contoso.test", auth=auth), PsrpOptions())
    session.pool = RunspacePool(wsman)
    return session, wsman.transport.session.auth


def test_negotiate_reads_the_protocol_spnego_settled_on():
    import spnego

    session, auth = _session_with("negotiate")
    assert host_probe.negotiated_auth(session) == ""  # no logon yet: nothing to tell

    context = spnego.client("u", "p", hostname="hv1.contoso.test", protocol="negotiate")
    context.step()  # no Kerberos ticket here: SPNEGO falls back to NTLM, as it would against a real host
    auth.contexts["hv1.contoso.test"] = context

    assert host_probe.negotiated_auth(session) == "ntlm"


def test_credssp_and_basic_are_told_by_pypsrp_s_auth_object():
    assert host_probe.negotiated_auth(_session_with("credssp")[0]) == "credssp"
    assert host_probe.negotiated_auth(_session_with("basic")[0]) == "basic"
