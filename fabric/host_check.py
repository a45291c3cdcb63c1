"""What a move depends on, judged from what one host showed (pure: no I/O, no Django).

fabric.host_probe gathers the Facts (TCP, TLS, one unauthenticated WS-Man request, a logon through
the pypsrp driver and read-only cmdlets); evaluate() turns them into one Result per check, each with
its remedy. `manage.py check_host` and the host page's "Check prerequisites" button share both.

A status is pass, warn, fail or unknown. unknown: the fact could not be read (an earlier check
failed) or cannot be read from a host at all (Kerberos delegation lives in Active Directory).
Only fail makes the check fail. Texts are Msg: English in the CLI, JSON and audit trail, translated
on the page.

Sources (facts, not prose): Kerberos allows 5 minutes of clock skew (MS-KILE 1.6, RFC 4120);
WinRM offers CredSSP only when enabled on the service (MS-WSMV 3.1.4.1.29.2, Enable-WSManCredSSP
-Role Server); Move-ClusterVirtualMachineRole / Add-ClusterVirtualMachineRole cannot run remotely
without CredSSP (their help); CredSSP live-migration authentication needs a logon on the source
host, locally or by a CredSSP session ("Set up hosts for live migration without Failover
Clustering"); hyperv.md section 9 for standalone hosts, intra-cluster moves and delegation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from utilities.texts import Msg

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
STATUSES = (PASS, WARN, FAIL, UNKNOWN)
MAX_SKEW_S = 300  # Kerberos' default tolerance
WARN_SKEW_S = 60
CERT_WARN_DAYS = 30
# What a host answers for Get-Cluster when it is not a cluster node (hyperv.md section 9); the third is
# what a node whose cluster service is stopped answers as well.
STANDALONE_IDS = ("ClusterEndpointNotRegistered", "CommandNotFoundException", "ClusterServiceNotRunning")
UNREACHABLE = "unreachable"  # the code of the driver's HostUnreachable: no answer, so nothing was tried

# Each check's title, in the order shown (marked for the catalogue; the page translates them).
TITLES = {
    "winrm-port": "WinRM port",
    "winrm-answer": "WinRM answer",
    "tls-certificate": "TLS certificate",
    "winrm-logon": "Logon",
    "winrm-auth": "Authentication",
    "time-skew": "Clock",
    "failover-clusters": "FailoverClusters module",
    "cluster-cmdlets": "Cluster cmdlets (CredSSP)",
    "live-migration": "Live migration",
    "migration-auth": "Migration authentication",
    "migration-networks": "Migration networks",
    "virtual-switches": "Virtual switches",
}


@dataclass(frozen=True)
class Result:
    id: str
    status: str
    message: str
    remedy: str = ""

    @property
    def title(self) -> str:
        return TITLES.get(self.id, self.id)

    def as_json(self) -> dict:
        return {"id": self.id, "status": self.status, "message": str(self.message), "remedy": str(self.remedy)}


@dataclass(frozen=True)
class Tls:
    """The host's certificate as the console's TLS validation saw it."""

    verified: bool
    error: str = ""  # OpenSSL's verify message when not verified
    subject: str = ""
    issuer: str = ""
    names: tuple[str, ...] = ()  # DNS names and addresses of the subjectAltName
    not_after: datetime.datetime | None = None
    ca_bundle: str = ""  # HYPERV_CA_BUNDLE, "" for the system's CAs


@dataclass(frozen=True)
class Failure:
    """An error as the driver reported it (HyperVError's parts)."""

    code: str
    message: str
    remedy: str = ""


@dataclass(frozen=True)
class Settings:
    """Get-VMHost, Get-VMMigrationNetwork and Get-VMSwitch, as the driver parsed them."""

    migration_enabled: bool
    auth_type: str  # kerberos | credssp
    performance_option: str
    max_live_migrations: int
    max_storage_migrations: int
    use_any_network: bool
    migration_networks: tuple[str, ...]
    virtual_switches: tuple[str, ...]


@dataclass(frozen=True)
class SwitchUse:
    """A switch a VM on another host is connected to."""

    switch: str
    vm: str
    host: str
    same_cluster: bool


@dataclass
class Facts:
    fqdn: str
    address: str
    port: int
    transport: str  # http | https
    configured_auth: str  # what the host's credential asks for: negotiate, kerberos, credssp, ntlm, basic
    username: str = ""
    inventory_cluster: str = ""  # the cluster the inventory has the host in
    driver: str = "psrp"
    now: datetime.datetime | None = None  # the console's clock when the host answered
    tcp_error: str = ""
    http_status: int | None = None
    http_error: str = ""
    offered_auth: tuple[str, ...] = ()  # WWW-Authenticate schemes of the unauthenticated answer
    host_date: datetime.datetime | None = None  # its Date header
    tls: Tls | None = None
    logon: Failure | None = None  # the logon failed
    negotiated: str = ""  # kerberos | ntlm | credssp | basic, read from pypsrp after the logon
    settings: Settings | None = None
    settings_error: Failure | None = None
    cluster: str = ""  # the cluster Get-Cluster named
    cluster_error: str = ""  # the error id Get-Cluster wrote
    # On a node whose session is not CredSSP: the driver's own CredSSP logon for the cluster cmdlets
    # (same account), tried with a harmless read; credssp_error is how it failed (None: it worked).
    credssp_tried: bool = False
    credssp_error: Failure | None = None
    switch_uses: list[SwitchUse] = field(default_factory=list)

    @property
    def logged_on(self) -> bool:
        return not self.tcp_error and self.logon is None and bool(self.negotiated or self.settings)

    @property
    def is_node(self) -> bool | None:
        """A cluster node by what the host answered (None: not known)."""
        if self.cluster:
            return True
        if self.cluster_error in STANDALONE_IDS:
            return bool(self.inventory_cluster) and self.cluster_error == "ClusterServiceNotRunning"
        return None


def evaluate(facts: Facts) -> list[Result]:
    if facts.driver != "psrp":
        return [
            Result(
                "winrm-port",
                UNKNOWN,
                Msg("The simulator driver (HYPERV_DRIVER=sim) has no WinRM endpoint to check."),
                Msg("Run the check with the psrp driver (the default)."),
            )
        ]
    checks = (
        port,
        answer,
        certificate,
        logon,
        auth,
        skew,
        failover_clusters,
        cluster_cmdlets,
        live_migration,
        migration_auth,
        migration_networks,
        switches,
    )
    return [check(facts) for check in checks]


def failed(results: list[Result]) -> bool:
    return any(r.status == FAIL for r in results)


# --- reaching WinRM ---------------------------------------------------------------------------------


def port(f: Facts) -> Result:
    if f.tcp_error:
        return Result(
            "winrm-port",
            FAIL,
            Msg(
                "No TCP connection to %(address)s:%(port)s: %(error)s.",
                address=f.address,
                port=f.port,
                error=f.tcp_error,
            ),
            Msg(
                "Check that the host is up and WinRM runs (Enable-PSRemoting), and open TCP %(port)s in every "
                "firewall between the console and the host.",
                port=f.port,
            ),
        )
    return Result("winrm-port", PASS, Msg("%(address)s:%(port)s accepts connections.", address=f.address, port=f.port))


def _unreached(check: str) -> Result:
    return Result(check, UNKNOWN, Msg("Not checked: the host's WinRM port cannot be reached."))


def answer(f: Facts) -> Result:
    if f.tcp_error:
        return _unreached("winrm-answer")
    schemes = ", ".join(f.offered_auth) or "-"
    if f.http_status == 401 and f.offered_auth:
        return Result(
            "winrm-answer",
            PASS,
            Msg(
                "WinRM answers on /wsman over %(transport)s and offers: %(schemes)s.",
                transport=f.transport.upper(),
                schemes=schemes,
            ),
        )
    detail = f.http_error or (f"HTTP {f.http_status}" if f.http_status else "-")
    return Result(
        "winrm-answer",
        FAIL,
        Msg(
            "The port answers, but not as WinRM over %(transport)s: %(detail)s.",
            transport=f.transport.upper(),
            detail=detail,
        ),
        Msg(
            "Check the WinRM listener on the host (winrm enumerate winrm/config/listener): %(transport)s on "
            "port %(port)s.",
            transport=f.transport.upper(),
            port=f.port,
        ),
    )


def certificate(f: Facts) -> Result:
    if f.transport != "https":
        return Result(
            "tls-certificate",
            WARN,
            Msg("WinRM over plain HTTP: no certificate proves that the host answering is %(fqdn)s.", fqdn=f.fqdn),
            Msg(
                "Create an HTTPS listener on port 5986 with a certificate from your CA for the host's FQDN, and set "
                "the host's transport to HTTPS."
            ),
        )
    if f.tcp_error or f.tls is None:
        return _unreached("tls-certificate")
    tls = f.tls
    described = Msg(
        "subject %(subject)s, issued by %(issuer)s, names %(names)s, valid until %(until)s",
        subject=tls.subject or "-",
        issuer=tls.issuer or "-",
        names=", ".join(tls.names) or "-",
        until=tls.not_after.date().isoformat() if tls.not_after else "-",
    )
    if not tls.verified:
        return Result(
            "tls-certificate",
            FAIL,
            Msg("The certificate is not accepted: %(error)s (%(described)s).", error=tls.error, described=described),
            _certificate_remedy(f, tls),
        )
    if tls.not_after and f.now and tls.not_after - f.now < datetime.timedelta(days=CERT_WARN_DAYS):
        days = max(0, (tls.not_after - f.now).days)
        return Result(
            "tls-certificate",
            WARN,
            Msg("The certificate expires in %(days)s days (%(described)s).", days=days, described=described),
            Msg("Renew the host's WinRM certificate and bind the new one to the HTTPS listener."),
        )
    return Result(
        "tls-certificate",
        PASS,
        Msg("Trusted, and valid for %(address)s (%(described)s).", address=f.address, described=described),
    )


def _certificate_remedy(f: Facts, tls: Tls) -> Msg:
    error = tls.error.lower()
    if "hostname" in error or "ip address mismatch" in error or "doesn't match" in error:
        return Msg(
            "The console dials %(address)s: set the host's address to a name the certificate holds, or issue the "
            "certificate for that name.",
            address=f.address,
        )
    if "expired" in error or "not yet valid" in error:
        return Msg("Renew the host's WinRM certificate and bind the new one to the HTTPS listener.")
    if tls.ca_bundle:
        return Msg(
            "The CA that signed the certificate is not in HYPERV_CA_BUNDLE (%(bundle)s): add it there.",
            bundle=tls.ca_bundle,
        )
    return Msg(
        "Give the console the CA that signed the host's certificate: HYPERV_CA_BUNDLE=/path/to/ca.pem (without it "
        "the console trusts the CA bundle of Python's requests, certifi's, or REQUESTS_CA_BUNDLE)."
    )


# --- logging on --------------------------------------------------------------------------------------


def logon(f: Facts) -> Result:
    if f.tcp_error:
        return _unreached("winrm-logon")
    if f.logon is not None:
        return Result(
            "winrm-logon",
            FAIL,
            Msg("The logon failed: %(message)s (%(code)s).", message=f.logon.message, code=f.logon.code),
            f.logon.remedy or Msg("Check the user and password stored for this host."),
        )
    return Result(
        "winrm-logon",
        PASS,
        Msg("Logged on as %(user)s and opened a PowerShell session.", user=f.username or "-"),
    )


def _no_session(check: str) -> Result:
    return Result(check, UNKNOWN, Msg("Not checked: no PowerShell session to the host."))


def auth(f: Facts) -> Result:
    if not f.logged_on:
        return _no_session("winrm-auth")
    negotiated = f.negotiated or "?"
    said = Msg(
        "The credential asks for %(configured)s; the host and console agreed on %(negotiated)s.",
        configured=f.configured_auth,
        negotiated=negotiated,
    )
    if negotiated in ("kerberos", "credssp"):
        return Result("winrm-auth", PASS, said)
    if negotiated == "ntlm":
        return Result(
            "winrm-auth",
            WARN,
            said,
            Msg(
                "Negotiate fell back to NTLM (no Kerberos ticket for the host): give the console a Kerberos "
                "configuration for the domain (krb5.conf, DNS) and dial the host by its FQDN."
            ),
        )
    return Result(
        "winrm-auth",
        WARN,
        said,
        Msg("Basic authentication works only for local accounts: use a domain account with Kerberos or CredSSP."),
    )


def skew(f: Facts) -> Result:
    if f.tcp_error:
        return _unreached("time-skew")
    if f.host_date is None or f.now is None:
        return Result("time-skew", UNKNOWN, Msg("The host's answer carried no Date header: its clock is not known."))
    seconds = round((f.host_date - f.now).total_seconds())
    if abs(seconds) <= 1:  # the Date header counts whole seconds
        return Result(
            "time-skew", PASS, Msg("The host's clock agrees with the console's (the Date of its WinRM answer).")
        )
    direction = Msg("ahead of") if seconds > 0 else Msg("behind")
    said = Msg(
        "The host's clock is %(seconds)s s %(direction)s the console's (the Date of its WinRM answer).",
        seconds=abs(seconds),
        direction=direction,
    )
    remedy = Msg(
        "Synchronise both clocks with the domain's time source (w32tm /resync on the host, NTP on the console's "
        "machine): Kerberos refuses more than 5 minutes."
    )
    if abs(seconds) > MAX_SKEW_S:
        return Result("time-skew", FAIL, said, remedy)
    if abs(seconds) > WARN_SKEW_S:
        return Result("time-skew", WARN, said, remedy)
    return Result("time-skew", PASS, said)


# --- the cluster ------------------------------------------------------------------------------------


def failover_clusters(f: Facts) -> Result:
    if not f.logged_on:
        return _no_session("failover-clusters")
    sync = Msg("Synchronise the inventory (manage.py sync_inventory) so that plans use what the host says.")
    if f.cluster:
        if f.inventory_cluster.lower() != f.cluster.lower():
            return Result(
                "failover-clusters",
                WARN,
                Msg(
                    "Get-Cluster names %(cluster)s; the inventory has %(inventory)s.",
                    cluster=f.cluster,
                    inventory=f.inventory_cluster or Msg("a standalone host"),
                ),
                sync,
            )
        return Result("failover-clusters", PASS, Msg("A node of cluster %(cluster)s.", cluster=f.cluster))
    if f.cluster_error == "ClusterServiceNotRunning" and f.inventory_cluster:
        return Result(
            "failover-clusters",
            FAIL,
            Msg("The cluster service is not running on this node of %(cluster)s.", cluster=f.inventory_cluster),
            Msg("Start the cluster service on the node (Start-ClusterNode), or evict it from the cluster."),
        )
    if f.cluster_error in STANDALONE_IDS:
        reason = {
            "CommandNotFoundException": Msg("the FailoverClusters module is not installed"),
            "ClusterEndpointNotRegistered": Msg("the module is installed, the host is in no cluster"),
        }.get(f.cluster_error, Msg("the cluster service is not running"))
        if f.inventory_cluster:
            return Result(
                "failover-clusters",
                WARN,
                Msg(
                    "A standalone host (%(reason)s); the inventory has it in %(cluster)s.",
                    reason=reason,
                    cluster=f.inventory_cluster,
                ),
                sync,
            )
        return Result("failover-clusters", PASS, Msg("A standalone host (%(reason)s).", reason=reason))
    return Result(
        "failover-clusters",
        UNKNOWN,
        Msg("Get-Cluster failed: %(error)s.", error=f.cluster_error or "-"),
        Msg("Run Get-Cluster on the host to see why."),
    )


def cluster_cmdlets(f: Facts) -> Result:
    """Move-ClusterVirtualMachineRole and Add-ClusterVirtualMachineRole run on the ordinary session when
    it is CredSSP, otherwise on the separate CredSSP logon the driver makes with the same account: the
    probe made that logon, so this says what the driver will do."""
    if not f.logged_on:
        return _no_session("cluster-cmdlets")
    node = f.is_node
    if node is None:
        return Result("cluster-cmdlets", UNKNOWN, Msg("Not known whether the host is a cluster node."))
    if not node:
        return Result("cluster-cmdlets", PASS, Msg("Not a cluster node: moves from it use no cluster cmdlets."))
    if f.negotiated == "credssp":
        return Result("cluster-cmdlets", PASS, Msg("The session is CredSSP: cluster cmdlets can act for it."))
    error = f.credssp_error
    if not f.credssp_tried or (error is not None and error.code == UNREACHABLE):
        return Result(
            "cluster-cmdlets",
            UNKNOWN,
            Msg(
                "Not checked: the CredSSP logon the console makes for the cluster cmdlets could not be tried "
                "(%(reason)s).",
                reason=error.message if error else "-",
            ),
            Msg("Run the check again when the host answers."),
        )
    if error is None:
        return Result(
            "cluster-cmdlets",
            PASS,
            Msg(
                "The session is %(negotiated)s; the console logs on with CredSSP for the cluster cmdlets "
                "(Move-ClusterVirtualMachineRole, Add-ClusterVirtualMachineRole), and that logon works.",
                negotiated=f.negotiated or "?",
            ),
        )
    return Result(
        "cluster-cmdlets",
        FAIL,
        Msg(
            "The session is %(negotiated)s, and the CredSSP logon the console makes for "
            "Move-ClusterVirtualMachineRole and Add-ClusterVirtualMachineRole failed: %(message)s (%(code)s). "
            "Moves inside the cluster and making a VM highly available again after a move would be refused.",
            negotiated=f.negotiated or "?",
            message=error.message,
            code=error.code,
        ),
        _catalogued(error.remedy)
        or Msg(
            "On the node: Enable-WSManCredSSP -Role Server; give this host's WinRM credential a user name and password."
        ),
    )


def _catalogued(text: str) -> str:
    """A driver's remedy (English; the driver marks its own for the catalogue) as a Msg, so that the page
    shows it translated; a '%' in a host's own text stays literal."""
    return Msg(text.replace("%", "%%")) if text else ""


# --- live-migration settings -------------------------------------------------------------------------


def _no_settings(f: Facts, check: str) -> Result:
    if f.settings_error is not None:
        return Result(
            check,
            UNKNOWN,
            Msg(
                "Get-VMHost failed: %(message)s (%(code)s).",
                message=f.settings_error.message,
                code=f.settings_error.code,
            ),
            f.settings_error.remedy or Msg("Check that the Hyper-V role and its PowerShell module are installed."),
        )
    return _no_session(check)


def _outside_cluster(f: Facts) -> str:
    """FAIL on a standalone host; on a cluster node WARN: moves inside its cluster need neither
    delegation nor the host's live-migration settings (hyperv.md section 9)."""
    return WARN if f.is_node else FAIL


def live_migration(f: Facts) -> Result:
    s = f.settings
    if s is None:
        return _no_settings(f, "live-migration")
    described = Msg(
        "%(auth)s, %(performance)s, %(live)s live and %(storage)s storage migrations at a time",
        auth=s.auth_type or "-",
        performance=s.performance_option or "-",
        live=s.max_live_migrations,
        storage=s.max_storage_migrations,
    )
    if s.migration_enabled:
        return Result("live-migration", PASS, Msg("Live migration is enabled (%(described)s).", described=described))
    said = Msg("Live migration is disabled (%(described)s).", described=described)
    if f.is_node:
        said = Msg(
            "Live migration is disabled (%(described)s): moves inside the cluster work, moves to hosts outside "
            "it are refused.",
            described=described,
        )
    return Result(
        "live-migration",
        _outside_cluster(f),
        said,
        Msg("Enable-VMMigration on the host (or Enabled in the console's Live-migration settings)."),
    )


def migration_auth(f: Facts) -> Result:
    s = f.settings
    if s is None:
        return _no_settings(f, "migration-auth")
    if s.auth_type == "credssp":
        if f.negotiated == "credssp":
            return Result(
                "migration-auth",
                PASS,
                Msg("Moves authenticate with CredSSP, and the console's session is CredSSP."),
            )
        return Result(
            "migration-auth",
            _outside_cluster(f),
            Msg(
                "Moves from this host authenticate with CredSSP, which needs the user's credentials on the host; "
                "the console's session is %(negotiated)s, so moves to hosts outside its cluster would fail.",
                negotiated=f.negotiated or "?",
            ),
            Msg(
                "Set this host's WinRM credential to CredSSP, or the migration authentication to Kerberos with "
                "constrained delegation."
            ),
        )
    return Result(
        "migration-auth",
        UNKNOWN,
        Msg(
            "Moves authenticate with Kerberos: they need constrained delegation, which lives in Active Directory "
            "and cannot be read from the host."
        ),
        Msg(
            "On each host's computer account: trust for delegation to specified services only, use any "
            "authentication protocol, services cifs and Microsoft Virtual System Migration Service of the other "
            "hosts."
        ),
    )


def migration_networks(f: Facts) -> Result:
    s = f.settings
    if s is None:
        return _no_settings(f, "migration-networks")
    if s.use_any_network:
        return Result("migration-networks", PASS, Msg("Live migrations may use any available network."))
    if s.migration_networks:
        return Result(
            "migration-networks",
            PASS,
            Msg("Live migrations use %(networks)s.", networks=", ".join(s.migration_networks)),
        )
    return Result(
        "migration-networks",
        _outside_cluster(f),
        Msg("No migration network, and not any network: the host takes no live migration from outside its cluster."),
        Msg(
            "Add-VMMigrationNetwork with the migration subnet, or Set-VMHost -UseAnyNetworkForMigration $true "
            "(the console's Live-migration settings)."
        ),
    )


def switches(f: Facts) -> Result:
    s = f.settings
    if s is None:
        return _no_settings(f, "virtual-switches")
    have = {name.lower() for name in s.virtual_switches}
    missing = [u for u in f.switch_uses if u.switch.lower() not in have]
    listed = ", ".join(s.virtual_switches) or "-"
    if not missing:
        return Result(
            "virtual-switches",
            PASS,
            Msg("%(switches)s: every switch the VMs of other hosts use.", switches=listed),
        )
    in_cluster = [u for u in missing if u.same_cluster]
    shown = in_cluster or missing
    names = tuple(dict.fromkeys(u.switch for u in shown))
    vms = ", ".join(sorted({f"{u.vm} ({u.host})" for u in shown})[:5])
    remedy = Msg(
        "Create the switch with the same name on this host (New-VMSwitch -Name %(switch)s ...), or connect the "
        "VMs to a switch it has.",
        switch=names[0],
    )
    if in_cluster:
        return Result(
            "virtual-switches",
            FAIL,
            Msg(
                "The host lacks %(missing)s, which VMs of its own cluster use (%(vms)s): they cannot fail over or "
                "move here.",
                missing=", ".join(names),
                vms=vms,
            ),
            remedy,
        )
    return Result(
        "virtual-switches",
        WARN,
        Msg(
            "The host lacks %(missing)s, which VMs on other hosts use (%(vms)s): they cannot move here.",
            missing=", ".join(names),
            vms=vms,
        ),
        remedy,
    )
