"""Pre-flight on what a real host can tell (hyperv.md section 9), against the demo fabric: delegation
recorded by an administrator and learnt from a failed move, no cluster cap without the property,
renamed disks refused at input, shares known from paths."""

import contextlib
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEvent
from fabric.models import Cluster, Delegation, Host, StorageLocation
from migrations_ui.jobs.operations import Refused, create_job
from migrations_ui.jobs.scheduler import admit_waiting, host_limits
from migrations_ui.jobs.tasks import run_job
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.preflight.assess import Preflight
from tests.migrations_ui.conftest import host, vm

D = ".contoso.test"


def findings(vm_name, to, rule):
    return [f for f in Preflight(vm(vm_name)).assess(host(to)).findings if f.rule == rule]


# --- delegation ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delegation_nobody_recorded_warns_and_does_not_block(demo):
    assert set(Host.objects.values_list("kerberos_delegation", flat=True)) == {Delegation.UNKNOWN}
    assessment = Preflight(vm("file-s01")).assess(host("hv-s2"))

    found = [f for f in assessment.findings if f.rule == "kerberos-delegation-missing"]
    assert assessment.allowed and {f.severity for f in found} == {"warn"}
    assert "Use any authentication protocol" in str(found[0].remedy)


@pytest.mark.django_db
def test_an_administrator_records_delegation_on_the_settings_page_audited(admin_client, demo):
    url = reverse("fabric:host_settings", args=["hv-s1" + D])
    response = admin_client.post(url, {"hosts": ["hv-s1" + D, "hv-s2" + D], "kerberos_delegation": "configured"})

    assert response.status_code == 200
    assert set(Host.objects.filter(name__in=["hv-s1", "hv-s2"]).values_list("kerberos_delegation", flat=True)) == {
        Delegation.CONFIGURED
    }
    events = AuditEvent.objects.filter(action="host.delegation_recorded")
    assert events.count() == 2
    assert events.first().details["after"] == {"kerberos_delegation": "configured"}
    assert not findings("file-s01", "hv-s2", "kerberos-delegation-missing")
    page = admin_client.get(reverse("fabric:host", args=["hv-s1" + D])).content.decode()
    assert "Configured" in page


@pytest.mark.django_db
def test_a_viewer_cannot_record_delegation(viewer_client, demo):
    url = reverse("fabric:host_settings", args=["hv-s1" + D])
    assert viewer_client.post(url, {"hosts": ["hv-s1" + D], "kerberos_delegation": "configured"}).status_code == 403
    assert host("hv-s1").kerberos_delegation == Delegation.UNKNOWN


@pytest.mark.django_db(transaction=True)
def test_a_move_failing_with_0x8009030e_marks_the_source_s_delegation_missing(demo):
    machine = vm("ci-runner01")  # hv-s2 -> hv-s1: Live on the share
    with demo.session() as fabric:
        fabric.hosts["hv-s2" + D].delegation_configured = False  # AD's truth, which no host reports
        fabric.touch()
    job = create_job(machine, host("hv-s1"))
    admit_waiting()

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "0x8009030E"
    assert "use any authentication protocol" in job.error_remedy
    assert host("hv-s2").kerberos_delegation == Delegation.MISSING
    assert host("hv-s1").kerberos_delegation == Delegation.UNKNOWN
    assert AuditEvent.objects.filter(action="host.delegation_missing", target_name="hv-s2").exists()
    found = findings("ci-runner01", "hv-s1", "kerberos-delegation-missing")
    # hv-s2 is now known to lack it (blocks); hv-s1 is still unknown (warns).
    assert [(f.severity, str(f.message).split()[0]) for f in found] == [("block", "hv-s2"), ("warn", "Whether")]


@pytest.mark.django_db
def test_a_move_inside_a_cluster_needs_neither_delegation_nor_migration_settings(demo):
    Host.objects.filter(cluster__name="CL-NEW").update(
        kerberos_delegation=Delegation.MISSING, migration_enabled=False, migration_networks=[], use_any_network=False
    )
    assessment = Preflight(vm("api-01")).assess(host("hv-new2"))

    assert assessment.allowed and assessment.transfer_type == "live"
    rules = {f.rule for f in assessment.findings}
    assert not rules & {"kerberos-delegation-missing", "migration-disabled", "no-migration-network"}


# --- MaximumParallelMigrations ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cluster_without_the_property_caps_nothing(demo):
    old = Cluster.objects.get(name="CL-OLD")
    assert old.max_parallel_migrations is None
    node = host("hv-old1")

    assert node.effective_max_live_migrations == node.max_live_migrations == 2
    assert host_limits([node.pk])[(node.pk, "live")] == 2
    assert not findings("erp-web01", "hv-old2", "cluster-parallel-limit")
    assert Preflight(vm("erp-web01")).facts(node).live_limit == 2


# --- renamed disks ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_move_storage_refuses_a_renamed_disk_and_records_nothing(demo):
    disk = vm("file-s01").disks.first().path
    with pytest.raises(CommandError) as info:
        call_command("move_storage", "file-s01", "--to-path", "E:\\Fast", "--vhd", f"{disk}=E:\\Fast\\new.vhdx")

    assert info.value.returncode == 2
    assert "The virtual hard disk name must be identical in both entries" in str(info.value)
    assert not MigrationJob.objects.exists()


@pytest.mark.django_db
def test_move_storage_takes_a_disk_kept_by_name(demo):
    disk = vm("file-s01").disks.first().path
    name = disk.rsplit("\\", 1)[-1]
    call_command("move_storage", "file-s01", "--to-path", "E:\\Fast", "--vhd", f"{disk}=E:\\Fast\\{name}", "--json",
                 stdout=io.StringIO())  # fmt: skip
    assert MigrationJob.objects.get().vhds == [[disk, f"E:\\Fast\\{name}"]]


@pytest.mark.django_db
def test_no_job_takes_a_renamed_disk(demo):
    machine = vm("file-s01")
    disk = machine.disks.first().path
    with pytest.raises(Refused) as info:
        create_job(machine, machine.host, vhds=((disk, "E:\\Fast\\renamed.vhdx"),))
    assert "renames the disk" in str(info.value)
    assert not MigrationJob.objects.exists()


# --- shares, from paths ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cluster_node_uses_the_shares_of_its_cluster_s_ha_vms(demo):
    # hv-old2 has no VM of its own on the share, but erp-web01 (HA, on hv-old1) lies there: any node may own it.
    assert "\\\\fs01.contoso.test\\vms" in {s.unc_path for s in host("hv-old2").shares.all()}
    assert Preflight(vm("erp-web01")).assess(host("hv-old2")).transfer_type == "live"


@pytest.mark.django_db
def test_an_unknown_share_is_said_rather_than_copied_silently(demo):
    # app-s02's files lie on \\fs01\vmstore2; nothing of hv-s1 does, so the console cannot know hv-s1 reaches it.
    assessment = Preflight(vm("app-s02")).assess(host("hv-s1"))
    assert assessment.transfer_type == "live_vsm"
    [finding] = [f for f in assessment.findings if f.rule == "share-reachability-unknown"]
    assert finding.severity == "warn" and "\\\\fs01\\vmstore2" in finding.message

    # An administrator says hv-s1 reaches the share (a storage location there): the files stay put.
    StorageLocation.objects.create(host=host("hv-s1"), path="\\\\fs01\\vmstore2\\vms", added_by_user=True)
    again = Preflight(vm("app-s02")).assess(host("hv-s1"))
    assert again.transfer_type == "live"
    assert not [f for f in again.findings if f.rule == "share-reachability-unknown"]


@pytest.mark.django_db
def test_a_vm_on_a_local_disk_is_copied_without_the_warning(demo):
    assessment = Preflight(vm("dc01")).assess(host("hv-s1"))
    assert assessment.transfer_type == "live_vsm"
    assert not [f for f in assessment.findings if f.rule == "share-reachability-unknown"]


@pytest.mark.django_db
def test_the_preflight_json_shows_the_warning(demo):
    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # exit code 0 or 3 (blocked): the JSON is printed either way
        call_command("preflight", "app-s02", "--to", "hv-s1", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert "share-reachability-unknown" in {f["rule"] for f in result["findings"]}
