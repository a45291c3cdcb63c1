"""A real OpenLDAP server for the tests (Debian's slapd), on loopback with a directory of its own.

    with Slapd.start(tmp_dir) as directory:
        directory.uri  # ldap://127.0.0.1:PORT
        directory.remove_member(OPERATORS, "uid=olga,ou=people,dc=contoso,dc=test")

Two naming contexts, each an mdb database:
- dc=contoso,dc=test, laid out as OpenLDAP sites are: inetOrgPerson users (uid) under ou=people,
  groupOfNames groups (member) under ou=groups;
- dc=corp,dc=example, laid out as Active Directory is: users with sAMAccountName (the schema below:
  AD's attribute and class OIDs, as Microsoft's schema gives them), `group` objects with `member`,
  and memberOf kept by the memberof overlay on users and on nested groups, as AD keeps it.
In both the administrators' group has a group inside it (nested membership).
The server's root DN and password write the data; the console binds as `uid=console,ou=system,...`
(search user) or as the user (direct bind).
"""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fabric.emulator.tls import ensure_certificates
from tests.served import free_port

SLAPD = "/usr/sbin/slapd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
ROOT_PASSWORD = "root-secret-for-tests"
PASSWORD = "directory-pass-123"  # every user's
BIND_PASSWORD = "console-bind-pass-123"

BASE = "dc=contoso,dc=test"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
VIEWERS = f"cn=console-viewers,{GROUPS}"
OPERATORS = f"cn=console-operators,{GROUPS}"
ADMINISTRATORS = f"cn=console-admins,{GROUPS}"
HYPERV_TEAM = f"cn=hyperv-team,{GROUPS}"  # inside ADMINISTRATORS
BIND_DN = f"uid=console,ou=system,{BASE}"

AD_BASE = "dc=corp,dc=example"
AD_USERS = f"cn=Users,{AD_BASE}"
AD_VIEWERS = f"cn=Console Viewers,{AD_USERS}"
AD_OPERATORS = f"cn=Console Operators,{AD_USERS}"
AD_ADMINISTRATORS = f"cn=Console Admins,{AD_USERS}"
AD_TIER0 = f"cn=Tier0 Admins,{AD_USERS}"  # inside AD_ADMINISTRATORS
AD_BIND_DN = f"cn=svc-console,{AD_USERS}"

# The few Active Directory schema elements the AD-like tree needs (OIDs as in AD's schema); memberOf
# itself comes from the memberof overlay (AD's OID too).
AD_SCHEMA = """
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY
    MAY ( sAMAccountName $ userPrincipalName ) )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL
    MUST cn MAY ( member $ sAMAccountName $ description ) )
"""


def _person(dn: str, uid: str, first: str, last: str, password: str = PASSWORD) -> str:
    return f"""dn: {dn}
objectClass: inetOrgPerson
uid: {uid}
cn: {first} {last}
givenName: {first}
sn: {last}
mail: {uid}@contoso.test
userPassword: {password}
"""


def _ad_user(name: str, first: str, last: str, password: str = PASSWORD) -> str:
    return f"""dn: cn={first} {last},{AD_USERS}
objectClass: inetOrgPerson
objectClass: user
cn: {first} {last}
givenName: {first}
sn: {last}
sAMAccountName: {name}
userPrincipalName: {name}@corp.example
mail: {name}@corp.example
userPassword: {password}
"""


def _group(dn: str, object_class: str, *members: str) -> str:
    cn = dn.split(",")[0].removeprefix("cn=")
    return f"dn: {dn}\nobjectClass: {object_class}\ncn: {cn}\n" + "".join(f"member: {m}\n" for m in members)


def _people(*names: str) -> list[str]:
    return [f"uid={name},{PEOPLE}" for name in names]


def _ad(*names: str) -> list[str]:
    return [f"cn={name},{AD_USERS}" for name in names]


# Users: vera (viewer), olga (operator), adam (in hyperv-team, a group inside the administrators'),
# otto (operator and viewer: the highest wins), nobody (in no console group).
DATA = "\n".join(
    [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: contoso\no: Contoso\n",
        *(f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n" for ou in ("people", "groups", "system")),
        _person(BIND_DN, "console", "Console", "Service", BIND_PASSWORD),
        _person(f"uid=vera,{PEOPLE}", "vera", "Vera", "Viewer"),
        _person(f"uid=olga,{PEOPLE}", "olga", "Olga", "Operator"),
        _person(f"uid=adam,{PEOPLE}", "adam", "Adam", "Admin"),
        _person(f"uid=otto,{PEOPLE}", "otto", "Otto", "Both"),
        _person(f"uid=nobody,{PEOPLE}", "nobody", "No", "Body"),
        _group(VIEWERS, "groupOfNames", *_people("vera", "otto")),
        _group(OPERATORS, "groupOfNames", *_people("olga", "otto")),
        _group(HYPERV_TEAM, "groupOfNames", *_people("adam")),
        _group(ADMINISTRATORS, "groupOfNames", HYPERV_TEAM),
        f"dn: {AD_BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n",
        f"dn: {AD_USERS}\nobjectClass: organizationalRole\ncn: Users\n",
        _ad_user("svc-console", "svc-console", "Service", BIND_PASSWORD).replace(
            "cn=svc-console Service", "cn=svc-console"
        ),
        _ad_user("vviewer", "Vera", "Viewer"),
        _ad_user("ooperator", "Olga", "Operator"),
        _ad_user("aadmin", "Adam", "Admin"),
        _ad_user("nnobody", "No", "Body"),
        _group(AD_VIEWERS, "group", *_ad("Vera Viewer")),
        _group(AD_OPERATORS, "group", *_ad("Olga Operator")),
        _group(AD_TIER0, "group", *_ad("Adam Admin")),
        _group(AD_ADMINISTRATORS, "group", AD_TIER0),
    ]
)


def missing() -> list[str]:
    """What this machine lacks for the directory tests: slapd, and python-ldap with django-auth-ldap."""
    absent = [] if Path(SLAPD).exists() else ["slapd"]
    try:
        import django_auth_ldap  # noqa: F401 - only their presence matters here
        import ldap  # noqa: F401
    except ImportError:
        absent.append("python-ldap and django-auth-ldap (pip install -r requirements-ldap.txt)")
    return absent


# Active Directory keeps memberOf on users and groups; the overlay does the same for `group` objects.
MEMBEROF = """overlay memberof
memberof-group-oc group
memberof-member-ad member
memberof-memberof-ad memberOf
"""


def _config(folder: Path) -> str:
    databases = []
    for suffix, name, overlay in ((BASE, "contoso", ""), (AD_BASE, "corp", MEMBEROF)):
        (folder / name).mkdir()
        databases.append(
            f"""database mdb
suffix "{suffix}"
rootdn "cn=root,{suffix}"
rootpw {ROOT_PASSWORD}
directory {folder / name}
maxsize 16777216
index objectClass,member eq
{overlay}"""
        )
    (folder / "ad.schema").write_text(AD_SCHEMA)
    ca, cert, key = ensure_certificates(folder / "tls", ["localhost"], ["127.0.0.1"])
    includes = "".join(f"include {SCHEMA / n}.schema\n" for n in ("core", "cosine", "inetorgperson"))
    return f"""{includes}include {folder / "ad.schema"}
modulepath {MODULES}
moduleload back_mdb
moduleload memberof
pidfile {folder / "slapd.pid"}
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none

""" + "\n".join(databases)


@dataclass
class Slapd:
    folder: Path
    port: int
    tls_port: int
    process: subprocess.Popen | None

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        """The CA of the server's certificate (for localhost and 127.0.0.1)."""
        return self.folder / "tls" / "ca.pem"

    @classmethod
    @contextlib.contextmanager
    def start(cls, folder: Path) -> Iterator[Slapd]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "slapd.conf").write_text(_config(folder))
        server = cls(folder, free_port(), free_port(), None)
        try:
            server.run()
            server._load(DATA)
            yield server
        finally:
            server.stop()

    def run(self) -> None:
        """Start (or start again) the server; -d 0 keeps it in the foreground, the test's own process."""
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(self.folder / "slapd.conf"), "-h", f"{self.uri}/ {self.ldaps_uri}/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited: {self.process.stderr.read().decode(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError("slapd did not listen within 20 s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The server stopped for the block (a directory outage), then started again on the same port."""
        self.stop()
        try:
            yield
        finally:
            self.run()

    def _admin(self, suffix: str):
        import ldap

        connection = ldap.initialize(self.uri)
        connection.simple_bind_s(f"cn=root,{suffix}", ROOT_PASSWORD)
        return connection

    def _load(self, text: str) -> None:
        import ldif
        from ldap.modlist import addModlist

        records = ldif.LDIFRecordList(io.StringIO(text))
        records.parse()
        connections = {suffix: self._admin(suffix) for suffix in (BASE, AD_BASE)}
        try:
            for dn, entry in records.all_records:
                suffix = AD_BASE if dn.lower().endswith(AD_BASE) else BASE
                connections[suffix].add_s(dn, addModlist(entry))
        finally:
            for connection in connections.values():
                connection.unbind_s()

    def _modify_member(self, group: str, member: str, op: int) -> None:
        connection = self._admin(AD_BASE if group.lower().endswith(AD_BASE) else BASE)
        try:
            connection.modify_s(group, [(op, "member", [member.encode()])])
        finally:
            connection.unbind_s()

    def add_member(self, group: str, member: str) -> None:
        import ldap

        self._modify_member(group, member, ldap.MOD_ADD)

    def remove_member(self, group: str, member: str) -> None:
        import ldap

        self._modify_member(group, member, ldap.MOD_DELETE)
