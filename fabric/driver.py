"""The one place that chooses the Hyper-V driver (HYPERV_DRIVER) and configures it from settings.

psrp (the default): the pypsrp driver, one per process so each host's runspace pool is reused by
every caller (sync, workers, pages). In the embedded default the hosts are the emulator's endpoints
(manage.py serve starts it). sim: the in-process simulator over the same fabric file, for fast tests.
"""

from __future__ import annotations

import atexit
import threading

from django.conf import settings

from fabric.hyperv.api import Connection, Driver

_lock = threading.Lock()
_psrp: tuple[tuple, Driver] | None = None


def fabric_seconds_per_second() -> int:
    """The fabric's seconds per wall-clock second: plans and estimates count in host seconds, and a
    simulated fabric (the sim driver, or the emulator behind psrp) runs SIM_TIME_SCALE times faster."""
    simulated = settings.HYPERV_DRIVER == "sim" or getattr(settings, "HYPERV_EMULATOR", False)
    return (settings.SIM_TIME_SCALE or 1) if simulated else 1  # None: a test's manual clock


def sim_store():
    from fabric.sim.store import FabricStore

    return FabricStore(settings.SIM_FABRIC_PATH, time_scale=settings.SIM_TIME_SCALE)


def psrp_options():
    from fabric.hyperv.psrp_session import PsrpOptions

    bundle = getattr(settings, "HYPERV_CA_BUNDLE", "")
    if not bundle and getattr(settings, "HYPERV_EMULATOR", False) and getattr(settings, "HYPERV_EMULATOR_HTTPS", False):
        bundle = str(settings.DATA_DIR / "emulator-tls" / "ca.pem")
    return PsrpOptions(
        connect_timeout=float(getattr(settings, "HYPERV_CONNECT_TIMEOUT", 10)),
        read_timeout=float(getattr(settings, "HYPERV_READ_TIMEOUT", 30)),
        operation_timeout=max(1, int(getattr(settings, "HYPERV_READ_TIMEOUT", 30)) - 10),
        cert_validation=bundle or True,
        allow_basic_http=bool(getattr(settings, "HYPERV_ALLOW_BASIC_HTTP", False)),
    )


def credentials_for(conn: Connection) -> Connection:
    """Fill in how to log on to a host: its stored credential, the default one, or the embedded emulator's."""
    from fabric.credentials import resolve

    return resolve(conn)


def get_driver() -> Driver:
    if settings.HYPERV_DRIVER == "sim":
        from fabric.sim.driver import SimDriver

        return SimDriver(sim_store())
    from fabric.hyperv.psrp import PsrpDriver

    global _psrp
    options = psrp_options()
    with _lock:
        # Settings changed (tests do that): a new driver; the old one's pools are closed.
        if _psrp is None or _psrp[0] != (options,):
            if _psrp is not None:
                _psrp[1].close()
            driver = PsrpDriver(options, credentials=credentials_for)
            # A process that ends closes its shells on the hosts rather than leaving them to time out.
            atexit.register(driver.close)
            _psrp = ((options,), driver)
        return _psrp[1]
