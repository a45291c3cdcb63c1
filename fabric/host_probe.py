"""Gathering the Facts fabric.host_check judges, from one host, without changing anything on it.

In order: a TCP connection to the WinRM port; for HTTPS a TLS handshake validated as the driver
validates it (HYPERV_CA_BUNDLE or the system's CAs, the address the driver dials); one POST to
/wsman without credentials (WinRM answers 401 naming the authentications it accepts, and HTTP.sys
dates every answer: the host's clock); then a logon through the pypsrp driver with the host's
stored credential, the read-only cmdlets the inventory sends for the host's settings, and
Get-Cluster; on a cluster node whose session is not CredSSP, the CredSSP logon the driver makes for
the cluster cmdlets, with Get-Cluster over it. The switches other hosts' VMs use come from the
inventory. run_check() adds the one audit row; nothing else is written.
"""

from __future__ import annotations

import datetime
import email.utils
import os
import socket
import ssl
import time
import warnings
from dataclasses import dataclass

import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from urllib3.exceptions import InsecureRequestWarning

from fabric.driver import credentials_for, psrp_options
from fabric.host_check import Facts, Failure, Result, Settings, SwitchUse, Tls, evaluate, failed
from fabric.hyperv import psrp_parse as parse
from fabric.hyperv.api import HyperVError
from fabric.hyperv.psrp import HOST_STATEMENTS, PsrpDriver
from fabric.hyperv.psrp_session import HostSession, error_id
from fabric.models import Host, VirtualMachine
from fabric.sync import connection_for
from utilities.texts import Msg

SCHEMES = ("Negotiate", "Kerberos", "CredSSP", "NTLM", "Basic", "Digest")
clock = time.time  # the console's clock, compared with the host's (tests set it off)


@dataclass
class Report:
    host: Host
    results: list[Result]
    checked_at: datetime.datetime

    @property
    def ok(self) -> bool:
        return not failed(self.results)

    def as_json(self) -> dict:
        return {
            "host": self.host.fqdn,
            "ok": self.ok,
            "checked_at": self.checked_at.isoformat(),
            "results": [r.as_json() for r in self.results],
        }


def run_check(host: Host, *, request=None, actor=None) -> Report:
    """Every check against the host, recorded in the audit trail (the only write)."""
    from audit.log import record

    results = evaluate(gather(host))
    report = Report(host, results, _utcnow())
    record(
        "host.checked",
        request=request,
        actor=actor,
        target=host,
        details={"ok": report.ok, "results": {r.id: r.status for r in results}},
        outcome="success" if report.ok else "failure",
    )
    return report


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def gather(host: Host) -> Facts:
    conn, problem = connection_for(host), None
    try:
        conn = credentials_for(conn)
    except ImproperlyConfigured as exc:  # a stored password CREDENTIAL_KEY cannot decrypt: a result, not a 500
        problem = Failure(
            "CredentialKey", str(exc), Msg("Store the host's WinRM password again, or restore CREDENTIAL_KEY.")
        )
    facts = Facts(
        fqdn=host.fqdn,
        address=conn.address or conn.fqdn,
        port=conn.port,
        transport=conn.transport.lower(),
        configured_auth=conn.auth.lower(),
        username=conn.username,
        inventory_cluster=host.cluster.name if host.cluster_id else "",
        driver=settings.HYPERV_DRIVER,
    )
    if facts.driver != "psrp":
        return facts
    options = psrp_options()
    facts.tcp_error = _tcp(facts.address, facts.port, options.connect_timeout)
    if facts.tcp_error:
        return facts
    if facts.transport == "https":
        facts.tls = _tls(facts.address, facts.port, options.cert_validation, options.connect_timeout)
    _http(facts, options.connect_timeout, options.read_timeout)
    if problem is not None:
        facts.logon = problem
    else:
        _session(facts, conn, options)
    facts.switch_uses = _switch_uses(host)
    return facts


# --- network ------------------------------------------------------------------------------------------


def _tcp(address: str, port: int, timeout: float) -> str:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return ""
    except socket.gaierror as exc:
        return f"the name does not resolve ({exc.strerror})"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return exc.strerror or str(exc)


def _tls(address: str, port: int, validation: bool | str, timeout: float) -> Tls:
    """The handshake as the driver makes it; when it fails, the certificate read without validation to say why."""
    bundle = validation if isinstance(validation, str) else ""
    context = ssl.create_default_context(cafile=_ca_file(validation))
    error, der = "", None
    try:
        der = _peer_certificate(context, address, port, timeout)
    except ssl.SSLCertVerificationError as exc:
        error = exc.verify_message or str(exc)
    except (ssl.SSLError, OSError) as exc:
        return Tls(False, f"TLS handshake failed: {exc}", ca_bundle=bundle)
    if der is None:
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        try:
            der = _peer_certificate(unverified, address, port, timeout)
        except (ssl.SSLError, OSError):
            return Tls(False, error, ca_bundle=bundle)
    return _described(x509.load_der_x509_certificate(der), not error, error, bundle)


def _ca_file(validation: bool | str) -> str:
    """The CAs the driver's requests session trusts: HYPERV_CA_BUNDLE, else what requests takes from
    the environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, as pypsrp lets it), else certifi's bundle."""
    if isinstance(validation, str):
        return validation
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where()


def _peer_certificate(context: ssl.SSLContext, address: str, port: int, timeout: float) -> bytes | None:
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def _described(cert: x509.Certificate, verified: bool, error: str, bundle: str) -> Tls:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName), *(str(a) for a in san.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        names = []
    return Tls(
        verified=verified,
        error=error,
        subject=_common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        names=tuple(names),
        not_after=cert.not_valid_after_utc,
        ca_bundle=bundle,
    )


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _http(facts: Facts, connect_timeout: float, read_timeout: float) -> None:
    """One unauthenticated POST: the status, the offered schemes and the host's Date; no credentials sent.
    The certificate is judged by _tls; here it is not validated, so that a bad one still shows the rest."""
    url = f"{facts.transport}://{_url_host(facts.address)}:{facts.port}/wsman"
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the driver dials hosts directly
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)
            sent = clock()
            answer = session.post(
                url,
                data=b"",
                headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
                verify=False,
                timeout=(connect_timeout, read_timeout),
            )
            received = clock()
    except requests.RequestException as exc:
        facts.http_error = _short(exc)
        return
    finally:
        session.close()
    facts.http_status = answer.status_code
    facts.offered_auth = offered_schemes(answer.headers.get("WWW-Authenticate", ""))
    facts.now = datetime.datetime.fromtimestamp((sent + received) / 2, datetime.UTC)
    facts.host_date = _date(answer.headers.get("Date"))


def offered_schemes(header: str) -> tuple[str, ...]:
    """The schemes of a (possibly folded) WWW-Authenticate header, as WinRM names them."""
    found = []
    for part in header.split(","):
        word = part.strip().split(" ")[0].lower()
        scheme = next((s for s in SCHEMES if s.lower() == word), None)
        if scheme and scheme not in found:
            found.append(scheme)
    return tuple(found)


def _date(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:197] + "..."


# --- the PowerShell session -------------------------------------------------------------------------


def _session(facts: Facts, conn, options) -> None:
    """Log on through the driver (a pool of its own, closed at the end: a fresh logon, nothing shared)."""
    driver = PsrpDriver(options)
    session = driver.session(conn)
    try:
        try:
            output = session.run(*HOST_STATEMENTS).output
        except HyperVError as exc:
            if session.pool is None:  # the logon (or the transport) failed
                facts.logon = Failure(exc.code, exc.message, exc.remedy)
                return
            facts.settings_error = Failure(exc.code, exc.message, exc.remedy)
        except Exception as exc:  # whatever pypsrp raises that the driver does not map: a result, never a 500
            facts.logon = Failure(type(exc).__name__, _short(exc))
            return
        else:
            facts.settings = _settings(conn.fqdn, output)
        facts.negotiated = negotiated_auth(session)
        facts.cluster, facts.cluster_error = _cluster(session)
        if facts.is_node and facts.negotiated != "credssp":
            _credssp(facts, driver, conn)
    finally:
        driver.close()


def _credssp(facts: Facts, driver: PsrpDriver, conn) -> None:
    """The separate CredSSP logon the driver makes for Move-/Add-ClusterVirtualMachineRole (same user and
    password, PsrpDriver.session(credssp=True)), opened by a harmless read; no move is run."""
    facts.credssp_tried = True
    session = None
    try:
        session = driver.session(conn, credssp=True)
        session.run([("Get-Cluster", {})])
    except Exception as exc:  # whatever pypsrp raises that the driver does not map too: a result, never a 500
        if session is not None and session.pool is not None:
            return  # logged on: only the read failed, and a node's Get-Cluster was judged on its own
        if isinstance(exc, HyperVError):  # CredSSPRequired, CredSSPNotEnabled, AccessDenied, unreachable...
            facts.credssp_error = Failure(exc.code, exc.message, exc.remedy)
        else:
            facts.credssp_error = Failure(type(exc).__name__, _short(exc))


def _settings(fqdn: str, output: list) -> Settings:
    info = parse.host_info(fqdn, parse.by_kind(output))
    return Settings(
        migration_enabled=info.migration_enabled,
        auth_type=info.auth_type,
        performance_option=info.performance_option,
        max_live_migrations=info.max_live_migrations,
        max_storage_migrations=info.max_storage_migrations,
        use_any_network=info.use_any_network,
        migration_networks=info.migration_networks,
        virtual_switches=info.virtual_switches,
    )


def _cluster(session: HostSession) -> tuple[str, str]:
    """(cluster name, "") for a node; ("", error id) when Get-Cluster wrote an error instead."""
    try:
        result = session.run([("Get-Cluster", {})])
    except HyperVError as exc:
        return "", exc.code
    for item in result.output:
        name = parse.props(item).get("Name")
        if name:
            return str(name), ""
    return "", error_id(result.errors[0]) if result.errors else "ClusterEndpointNotRegistered"


def negotiated_auth(session: HostSession) -> str:
    """The authentication the logon used, read from pypsrp's transport: its requests auth object, and for
    Negotiate the SPNEGO context's negotiated protocol (kerberos or ntlm). "" when it cannot be told."""
    pool = session.pool
    transport = getattr(getattr(pool, "connection", None), "transport", None)
    auth = getattr(getattr(transport, "session", None), "auth", None)
    if auth is None:
        return ""
    if "credssp" in type(auth).__name__.lower():
        return "credssp"
    if isinstance(auth, requests.auth.HTTPBasicAuth):
        return "basic"
    for context in (getattr(auth, "contexts", None) or {}).values():
        protocol = getattr(context, "negotiated_protocol", None)
        if protocol:
            return str(protocol).lower()
    return ""


def _switch_uses(host: Host) -> list[SwitchUse]:
    vms = VirtualMachine.objects.filter(removed=False).exclude(host=host).select_related("host")
    uses = []
    for vm in vms.only("name", "switch_names", "host__name", "host__cluster_id"):
        same = host.cluster_id is not None and vm.host.cluster_id == host.cluster_id
        uses += [SwitchUse(s, vm.name, vm.host.name, same) for s in vm.switch_names]
    return uses
