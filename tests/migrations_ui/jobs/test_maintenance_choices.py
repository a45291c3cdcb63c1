"""The pre-maintenance report's choices carried out on the simulated demo fabric (in process, as
test_runner.py): saved or shut down and moved offline, shut down where it stays, left running."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from api.tokens import create_token
from audit.models import AuditEvent
from migrations_ui.jobs.power import shut_down_chosen
from migrations_ui.jobs.tasks import run_job
from migrations_ui.models import Batch, JobState, MigrationJob
from migrations_ui.planning.report import LEAVE_RUNNING, SHUT_DOWN_MOVE, SHUT_DOWN_STAY
from tests.api.conftest import Api
from tests.migrations_ui.conftest import host, vm
from tests.migrations_ui.jobs.test_runner import submit

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels"])

POWER = ("Save-VM", "Stop-VM", "Start-VM", "Move-VM", "Move-ClusterVirtualMachineRole")


def power_record(store, vm_id: str) -> list[tuple[str, str]]:
    with store.session() as fabric:
        return [(r["cmdlet"], r.get("result", "")) for r in fabric.record if r["cmdlet"] in POWER and vm_id in str(r)]


def steps(job) -> list[str]:
    return [e.data["step"] for e in job.events.filter(kind="step") if "label" in e.data]


def run_batch(batch: Batch) -> None:
    for job in batch.jobs.order_by("pk"):
        run_job.call(job.pk)


def test_a_saved_move_saves_copies_offline_and_resumes_on_the_destination(demo):
    job = submit("file-s01", "hv-s2", power="save")
    vm_id = str(job.vm.guid)

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.kind == "network" and job.powered_off and job.powered_on
    assert steps(job) == ["power_off", "compare", "move", "verify", "start", "refresh"]
    assert [c for c, _ in power_record(demo, vm_id)] == ["Save-VM", "Move-VM", "Start-VM"]
    moved = vm("file-s01")
    assert (moved.host.name, moved.state) == ("hv-s2", "running")


def test_a_stale_compatibility_vector_is_cleared_by_a_shut_down_move_inside_the_cluster(demo):
    # erp-app01 cannot migrate within CL-NEW until it restarts; shut down, its cluster moves the role.
    job = submit("erp-app01", "hv-new2", power="shut_down")
    vm_id = str(job.vm.guid)
    assert job.kind == "quick"

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert [c for c, _ in power_record(demo, vm_id)] == ["Stop-VM", "Move-ClusterVirtualMachineRole", "Start-VM"]
    moved = vm("erp-app01")
    assert (moved.host.name, moved.state, moved.compat_vector_stale) == ("hv-new2", "running", False)


def test_a_failed_move_starts_the_vm_again_where_it_is(demo):
    machine = vm("file-s01")
    with demo.session() as fabric:
        fabric.inject_failure(str(machine.guid), "network")
    job = submit("file-s01", "hv-s2", power="shut_down")

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "restore_power" in steps(job) and job.powered_on
    assert [c for c, _ in power_record(demo, str(machine.guid))][-1] == "Start-VM"
    with demo.session() as fabric:
        assert fabric.vms[str(machine.guid)].state == "running"
        assert fabric.vms[str(machine.guid)].host.startswith("hv-s1")


def evacuate(client, name: str, **choices):
    data = {f"choice-{vm(n).guid}": c for n, c in choices.items()}
    return client.post(reverse("migrations_ui:evacuate", args=[host(name).fqdn]), data)


def test_an_evacuation_carries_out_the_choices_and_keeps_them_as_defaults(demo, operator_client):
    response = evacuate(operator_client, "hv-new1", **{"erp-app01": SHUT_DOWN_MOVE, "ckpt-new01": SHUT_DOWN_STAY})

    assert response.status_code == 302
    batch = Batch.objects.get()
    node = host("hv-new1")
    assert node.maintenance  # no VM stays running on it
    powered = dict(batch.jobs.exclude(power="").values_list("vm_name", "power"))
    assert powered == {"erp-app01": "shut_down"}
    assert batch.plan["choices"] == {"erp-app01": SHUT_DOWN_MOVE, "ckpt-new01": SHUT_DOWN_STAY}
    started = AuditEvent.objects.get(action="evacuation.started")
    assert started.details["choices"] == batch.plan["choices"]

    run_batch(batch)
    assert shut_down_chosen(batch.pk) == {str(vm("ckpt-new01").guid): "off"}

    assert set(batch.jobs.values_list("state", flat=True)) == {JobState.SUCCEEDED}
    assert (vm("ckpt-new01").host.name, vm("ckpt-new01").state) == ("hv-new1", "off")  # refreshed
    assert vm("erp-app01").host.name != "hv-new1" and vm("erp-app01").state == "running"
    assert AuditEvent.objects.filter(action="vm.shut_down", target_name="ckpt-new01").count() == 1
    assert shut_down_chosen(batch.pk) == {str(vm("ckpt-new01").guid): "off"}  # run again: nothing sent twice
    # Next time the report offers the same choices by default.
    assert vm("erp-app01").maintenance_choice == SHUT_DOWN_MOVE
    assert "ckpt-new01 (off)" in operator_client.get(batch.get_absolute_url()).content.decode()


def test_a_vm_left_running_keeps_the_host_out_of_maintenance(demo, operator_client):
    response = evacuate(operator_client, "hv-new1", **{"erp-app01": LEAVE_RUNNING, "ckpt-new01": SHUT_DOWN_STAY})

    assert response.status_code == 302
    assert not host("hv-new1").maintenance
    batch = Batch.objects.get()
    assert batch.plan["left_running"] == ["erp-app01"]
    followed = operator_client.get(response.url).content.decode()
    assert "hv-new1 did not enter maintenance, left running there as chosen: erp-app01." in followed
    assert "ckpt-new01 (shutting down…)" in followed  # no worker has run the task in this test


def test_a_choice_the_vm_does_not_have_is_refused_and_nothing_starts(demo, operator_client):
    response = evacuate(operator_client, "hv-new1", **{"ckpt-new01": SHUT_DOWN_MOVE})

    assert response.status_code == 400
    assert "not possible for ckpt-new01" in response.content.decode()
    assert not Batch.objects.exists() and not MigrationJob.objects.exists()
    assert not host("hv-new1").maintenance


def test_viewers_read_and_export_the_report_but_cannot_choose(demo, viewer_client):
    url = reverse("migrations_ui:maintenance_report", args=[host("hv-new1").fqdn])
    page = viewer_client.get(url)
    body = page.content.decode()

    assert page.status_code == 200
    assert "compat-vector-restart-required" in body and "Restart the VM" in body
    assert "<select" not in body
    csv = b"".join(viewer_client.get(url.replace("-report/", "-report.csv")).streaming_content).decode()
    lines = csv.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("VM,State,Rules")
    assert any(line.startswith("erp-app01,running,compat-vector-restart-required") for line in lines)
    assert viewer_client.post(reverse("migrations_ui:evacuate", args=[host("hv-new1").fqdn])).status_code == 403


def test_the_command_prints_the_report_and_takes_choices(demo, admin_user):
    out = io.StringIO()
    call_command("evacuate", "hv-new1", "--plan-only", "--json", stdout=out)
    report = json.loads(out.getvalue())["report"]
    rows = {r["vm"]: r for r in report["vms"]}
    assert rows["erp-app01"]["choices"] == [SHUT_DOWN_MOVE, SHUT_DOWN_STAY, LEAVE_RUNNING]
    assert rows["erp-app01"]["default"] == LEAVE_RUNNING
    text = io.StringIO()
    call_command("evacuate", "hv-new1", "--plan-only", stdout=text)
    assert "cannot move live (2):" in text.getvalue() and "compat-vector-restart-required" in text.getvalue()

    with pytest.raises(CommandError) as refused:
        call_command("evacuate", "hv-new1", "--choice", "ckpt-new01=shut_down_move", "--user", "admin")
    assert refused.value.returncode == 2 and not Batch.objects.exists()

    call_command(
        "evacuate", "hv-new1", "--choice", "erp-app01=shut_down_move", "--json", "--user", "admin", stdout=io.StringIO()
    )
    batch = Batch.objects.get()
    assert dict(batch.jobs.exclude(power="").values_list("vm_name", "power")) == {"erp-app01": "shut_down"}
    assert batch.plan["left_running"] == ["ckpt-new01"] and not host("hv-new1").maintenance


def test_the_api_reports_and_evacuates_with_choices(demo, operator_user, viewer_user):
    viewer = Api(create_token(viewer_user, "report")[1])
    status, report = viewer.get(f"/hosts/{host('hv-new1').fqdn}/maintenance-report")
    assert status == 200
    assert {r["vm"] for r in report["vms"]} == {"erp-app01", "ckpt-new01"}
    assert viewer.post("/evacuations", {"host": "hv-new1"})[0] == 403

    operator = Api(create_token(operator_user, "evacuate")[1])
    status, error = operator.post("/evacuations", {"host": "hv-new1", "choices": {"ckpt-new01": "save_move"}})
    assert status == 400 and "ckpt-new01" in error["message"] and not Batch.objects.exists()
    choices = {"erp-app01": SHUT_DOWN_MOVE, str(vm("ckpt-new01").guid): SHUT_DOWN_STAY}
    status, batch = operator.post("/evacuations", {"host": "hv-new1", "choices": choices})
    assert status == 201
    assert Batch.objects.get(pk=batch["id"]).plan["shut_down"] == [str(vm("ckpt-new01").guid)]
    assert host("hv-new1").maintenance
