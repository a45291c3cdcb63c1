"""The job lifecycle against the simulated demo fabric, in process (the real worker path runs in
test_workers.py). The simulator's clock runs 400x wall time, so a demo move takes a fraction of a second."""

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from fabric.driver import get_driver
from fabric.hyperv.api import HyperVError
from migrations_ui.jobs.operations import CannotCancel, cancel_job, create_job
from migrations_ui.jobs.runner import RECOVERY_PENDING, STALE_AFTER, Runner
from migrations_ui.jobs.scheduler import admit_waiting, queue_decision
from migrations_ui.jobs.supervisor import ORPHAN_AFTER, reap_stale, requeue_orphans
from migrations_ui.jobs.tasks import recover_job, run_job
from migrations_ui.models import JobState, MigrationJob
from tests.migrations_ui.conftest import host, vm

pytestmark = pytest.mark.django_db(transaction=True)


def moves_of(store, vm_id):
    with store.session() as fabric:
        return [
            r
            for r in fabric.record
            if r["cmdlet"] in ("Move-VM", "Move-VMStorage") and r.get("result") == "started" and vm_id in str(r)
        ]


def submit(name, to, **kw):
    job = create_job(vm(name), host(to), **kw)
    admit_waiting()  # what the commit hook does in production
    job.refresh_from_db()
    return job


def test_a_live_move_runs_to_success_and_the_inventory_follows(demo):
    job = submit("file-s01", "hv-s2")
    assert job.state == JobState.ADMITTED

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.percent == 100 and job.blackout_ms is not None and job.finished_at is not None
    assert vm("file-s01").host.name == "hv-s2"
    kinds = list(job.events.values_list("kind", flat=True))
    assert kinds[0] == "created" and kinds.count("progress") >= 1
    states = [e.data["state"] for e in job.events.filter(kind="state")]
    assert states == ["admitted", "running", "succeeded"]
    steps = [e.data["step"] for e in job.events.filter(kind="step") if "label" in e.data]
    assert steps == ["compare", "move", "verify", "refresh"]
    assert len(moves_of(demo, str(job.vm.guid))) == 1


def test_a_failure_on_the_host_fails_the_job_with_code_and_remedy(demo):
    machine = vm("app-s01")
    with demo.session() as fabric:
        fabric.inject_failure(str(machine.guid), "memory")
    job = submit("app-s01", "hv-s2")

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_code == "0x800705AA" and job.error_remedy
    assert vm("app-s01").host.name == "hv-s1"


def test_compare_vm_stops_a_move_before_anything_moves(demo):
    # Bypass pre-flight, as a change on the host after submission would: Compare-VM still catches it.
    machine = vm("legacy-fax")
    job = MigrationJob.objects.create(
        kind="live", vm=machine, vm_name=machine.name, source=machine.host, destination=host("hv-new1")
    )
    admit_waiting()

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "33012"
    assert "vSwitch-Legacy" in job.error_message
    assert moves_of(demo, str(machine.guid)) == []


def test_a_cross_cluster_move_leaves_and_rejoins_ha(demo):
    job = submit("erp-web01", "hv-new1")

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    with demo.session() as fabric:
        cmdlets = [r["cmdlet"] for r in fabric.record if str(job.vm.guid) in str(r)]
    assert (
        cmdlets.index("Remove-ClusterGroup") < cmdlets.index("Move-VM") < cmdlets.index("Add-ClusterVirtualMachineRole")
    )
    moved = vm("erp-web01")
    assert moved.host.name == "hv-new1" and moved.is_clustered


def vm_cmdlets(store, vm_id):
    with store.session() as fabric:
        return [(r["cmdlet"], r.get("result")) for r in fabric.record if vm_id in str(r)]


def test_a_move_to_another_cluster_without_shared_storage_leaves_its_cluster_before_compare_vm(demo):
    # Compare-VM refuses storage options for a clustered VM ("remove it from the cluster first").
    job = submit("erp-app02", "hv-new1")
    assert job.kind == "live_vsm"

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    cmdlets = [c for c, _ in vm_cmdlets(demo, str(job.vm.guid))]
    assert cmdlets.index("Remove-ClusterGroup") < cmdlets.index("Compare-VM") < cmdlets.index("Move-VM")
    assert cmdlets.index("Move-VM") < cmdlets.index("Add-ClusterVirtualMachineRole")
    steps = [e.data["step"] for e in job.events.filter(kind="step") if "label" in e.data]
    assert steps == ["leave_cluster", "compare", "move", "verify", "join_cluster", "refresh"]
    moved = vm("erp-app02")
    assert moved.host.name == "hv-new1" and moved.is_clustered


def test_compare_vm_failing_after_the_vm_left_its_cluster_makes_it_highly_available_again(demo):
    job = submit("erp-app02", "hv-new1")
    with demo.session() as fabric:  # changed on the host after pre-flight: Compare-VM finds it
        fabric.hosts["hv-new1.contoso.test"].virtual_switches = ["vSwitch-DMZ"]
        fabric.touch()

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "33012"
    assert not job.ha_removed
    with demo.session() as fabric:
        machine = fabric.vm_by_name("erp-app02")
        assert machine.host == "hv-old2.contoso.test" and machine.is_clustered
    assert [c for c, _ in vm_cmdlets(demo, str(job.vm.guid))][-1] == "Add-ClusterVirtualMachineRole"
    restored = job.events.get(kind="step", data__step="restore_ha", data__done=True)
    assert restored.data["host"] == "hv-old2"


def test_a_failure_after_the_vm_arrived_restores_ha_on_the_destination_not_the_source(demo):
    real = get_driver()
    joins = []

    class JoinFailsOnce:
        """The real driver; the first Add-ClusterVirtualMachineRole fails (the cluster was busy)."""

        def __getattr__(self, name):
            return getattr(real, name)

        def add_cluster_role(self, conn, vm_id):
            joins.append(conn.fqdn)
            if len(joins) == 1:
                raise HyperVError("OperationFailed", "The cluster is busy")
            return real.add_cluster_role(conn, vm_id)

    job = submit("erp-app02", "hv-new1")
    Runner.start(job.pk, driver=JoinFailsOnce()).run()

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_message == "The cluster is busy"
    assert joins == ["hv-new1.contoso.test", "hv-new1.contoso.test"]  # never on the source it left
    with demo.session() as fabric:
        machine = fabric.vm_by_name("erp-app02")
        assert machine.host == "hv-new1.contoso.test" and machine.is_clustered
    assert job.events.filter(kind="step", data__step="restore_ha", data__host="hv-new1").exists()


def test_a_cancel_that_meets_a_move_already_ended_is_no_failure(demo):
    real = get_driver()
    job = submit("file-s01", "hv-s2")

    class EndedBeforeTheCancel:
        """The operator presses Cancel; the host answers that the move has already ended (4097)."""

        def __getattr__(self, name):
            return getattr(real, name)

        def migration_status(self, conn, migration_id, request=None):
            status = real.migration_status(conn, migration_id, request)
            if MigrationJob.objects.get(pk=job.pk).state == JobState.RUNNING:
                cancel_job(job.pk)
            return status

        def cancel_migration(self, conn, migration_id):
            raise HyperVError("InvalidState", "The migration job has already ended", "Refresh its status")

    Runner.start(job.pk, driver=EndedBeforeTheCancel()).run()

    job.refresh_from_db()
    assert job.state != JobState.FAILED, job.error_message
    assert vm("file-s01").host.name == "hv-s2"


def test_a_storage_move_of_selected_vhds(demo):
    machine = vm("backup01")
    disk = machine.disks.order_by("path").first()
    target = "E:\\Fast\\" + disk.path.rsplit("\\", 1)[-1]
    job = submit("backup01", "hv-s3", vhds=((disk.path, target),))
    assert job.kind == "storage"

    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert vm("backup01").disks.filter(path=target).exists()
    # Its own steps (issue 19, 5): no Compare-VM, and the step events say it is a storage move.
    steps = list(job.events.filter(kind="step").values_list("data", flat=True))
    assert [d["step"] for d in steps if not d.get("done")] == ["move", "verify", "refresh"]
    assert {d.get("kind") for d in steps if d["step"] in ("move", "verify")} == {"storage"}


def test_jobs_wait_for_a_free_slot_and_start_when_one_frees(demo):
    names = ["file-s01", "app-s01", "web-dmz01"]  # three moves out of hv-s1 (limit 2)
    jobs = [create_job(vm(n), host("hv-s2")) for n in names]
    admit_waiting()

    states = [MigrationJob.objects.get(pk=j.pk).state for j in jobs]
    assert states == ["admitted", "admitted", "queued"]
    decision = queue_decision()
    # hv-s1 has two moves out and hv-s2 two moves in: both count (hyperv.md section 3).
    assert decision.waiting_for[jobs[2].pk] == ((host("hv-s1").pk, "live"), (host("hv-s2").pk, "live"))

    run_job.call(jobs[0].pk)  # its end admits the next one

    assert MigrationJob.objects.get(pk=jobs[2].pk).state == JobState.ADMITTED


def test_cancel_a_queued_job_at_once_and_refuse_finished_or_unknown(demo):
    jobs = [create_job(vm(n), host("hv-s2")) for n in ["file-s01", "app-s01", "web-dmz01"]]
    admit_waiting()

    cancel_job(jobs[2].pk)

    assert MigrationJob.objects.get(pk=jobs[2].pk).state == JobState.CANCELLED
    with pytest.raises(CannotCancel, match="already ended"):
        cancel_job(jobs[2].pk)
    with pytest.raises(CannotCancel, match="no job"):
        cancel_job(99999)


def test_cancel_a_running_job_through_the_host(demo, settings):
    # At the fixture's 400x a loaded machine may read the first progress after the move has ended.
    settings.SIM_TIME_SCALE = 4
    job = submit("analytics01", "hv-s1")
    real = get_driver()

    class OperatorCancelsMidMove:
        """The real driver; the operator presses Cancel while the first progress is read."""

        def __getattr__(self, name):
            return getattr(real, name)

        def migration_status(self, conn, migration_id, request=None):
            status = real.migration_status(conn, migration_id, request)
            if MigrationJob.objects.get(pk=job.pk).state == JobState.RUNNING:
                cancel_job(job.pk)
            return status

    runner = Runner.start(job.pk, driver=OperatorCancelsMidMove())
    runner.run()

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    kinds = list(job.events.values_list("kind", flat=True))
    assert "cancel_sent" in kinds
    assert [e.data["state"] for e in job.events.filter(kind="state")][-2:] == ["cancelling", "cancelled"]
    assert vm("analytics01").host.name == "hv-s2"
    with demo.session() as fabric:
        stops = [r for r in fabric.record if r["cmdlet"] == "RequestStateChange"]
        assert [r["params"]["Job"] for r in stops] == [job.host_migration_id]
        assert fabric.migrations[job.host_migration_id].state == "cancelled"


def test_recovery_follows_a_move_whose_worker_died(demo):
    job = submit("web-dmz02", "hv-s1")
    runner = Runner.start(job.pk)
    runner._compare()
    # The worker sends Move-VM and dies before it reads any progress.
    runner._step("move")
    from migrations_ui.jobs.events import record

    record(runner.job, "move_requested", {}, move_requested_at=timezone.now())
    migration_id = runner.driver.start_migration(runner.source, runner.request)
    record(runner.job, "host_job", {"migration_id": migration_id}, host_migration_id=migration_id)
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - STALE_AFTER * 2)

    assert reap_stale() == [job.pk]
    assert MigrationJob.objects.get(pk=job.pk).worker == RECOVERY_PENDING
    assert reap_stale() == []  # leased once
    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert vm("web-dmz02").host.name == "hv-s1"
    assert len(moves_of(demo, str(job.vm.guid))) == 1
    assert {"worker_lost", "recovery"} <= set(job.events.values_list("kind", flat=True))


def test_recovery_finds_a_move_the_dead_worker_never_saw_the_id_of(demo):
    job = submit("ci-runner01", "hv-s1")
    runner = Runner.start(job.pk)
    from migrations_ui.jobs.events import record

    record(runner.job, "move_requested", {}, move_requested_at=timezone.now())
    runner.driver.start_migration(runner.source, runner.request)  # sent; the id never reached the database
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - STALE_AFTER * 2)
    reap_stale()

    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(moves_of(demo, str(job.vm.guid))) == 1


def run_tasks(job_pk):
    """What job_worker does with the job's waiting tasks: each one runs (django-tasks-db's Task.call)."""
    for task in DBTaskResult.objects.ready().filter(task_path=run_job.module_path):
        if task.args_kwargs["args"] == [job_pk]:
            task.task.call(*task.args_kwargs["args"])


def test_admission_writes_each_jobs_task_in_its_own_transaction(demo):
    with transaction.atomic():
        jobs = [create_job(vm(n), host("hv-s2")) for n in ["file-s01", "app-s01"]]
        admitted = admit_waiting()
        # Before the commit, so no commit hook a killed process could miss: the tasks and the
        # admission commit together or not at all.
        tasks = DBTaskResult.objects.filter(task_path=run_job.module_path)
        assert sorted(t.args_kwargs["args"][0] for t in tasks) == sorted(j.pk for j in jobs) == sorted(admitted)


def orphan(name, to):
    """A job admitted a while ago whose worker task is gone (the crash of issue 17: a worker killed
    right after admitting two jobs left one without a task)."""
    job = submit(name, to)
    DBTaskResult.objects.filter(args_kwargs__args=[job.pk]).delete()
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - ORPHAN_AFTER * 2)
    return job


def test_an_admitted_job_without_a_task_is_handed_to_a_worker_again(demo):
    job = orphan("file-s01", "hv-s2")

    assert requeue_orphans() == [job.pk]
    assert requeue_orphans() == []  # its new task waits for a worker: no second one
    run_tasks(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert "requeued" in job.events.values_list("kind", flat=True)


def test_a_job_whose_task_waits_for_a_worker_is_left_alone(demo):
    job = submit("file-s01", "hv-s2")
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - ORPHAN_AFTER * 10)

    assert requeue_orphans() == []
    assert DBTaskResult.objects.filter(args_kwargs__args=[job.pk]).count() == 1


def test_a_requeued_job_runs_once_when_its_first_task_turns_up(demo):
    job = submit("app-s01", "hv-s2")
    # Its worker took the task and stalled (or died) before claiming the job.
    first = DBTaskResult.objects.get(args_kwargs__args=[job.pk])
    DBTaskResult.objects.filter(pk=first.pk).update(status="RUNNING")
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - ORPHAN_AFTER * 2)
    assert requeue_orphans() == []  # a claim may be waiting for the database's lock: not yet
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - STALE_AFTER * 2)

    assert requeue_orphans() == [job.pk]
    run_tasks(job.pk)
    first.task.call(job.pk)  # the first task goes on after all

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    states = [e.data["state"] for e in job.events.filter(kind="state")]
    assert states == ["admitted", "running", "succeeded"]
    assert len(moves_of(demo, str(job.vm.guid))) == 1


def test_a_driver_error_never_leaves_a_job_stuck(demo, monkeypatch):
    job = submit("file-s01", "hv-s2")

    def broken(*args, **kwargs):
        raise RuntimeError("connection pool exploded")

    monkeypatch.setattr(type(get_driver()), "compare", broken)
    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.error_code == "console"
    assert "connection pool exploded" in job.error_message


def test_a_failed_refresh_after_a_verified_move_is_a_warning_not_a_failure(demo, monkeypatch):
    job = submit("file-s01", "hv-s2")

    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr("migrations_ui.jobs.runner.sync_inventory", broken)
    run_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    warning = job.events.get(kind="warning")
    assert "could not be refreshed" in warning.data["message"]


def test_the_host_page_shows_the_slots_in_use(demo, admin_client):
    submit("file-s01", "hv-s2")
    submit("app-s01", "hv-s2")

    body = admin_client.get(host("hv-s1").get_absolute_url()).content.decode()

    assert "live 2/2, storage 0/2" in body
