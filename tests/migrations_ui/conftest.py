"""The simulated demo fabric, seeded in process, for the job lifecycle tests (runner, slot release)."""

import pytest
from django.core.management import call_command

from fabric.driver import sim_store
from fabric.models import Host, VirtualMachine


@pytest.fixture
def demo(settings, tmp_path):
    """The demo fabric's simulator, its clock at 400x wall time: a demo move takes a fraction of a second."""
    settings.SIM_FABRIC_PATH = tmp_path / "fabric.sqlite3"
    settings.SIM_TIME_SCALE = 400
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return sim_store()


def vm(name):
    return VirtualMachine.objects.select_related("host").get(name=name)


def host(name):
    return Host.objects.get(name=name)
