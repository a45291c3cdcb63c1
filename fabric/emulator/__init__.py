"""The Hyper-V host emulator: WS-Management + PowerShell Remoting endpoints serving the simulated fabric.

    emulator = build_emulator(FabricStore(path, time_scale=4), username="u", password="p")
    emulator.start()   # one endpoint per host of the fabric, addresses written back into the fabric
    ...
    emulator.stop()

Modules: wsman (envelopes), shell (runspace pools over psrpcore), binder (pipelines, parameters),
cmdlets_* (what each cmdlet does), objects/records (Hyper-V shaped values), server (HTTP), tls.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from fabric.emulator.server import Emulator
from fabric.sim.store import FabricStore

__all__ = ["Emulator", "build_emulator"]


def build_emulator(
    store: FabricStore,
    *,
    username: str,
    password: str,
    https: bool = False,
    cert_dir: Path | None = None,
    **options,
) -> Emulator:
    """An Emulator for the store's fabric; with https, certificates are made (or reused) in cert_dir."""
    tls, certificate = None, None
    if https:
        from fabric.emulator.tls import ensure_certificates, server_context

        if cert_dir is None:
            raise ValueError("https needs a cert_dir for the generated certificates")
        with store.session() as fabric:
            names = [h.fqdn for h in fabric.hosts.values()] + ["localhost"]
            addresses = sorted({h.address for h in fabric.hosts.values()} | {"127.0.0.1"})
        _, cert, key = ensure_certificates(Path(cert_dir), names, addresses)
        tls = server_context(cert, key)
        certificate = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return Emulator(store, username=username, password=password, tls=tls, tls_certificate=certificate, **options)
