"""A real MIT Kerberos KDC for the tests (Debian's krb5-kdc), with a realm of its own on loopback.

    with Kdc.start(tmp_dir, hosts=["hv-s1.contoso.test"], users={"hv-admin": "pw"}) as kdc:
        ...  # KRB5_CONFIG, KRB5_KTNAME and KRB5CCNAME point into tmp_dir

The realm CONTOSO.TEST serves the emulated hosts' domain (contoso.test, as an AD domain's realm is
its DNS name in capitals). Each host gets the service principal a WinRM service has,
HTTP/<fqdn>, with its key in a keytab the emulator's acceptor reads (KRB5_KTNAME). Names map to
the realm by krb5.conf's [domain_realm]; rdns and hostname canonicalization are off, since the
hosts' names resolve nowhere (the client dials 127.0.0.x and asks a ticket for the FQDN).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REALM = "CONTOSO.TEST"
DOMAIN = "contoso.test"
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in SBIN:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


def missing() -> list[str]:
    """What this machine lacks for a KDC test: the KDC's programs and python-gssapi."""
    absent = [name for name in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit") if tool(name) is None]
    try:
        import gssapi  # noqa: F401 - only its presence matters here
    except ImportError:
        absent.append("python-gssapi (pip install -r requirements-kerberos.txt)")
    return absent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Kdc:
    folder: Path
    port: int
    process: subprocess.Popen
    env: dict[str, str]

    @classmethod
    @contextlib.contextmanager
    def start(cls, folder: Path, hosts: list[str], users: dict[str, str]) -> Iterator[Kdc]:
        folder.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        env = _write_config(folder, port)
        previous = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        process = None
        try:
            _run("kdb5_util", "create", "-s", "-r", REALM, "-P", "master-key-for-tests", env=env)
            for user, password in users.items():
                _kadmin(env, f"addprinc -pw {password} {user}")
            for fqdn in hosts:
                _kadmin(env, f"addprinc -randkey HTTP/{fqdn}")
                _kadmin(env, f"ktadd -k {folder / 'http.keytab'} HTTP/{fqdn}")
            # -n: stay in the foreground, so the test owns the process and ends it.
            process = subprocess.Popen(
                [tool("krb5kdc"), "-n", "-r", REALM],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _wait_listening(port, process)
            yield cls(folder, port, process, env)
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def kinit(self, user: str, password: str) -> None:
        """A ticket-granting ticket in KRB5CCNAME, as `kinit` gives an operator."""
        _run("kinit", user, env=self.env, input=password + "\n")

    @property
    def log(self) -> str:
        path = self.folder / "kdc.log"
        return path.read_text() if path.exists() else ""


def _write_config(folder: Path, port: int) -> dict[str, str]:
    (folder / "kdc.conf").write_text(
        f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {REALM} = {{
        database_name = {folder}/principal
        key_stash_file = {folder}/stash
        acl_file = {folder}/kadm5.acl
        max_life = 1h
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
    }}

[logging]
    kdc = FILE:{folder}/kdc.log
"""
    )
    (folder / "kadm5.acl").write_text("")
    (folder / "krb5.conf").write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    forwardable = true
    udp_preference_limit = 1

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    .{DOMAIN} = {REALM}
    {DOMAIN} = {REALM}
"""
    )
    return {
        "KRB5_CONFIG": str(folder / "krb5.conf"),
        "KRB5_KDC_PROFILE": str(folder / "kdc.conf"),
        "KRB5_KTNAME": f"FILE:{folder / 'http.keytab'}",
        "KRB5CCNAME": f"FILE:{folder / 'ccache'}",
    }


def _run(name: str, *args: str, env: dict[str, str], input: str | None = None) -> None:
    subprocess.run(
        [tool(name), *args], env={**os.environ, **env}, input=input, text=True, capture_output=True, check=True
    )


def _kadmin(env: dict[str, str], query: str) -> None:
    _run("kadmin.local", "-r", REALM, "-q", query, env=env)


def _wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"krb5kdc exited: {error}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError("krb5kdc did not listen within 15 s")
