"""The preflight command on the demo fabric: the cases issue 3 names, as an operator runs them."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def preflight(*args) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("preflight", *args, "--json", stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def rules(result: dict) -> set[str]:
    return {f["rule"] for f in result["findings"]}


def test_it_reports_live_between_the_standalone_hosts_on_one_share(demo_fabric):
    code, result = preflight("file-s01", "--to", "hv-s2")

    assert code == 0
    assert result["transfer_type"] == "live" and result["allowed"] is True
    assert result["destination"] == "hv-s2.contoso.test" and result["vm"] == "file-s01"
    assert 0.5 <= result["rating"] <= 5


def test_it_reports_live_vsm_towards_the_host_with_local_storage(demo_fabric):
    code, result = preflight("file-s01", "--to", "hv-s3.contoso.test")

    assert result["transfer_type"] == "live_vsm"
    assert code == (0 if result["allowed"] else 3)


def test_it_flags_a_storage_target_on_the_share_registered_by_short_name(demo_fabric):
    code, result = preflight("file-s01", "--to", "hv-s3", "--storage-path", "\\\\fs01\\vmstore2\\file-s01")

    assert code == 3 and result["allowed"] is False
    finding = next(f for f in result["findings"] if f["rule"] == "smb-path-not-fqdn")
    assert finding["severity"] == "block"
    assert "\\\\fs01.contoso.test\\vmstore2\\file-s01" in finding["message"]


def test_it_blocks_storage_moves_of_the_guest_cluster_vms(demo_fabric):
    for vm, host in (("sql-fc1", "hv-s1"), ("sql-fc2", "hv-s2")):
        code, result = preflight(vm, "--to", host, "--storage-path", "D:\\Fast")

        assert code == 3
        assert result["transfer_type"] == "storage"
        assert "shared-vhdx-not-movable" in rules(result)


def test_it_lets_the_guest_cluster_vms_live_migrate_with_files_in_place(demo_fabric):
    code, result = preflight("sql-fc1", "--to", "hv-s2")

    assert code == 0 and result["transfer_type"] == "live"
    assert "shared-vhdx-not-movable" not in rules(result)


def test_it_blocks_the_vm_with_the_old_compatibility_vector_inside_the_newer_cluster(demo_fabric):
    code, result = preflight("erp-app01", "--to", "hv-new2")

    assert code == 3
    assert "compat-vector-restart-required" in rules(result)


def test_it_warns_that_ha_is_lost_between_clusters(demo_fabric):
    code, result = preflight("erp-web01", "--to", "hv-new1")

    finding = next(f for f in result["findings"] if f["rule"] == "ha-lost-during-move")
    assert code == 0 and finding["severity"] == "warn"
    assert result["transfer_type"] == "live"  # shared storage: the share is reachable from CL-NEW


def test_it_finds_the_injection_vm_by_its_literal_name(demo_fabric):
    code, result = preflight('legacy-app\'; $(Remove-VM -Name *) ; "x"', "--to", "hv-s2")

    assert code == 0 and result["vm"] == 'legacy-app\'; $(Remove-VM -Name *) ; "x"'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-vm", "--to", "hv-s2"], "no VM named"),
        (["file-s01", "--to", "hv-s9"], "no host named"),
        (["file-s01", "--to", "hv-s3", "--storage-path", "D:\\a\x00b"], "control characters"),
        (["file-s01", "--to", "hv-s3", "--storage-path", "D:\\" + "x" * 300], "260"),
    ],
)
def test_it_refuses_bad_arguments_with_exit_code_2(demo_fabric, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        call_command("preflight", *args, "--json")
    assert raised.value.returncode == 2


def test_move_vm_acts_as_a_named_user_and_refuses_a_viewer(demo_fabric, viewer_user, operator_user):
    from audit.models import AuditEvent
    from migrations_ui.models import MigrationJob

    with pytest.raises(CommandError, match="does not allow") as raised:
        call_command("move_vm", "file-s01", "--to", "hv-s2", "--user", "viewer", stdout=io.StringIO())
    assert raised.value.returncode == 2 and MigrationJob.objects.count() == 0
    assert AuditEvent.objects.filter(action="permission_denied", username="viewer").exists()

    call_command("move_vm", "file-s01", "--to", "hv-s2", "--user", "operator", "--json", stdout=io.StringIO())
    assert MigrationJob.objects.get().requested_by == operator_user
    assert AuditEvent.objects.get(action="migration.requested").username == "operator"


def test_move_vm_without_a_user_acts_as_the_shell_on_a_fresh_install(demo_fabric):
    from audit.models import AuditEvent

    call_command("move_vm", "file-s01", "--to", "hv-s2", "--json", stdout=io.StringIO())
    assert AuditEvent.objects.get(action="migration.requested").username.startswith("cli:")


def test_an_evacuation_plan_is_audited(demo_fabric):
    from audit.models import AuditEvent

    out = io.StringIO()
    call_command("evacuate", "hv-new2", "--plan-only", "--json", stdout=out)

    plan = json.loads(out.getvalue())
    event = AuditEvent.objects.get(action="evacuation.planned")
    assert event.target_name == "hv-new2" and event.details["moves"] == len(plan["moves"])


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("preflight", ["file-s01", "--to", "hv-s3", "--storage-path", "D:\\VMs\\..\\..\\Windows\\System32"]),
        ("move_vm", ["file-s01", "--to", "hv-s3", "--storage-path", "D:\\VMs\\..\\..\\Windows\\System32"]),
        ("move_storage", ["file-s01", "--to-path", "C:\\Windows\\System32"]),
        ("move_storage", ["file-s01", "--to-path", "D:\\VMs", "--vhd", "{disk}=C:\\Program Files\\{name}"]),
    ],
    ids=["preflight", "move_vm", "move_storage", "move_storage-vhd"],
)
def test_the_commands_refuse_dot_dot_and_system_folders_with_exit_code_3(demo_fabric, command, args):
    from fabric.models import VirtualMachine
    from migrations_ui.models import MigrationJob

    disk = VirtualMachine.objects.get(name="file-s01").disks.first().path
    args = [a.replace("{disk}", disk).replace("{name}", disk.rsplit("\\", 1)[-1]) for a in args]
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(command, *args, "--json", stdout=out)

    assert exited.value.code == 3
    finding = next(f for f in json.loads(out.getvalue())["findings"] if f["rule"] == "path-not-allowed")
    assert finding["severity"] == "block" and "without . or .. segments" in finding["remedy"]
    assert not MigrationJob.objects.exists()


def test_the_text_plan_says_where_a_link_caps_the_moves():
    from migrations_ui.management.commands.evacuate import _describe

    data = {"host": "hv-s1", "moves": [], "left": [], "makespan_s": 10.0, "lower_bound_s": 9.0}
    data["link_caps"] = [{"host": "hv-s1.contoso.test", "limit": 4, "cap": 1, "nic_gbps": 1.0}]

    assert _describe(data).splitlines()[-1] == (
        "  link: hv-s1.contoso.test runs at most 1 of these moves at once (limit 4): its 1 Gbit/s link is the "
        "bottleneck; a higher live-migration limit would not help"
    )
