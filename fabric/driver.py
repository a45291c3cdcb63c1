"""The one place that chooses the Hyper-V driver (HYPERV_DRIVER)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from fabric.hyperv.api import Driver


def sim_store():
    from fabric.hyperv.simstore import FabricStore

    return FabricStore(settings.SIM_FABRIC_PATH, time_scale=settings.SIM_TIME_SCALE)


def get_driver() -> Driver:
    if settings.HYPERV_DRIVER == "sim":
        from fabric.hyperv.sim_driver import SimDriver

        return SimDriver(sim_store())
    raise ImproperlyConfigured("HYPERV_DRIVER=psrp: the PowerShell Remoting driver is not built yet; use sim")
