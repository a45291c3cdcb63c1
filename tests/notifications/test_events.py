"""Where events happen: a job failing or succeeding on the simulated demo fabric, its batch finishing,
a host that stops answering, a maintenance window starting."""

import pytest

from fabric.hyperv.api import HyperVError
from fabric.sync import sync_inventory
from migrations_ui.jobs.tasks import run_job
from migrations_ui.models import JobState, MigrationJob
from notifications.models import Delivery, EventKind, Notice
from notifications.send import deliver_due
from tests.migrations_ui.conftest import demo, host, vm  # noqa: F401 - the demo fixture
from tests.migrations_ui.jobs.test_runner import submit
from tests.notifications.test_delivery import make_webhook, verify

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failing_job_is_delivered_to_the_webhook(demo, receiver):  # noqa: F811
    make_webhook(receiver.url, kinds=[EventKind.JOB_FAILED, EventKind.JOB_SUCCEEDED])
    with demo.session() as fabric:
        fabric.inject_failure(str(vm("app-s01").guid), "memory")  # Hyper-V refuses: not enough memory
    run_job.call(submit("app-s01", "hv-s2").pk)
    job = MigrationJob.objects.get(vm_name="app-s01")
    assert job.state == JobState.FAILED and deliver_due() == 1
    (request,) = receiver.requests
    assert verify(request) and request["body"]["kind"] == "job.failed"
    data = request["body"]["data"]
    assert data["job"] == job.pk and data["vm"] == "app-s01" and data["error"]["code"] == "0x800705AA"


def test_a_succeeding_job_and_its_batch_finishing(demo, receiver):  # noqa: F811
    from migrations_ui.models import Batch

    make_webhook(receiver.url, kinds=[EventKind.JOB_SUCCEEDED, EventKind.BATCH_FINISHED])
    batch = Batch.objects.create(name="two", kind="selection")
    job = submit("file-s01", "hv-s2")
    job.batch = batch
    job.save(update_fields=["batch"])
    run_job.call(job.pk)
    assert deliver_due() == 2
    kinds = sorted(r["body"]["kind"] for r in receiver.requests)
    assert kinds == ["batch.finished", "job.succeeded"]
    finished = next(r["body"]["data"] for r in receiver.requests if r["body"]["kind"] == "batch.finished")
    assert finished["batch"] == batch.pk and finished["jobs"] == {"succeeded": 1}


class Unreachable:
    def inventory(self, conn):
        raise HyperVError("0x80338012", "The WinRM client cannot complete the operation.", "Check the host.")


def test_a_host_that_stops_answering_is_told_once(demo, receiver):  # noqa: F811
    make_webhook(receiver.url, kinds=[EventKind.HOST_UNREACHABLE])
    target = host("hv-s1")
    sync_inventory(Unreachable(), [target])
    sync_inventory(Unreachable(), [target])  # still down: not again
    assert Notice.objects.filter(kind=EventKind.HOST_UNREACHABLE).count() == 1
    assert Delivery.objects.get().notice.data["host"] == target.fqdn


@pytest.mark.django_db(transaction=True, databases=["default", "channels"])
def test_a_maintenance_window_starting(demo_fabric, receiver):

    from django.utils import timezone

    from fabric.models import Host
    from migrations_ui.jobs import windows
    from migrations_ui.models import MaintenanceWindow

    make_webhook(receiver.url, kinds=[EventKind.WINDOW_STARTING])
    due = MaintenanceWindow.objects.create(
        kind="evacuation", name="Evacuate hv-s4", host=Host.objects.get(name="hv-s4"), starts_at=timezone.now()
    )
    windows.start_due_windows()
    assert deliver_due() >= 1
    told = [r["body"]["data"] for r in receiver.requests if r["body"]["kind"] == "window.starting"]
    assert told and told[0]["window"] == due.pk and told[0]["name"] == "Evacuate hv-s4"
