"""The API's VM detail says what the VM page says: processors, and each disk's type and sizes."""

import pytest

from fabric.models import VirtualMachine

pytestmark = pytest.mark.django_db


def test_a_vms_detail_has_its_processors_and_each_disks_type_and_sizes(apis, demo_fabric):
    vm = VirtualMachine.objects.get(name="sql-prod01")

    status, body = apis["viewer"].get(f"/vms/{vm.guid}")

    assert status == 200, body
    assert body["processor_count"] == 16
    disks = {d["path"].rsplit("\\", 1)[1]: d for d in body["disks"]}
    assert (disks["data.vhdx"]["vhd_type"], disks["data.vhdx"]["max_size_bytes"]) == ("Fixed", 120 * 2**30)
    assert disks["data.vhdx"]["size_bytes"] == 120 * 2**30
    assert disks["sql-prod01.vhdx"]["vhd_type"] == "Dynamic"
