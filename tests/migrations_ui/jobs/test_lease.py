"""One driver per job (the lease) and the "unknown" state, in process against the simulated demo
fabric: a worker whose lease was taken writes nothing more; the heartbeat goes on while a read
blocks; a host that stops answering after Move-VM leaves the job unknown (slots kept, no HA change)
until the host answers and recovery records the true outcome; Move-VM is never sent twice."""

import time

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from fabric.driver import get_driver
from fabric.hyperv.api import HostUnreachable
from migrations_ui.jobs import runner as runner_module
from migrations_ui.jobs.events import record
from migrations_ui.jobs.operations import CannotCancel, CannotDecide, cancel_job, decide_unknown
from migrations_ui.jobs.runner import RECOVERY_PENDING, STALE_AFTER, Runner
from migrations_ui.jobs.scheduler import slots_in_use
from migrations_ui.jobs.supervisor import hand_to_recovery, reap_stale
from migrations_ui.jobs.tasks import recover_job
from migrations_ui.models import JobState, MigrationJob
from tests.migrations_ui.conftest import host, vm
from tests.migrations_ui.jobs.test_runner import moves_of, submit, vm_cmdlets

pytestmark = pytest.mark.django_db(transaction=True)


class Wrapped:
    """The real driver, with one method replaced by a test."""

    def __init__(self, **methods):
        self.real = get_driver()
        self.methods = methods

    def __getattr__(self, name):
        return self.methods.get(name) or getattr(self.real, name)


def set_reachable(store, name, reachable):
    with store.session() as fabric:
        fabric.set_reachable(f"{name}.contoso.test", reachable)


def age(job):
    """As if the job's last heartbeat (or last question to its hosts) was long ago."""
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - STALE_AFTER * 2)


def audit_actions(job):
    return list(AuditEvent.objects.filter(details__job=job.pk).order_by("pk").values_list("action", flat=True))


def test_a_worker_whose_lease_was_taken_writes_nothing_more(demo):
    job = submit("web-dmz02", "hv-s1")
    reads = []

    def status_then_lease_taken(conn, migration_id, request=None):
        status = get_driver().migration_status(conn, migration_id, request)
        if not reads:  # the supervisor judged this worker dead and handed the job on meanwhile
            hand_to_recovery(MigrationJob.objects.get(pk=job.pk))
            events_before.extend(job.events.exclude(kind="worker_lost").values_list("pk", flat=True))
        reads.append(status)
        return status

    runner = Runner.start(job.pk, driver=Wrapped(migration_status=status_then_lease_taken))
    events_before = []
    runner.run()

    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.worker == RECOVERY_PENDING  # left to the recovery
    written = job.events.exclude(pk__in=events_before).values_list("kind", flat=True)
    assert list(written) == ["worker_lost"]  # the supervisor's, none of the old worker's
    assert len(reads) == 1  # it stopped at its next write

    recover_job.call(job.pk)  # what the recovery task then does
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(moves_of(demo, str(job.vm.guid))) == 1


def test_the_heartbeat_goes_on_while_a_read_blocks(demo, monkeypatch):
    monkeypatch.setattr(runner_module, "HEARTBEAT_S", 0.05)
    job = submit("file-s01", "hv-s2")
    seen = []

    def slow_read(conn, migration_id, request=None):
        if not seen:
            before = MigrationJob.objects.get(pk=job.pk).heartbeat_at
            time.sleep(0.5)  # a host that takes its time to answer
            seen.append((before, MigrationJob.objects.get(pk=job.pk).heartbeat_at))
        return get_driver().migration_status(conn, migration_id, request)

    Runner.start(job.pk, driver=Wrapped(migration_status=slow_read)).run()

    ((before, after),) = seen
    assert after > before  # beaten during the read
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


def test_a_host_that_stops_answering_mid_move_leaves_the_job_unknown_until_it_answers(demo):
    job = submit("erp-app02", "hv-new1")  # leaves CL-OLD for CL-NEW: HA is removed for the move
    real = get_driver()

    def start_then_source_goes_silent(conn, request):
        migration_id = real.start_migration(conn, request)
        set_reachable(demo, "hv-old1", False)
        set_reachable(demo, "hv-old2", False)
        return migration_id

    source = vm("erp-app02").host.name
    Runner.start(job.pk, driver=Wrapped(start_migration=start_then_source_goes_silent)).run()

    job.refresh_from_db()
    assert job.state == JobState.UNKNOWN
    assert job.worker == "" and job.error_code == "" and job.finished_at is None
    unknown = job.events.filter(kind="state").last()
    assert unknown.data["state"] == "unknown" and unknown.data["host"] == f"{source}.contoso.test"
    assert slots_in_use()[(host(source).pk, "live")] == 1  # still held: the move may be running
    calls = [c for c, _ in vm_cmdlets(demo, str(job.vm.guid))]
    assert "Add-ClusterVirtualMachineRole" not in calls  # no HA change on a side nobody knows
    with pytest.raises(CannotCancel):
        cancel_job(job.pk)

    # Asked again while the host is still silent: still unknown, and no news written.
    events = job.events.count()
    age(job)
    assert reap_stale() == [job.pk]
    recover_job.call(job.pk)
    job.refresh_from_db()
    assert job.state == JobState.UNKNOWN and job.worker == "" and job.events.count() == events

    set_reachable(demo, "hv-old1", True)
    set_reachable(demo, "hv-old2", True)
    age(job)
    reap_stale()
    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.error_code == ""
    back = job.events.filter(kind="state", data__state="running").last()
    assert back.data["evidence"]  # what the host answered
    assert len(moves_of(demo, str(job.vm.guid))) == 1
    with demo.session() as fabric:
        machine = fabric.vm_by_name("erp-app02")
        assert machine.host == "hv-new1.contoso.test" and machine.is_clustered  # joined where it runs
    actions = audit_actions(job)
    assert "migration.unknown" in actions and "migration.succeeded" in actions
    assert "migration.failed" not in actions


def test_recovery_never_sends_the_move_again(demo):
    job = submit("ci-runner01", "hv-s1")
    runner = Runner.start(job.pk)
    record(runner.job, "move_requested", {}, move_requested_at=timezone.now())
    # The worker died between recording the request and sending Move-VM: the host never had it.
    age(job)
    reap_stale()

    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "not-moved"
    assert "runs on the source" in job.error_message
    assert moves_of(demo, str(job.vm.guid)) == []
    assert vm("ci-runner01").host.name == "hv-s2"
    assert job.events.filter(kind="evidence", data__found="VM still on the source").exists()


def test_an_operator_decides_an_unknown_job_and_a_recovery_in_flight_stops(demo):
    job = submit("web-dmz02", "hv-s1")
    runner = Runner.start(job.pk)
    record(runner.job, "move_requested", {}, move_requested_at=timezone.now())
    set_reachable(demo, "hv-s2", False)
    runner.recover()  # asks the silent source: unknown
    job.refresh_from_db()
    assert job.state == JobState.UNKNOWN

    age(job)
    reap_stale()
    recovery = Runner.take_over(job.pk)
    with pytest.raises(CannotDecide):
        decide_unknown(job.pk, "maybe")
    decided = decide_unknown(job.pk, "failed", None)
    assert decided.state == JobState.FAILED and decided.error_code == "operator"

    set_reachable(demo, "hv-s2", True)
    recovery.recover()  # its lease was taken by the decision: it writes nothing
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "operator"
    assert slots_in_use()[(host("hv-s2").pk, "live")] == 0
    with pytest.raises(CannotDecide):
        decide_unknown(job.pk, "succeeded")
    assert "migration.decided" in audit_actions(job)


def test_a_job_handed_to_recovery_is_taken_by_one_task_only(demo):
    job = submit("app-s01", "hv-s2")
    Runner.start(job.pk)
    age(job)
    assert reap_stale() == [job.pk]
    assert reap_stale() == []  # its recovery task waits: no second one

    first, second = Runner.take_over(job.pk), Runner.take_over(job.pk)

    assert first is not None and second is None
    assert job.events.filter(kind="recovery").count() == 1


class WorkerKilled(BaseException):
    """SIGKILL, as far as the runner can tell: nothing after it runs (no except Exception catches it)."""


def joins_of(store, vm_id):
    return [r for c, r in vm_cmdlets(store, vm_id) if c == "Add-ClusterVirtualMachineRole"]


@pytest.mark.django_db(transaction=True, databases=["default", "channels"])
def test_a_worker_killed_after_the_vm_joined_the_destination_cluster_leaves_a_succeeded_job(demo, monkeypatch):
    # The fault test's erp-app02 -> hv-new1 ended "failed" with the VM on hv-new1: its worker died
    # in the refresh, after Add-ClusterVirtualMachineRole; recovery verified the VM on the destination
    # and sent the role again, which the cluster refuses ("already a clustered role": InvalidState).
    job = submit("erp-app02", "hv-new1")  # leaves CL-OLD for CL-NEW: HA is removed for the move
    real_sync = runner_module.sync_inventory

    def killed_in_the_refresh(driver, hosts):
        monkeypatch.setattr(runner_module, "sync_inventory", real_sync)
        raise WorkerKilled()

    monkeypatch.setattr(runner_module, "sync_inventory", killed_in_the_refresh)
    with pytest.raises(WorkerKilled):
        Runner.start(job.pk).run()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.step == "refresh"
    assert joins_of(demo, str(job.vm.guid)) == ["added"]

    age(job)
    assert reap_stale() == [job.pk]
    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, f"{job.error_code}: {job.error_message}"
    with demo.session() as fabric:
        machine = fabric.vm_by_name("erp-app02")
        assert machine.host == "hv-new1.contoso.test" and machine.is_clustered
    assert "migration.failed" not in audit_actions(job)
    assert len(moves_of(demo, str(job.vm.guid))) == 1
    assert job.events.filter(kind="evidence", data__found="VM already highly available").exists()


@pytest.mark.django_db(transaction=True, databases=["default", "channels"])
def test_a_join_the_host_made_but_whose_answer_was_lost_is_not_a_failure(demo):
    # The emulator frozen (SIGSTOP) right after it made the VM highly available: the read times out,
    # the job is unknown; once the host answers, recovery finds the role already there.
    job = submit("erp-app02", "hv-new1")
    real = get_driver()

    def joined_then_silent(conn, vm_id):
        real.add_cluster_role(conn, vm_id)
        set_reachable(demo, "hv-new1", False)
        raise HostUnreachable(conn.fqdn, "connected, but no answer within 12 s")

    Runner.start(job.pk, driver=Wrapped(add_cluster_role=joined_then_silent)).run()
    job.refresh_from_db()
    assert job.state == JobState.UNKNOWN

    set_reachable(demo, "hv-new1", True)
    age(job)
    assert reap_stale() == [job.pk]
    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, f"{job.error_code}: {job.error_message}"
    assert not job.events.filter(kind="warning").exists()
    with demo.session() as fabric:
        machine = fabric.vm_by_name("erp-app02")
        assert machine.host == "hv-new1.contoso.test" and machine.is_clustered
    assert "migration.failed" not in audit_actions(job)


@pytest.mark.django_db(transaction=True, databases=["default", "channels"])
def test_a_move_the_host_starts_late_is_followed_not_recorded_as_not_made(demo, monkeypatch):
    # Move-VM sent as the host froze: the bytes wait in its receive buffer, and the host starts the
    # move when it wakes, in the same instant as the recovery's first question, which sees no move yet.
    monkeypatch.setattr(runner_module, "SETTLE_S", 0.01)
    job = submit("ci-runner01", "hv-s1")
    runner = Runner.start(job.pk)
    record(runner.job, "move_requested", {}, move_requested_at=timezone.now())
    real = get_driver()
    asked = []

    def then_the_late_move_starts(conn, vm_id):
        found = real.find_migration(conn, vm_id)
        if not asked:
            real.start_migration(conn, runner.request)  # the buffered Move-VM, carried out now
        asked.append(found)
        return found

    age(job)
    reap_stale()
    Runner.take_over(job.pk, driver=Wrapped(find_migration=then_the_late_move_starts)).recover()

    job.refresh_from_db()
    assert asked[0] is None and asked[1].state == "running"
    assert job.state == JobState.SUCCEEDED, f"{job.error_code}: {job.error_message}"
    assert vm("ci-runner01").host.name == "hv-s1"
    assert len(moves_of(demo, str(job.vm.guid))) == 1  # the console sent none itself
