"""A job gives its hosts' slots back once the host reports its move completed, before it verifies,
rejoins the cluster and refreshes the inventory; the next waiting job is admitted at that moment.
Against the simulated demo fabric, in process (test_workers.py runs the real worker processes)."""

import pytest
from django.utils import timezone

from fabric.driver import get_driver
from fabric.hyperv.api import MigrationStatus
from migrations_ui.jobs import runner as runner_module
from migrations_ui.jobs.operations import create_job
from migrations_ui.jobs.runner import FAST_POLL_S, POLL_S, STALE_AFTER, Pace, Runner, still_starting
from migrations_ui.jobs.scheduler import admit_waiting, slots_in_use
from migrations_ui.jobs.supervisor import reap_stale
from migrations_ui.jobs.tasks import recover_job, run_job
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.preflight.assess import slot_usage
from tests.migrations_ui.conftest import host, vm

pytestmark = pytest.mark.django_db(transaction=True)


def state(job):
    return MigrationJob.objects.get(pk=job.pk).state


def three_out_of_hv_s1():
    """Three moves out of hv-s1 (live limit 2): the third waits for a slot."""
    jobs = [create_job(vm(n), host("hv-s2")) for n in ["file-s01", "app-s01", "web-dmz01"]]
    admit_waiting()
    assert [state(j) for j in jobs] == ["admitted", "admitted", "queued"]
    return jobs


class Spy:
    """The real driver; `on_verify` runs when the runner asks where the VM runs after the move."""

    def __init__(self, on_verify=None, on_join=None):
        self.real = get_driver()
        self.on_verify, self.on_join = on_verify, on_join
        self.polls = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def migration_status(self, conn, migration_id, request=None):
        self.polls += 1
        return self.real.migration_status(conn, migration_id, request)

    def get_vm(self, conn, vm_id):
        found = self.real.get_vm(conn, vm_id)
        if self.on_verify:
            self.on_verify()
        return found

    def add_cluster_role(self, conn, vm_id):
        if self.on_join:
            self.on_join()
        return self.real.add_cluster_role(conn, vm_id)


def most_at_once(fabric, fqdn):
    """The most migrations the simulator's own record has touching `fqdn` at one instant."""
    edges = []
    for m in fabric.migrations.values():
        if fqdn in (m.source, m.destination):
            edges += [(m.started_at, 1), (m.ended_at if m.ended_at is not None else float("inf"), -1)]
    most = now = 0
    for _, delta in sorted(edges):  # an end sorts before a start at the same instant
        now += delta
        most = max(most, now)
    return most


def test_the_slots_are_free_and_the_next_job_admitted_while_the_job_verifies_and_refreshes(demo, monkeypatch):
    jobs = three_out_of_hv_s1()
    hv_s1 = host("hv-s1").pk
    seen = {}

    def at_verify():
        job = MigrationJob.objects.get(pk=jobs[0].pk)
        seen["verify"] = (job.state, job.step, job.slots_released_at is not None, state(jobs[2]))
        seen["in use"] = slots_in_use()[(hv_s1, "live")]
        seen["pre-flight"] = slot_usage().live[hv_s1]

    real_sync = runner_module.sync_inventory

    def at_refresh(driver, hosts):
        seen["refresh"] = (state(jobs[0]), state(jobs[2]))
        return real_sync(driver, hosts)

    monkeypatch.setattr(runner_module, "sync_inventory", at_refresh)
    Runner.start(jobs[0].pk, driver=Spy(on_verify=at_verify)).run()

    # While it verified, the job still ran but held no slot: the third job had it.
    assert seen["verify"] == ("running", "verify", True, "admitted")
    assert seen["in use"] == 2  # app-s01 and web-dmz01: hv-s1's limit, not above it
    assert seen["pre-flight"] == 2  # pre-flight counts the hosts' slots as admission does
    assert seen["refresh"] == ("running", "admitted")
    done = MigrationJob.objects.get(pk=jobs[0].pk)
    assert done.state == JobState.SUCCEEDED and done.slots_released_at <= done.finished_at


def test_a_job_holds_its_slots_until_the_host_reports_the_move_completed(demo, settings):
    # At the fixture's 400x a loaded machine may read the first progress after the move has ended.
    settings.SIM_TIME_SCALE = 40
    jobs = three_out_of_hv_s1()
    seen = []

    class Watch(Spy):
        def migration_status(self, conn, migration_id, request=None):
            status = super().migration_status(conn, migration_id, request)
            if status.state == "running":
                seen.append((MigrationJob.objects.get(pk=jobs[0].pk).slots_released_at, state(jobs[2])))
            return status

    Runner.start(jobs[0].pk, driver=Watch()).run()

    assert seen and all(released is None and waiting == "queued" for released, waiting in seen)
    assert state(jobs[2]) == JobState.ADMITTED


def test_the_next_job_started_during_the_verify_never_puts_a_host_above_its_limit(demo):
    jobs = three_out_of_hv_s1()
    started = []

    def next_worker_starts():
        if not started:  # the next job's worker takes it while this one verifies
            started.append(jobs[2].pk)
            run_job.call(jobs[2].pk)

    Runner.start(jobs[0].pk, driver=Spy(on_verify=next_worker_starts)).run()
    run_job.call(jobs[1].pk)

    assert [state(j) for j in jobs] == ["succeeded"] * 3
    with demo.session() as fabric:
        assert most_at_once(fabric, host("hv-s1").fqdn) <= 2
        first = next(m for m in fabric.migrations.values() if m.vm_name == "file-s01")
        third = next(m for m in fabric.migrations.values() if m.vm_name == "web-dmz01")
        assert first.ended_at <= third.started_at  # freed only once the host had ended it


def test_a_cross_cluster_move_rejoins_its_cluster_after_giving_the_slots_back(demo):
    job = create_job(vm("erp-web01"), host("hv-new1"))
    admit_waiting()
    seen = []
    spy = Spy(on_join=lambda: seen.append(MigrationJob.objects.get(pk=job.pk).slots_released_at))

    Runner.start(job.pk, driver=spy).run()

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len(seen) == 1 and seen[0] is not None
    moved = vm("erp-web01")
    assert moved.host.name == "hv-new1" and moved.is_clustered


def test_recovery_of_a_job_whose_worker_died_after_giving_the_slots_back(demo):
    jobs = three_out_of_hv_s1()
    runner = Runner.start(jobs[0].pk)
    runner._compare()
    runner._move()  # follows the move to its end, frees the slots, admits the next job
    released = MigrationJob.objects.get(pk=jobs[0].pk).slots_released_at
    assert released is not None and state(jobs[2]) == JobState.ADMITTED
    # The worker dies before it verifies: the job still runs, but holds no slot.
    MigrationJob.objects.filter(pk=jobs[0].pk).update(heartbeat_at=timezone.now() - STALE_AFTER * 2)
    assert slots_in_use()[(host("hv-s1").pk, "live")] == 2

    assert reap_stale() == [jobs[0].pk]
    spy = Spy()
    Runner.take_over(jobs[0].pk, driver=spy).recover()

    job = MigrationJob.objects.get(pk=jobs[0].pk)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.slots_released_at == released
    assert spy.polls == 0  # the move was known to be over: verify and refresh only
    assert vm("file-s01").host.name == "hv-s2"
    with demo.session() as fabric:
        moves = [r for r in fabric.record if r["cmdlet"] == "Move-VM" and str(job.vm.guid) in str(r)]
    assert len(moves) == 1
    done = [e for e in job.events.filter(kind="step") if e.data.get("step") == "move" and e.data.get("done")]
    assert len(done) == 1


def test_recovery_through_the_task_of_a_released_job(demo):
    job = create_job(vm("file-s01"), host("hv-s2"))
    admit_waiting()
    runner = Runner.start(job.pk)
    runner._compare()
    runner._move()
    MigrationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - STALE_AFTER * 2)
    reap_stale()

    recover_job.call(job.pk)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.step == ""


def status(state="running", percent=0, sent=0, left=0):
    return MigrationStatus("m1", "vm1", state, percent, bytes_sent=sent, bytes_remaining=left)


def test_pace_reads_at_the_normal_pace_until_progress_shows_the_end_is_near():
    pace = Pace()
    assert pace.next_sleep(status(percent=0, sent=0, left=1000), 0.0) == POLL_S  # nothing sent yet
    assert pace.next_sleep(status(percent=10, sent=100, left=900), 1.0) == POLL_S  # no rate yet
    # 100 bytes a second since: 900 left is 9 s away.
    assert pace.next_sleep(status(percent=20, sent=200, left=800), 2.0) == POLL_S
    # 100 left at 100 bytes a second: a second away, read again in half of it.
    assert pace.next_sleep(status(percent=90, sent=1000, left=100), 10.0) == pytest.approx(POLL_S)
    assert pace.next_sleep(status(percent=98, sent=1080, left=20), 10.8) == pytest.approx(0.1)
    assert pace.next_sleep(status(percent=99, sent=1095, left=5), 10.95) == FAST_POLL_S  # never faster
    assert pace.next_sleep(status(percent=99, sent=1100, left=0), 11.0) == FAST_POLL_S  # blackout, resume


def test_pace_uses_the_percent_of_a_host_that_reports_no_bytes():
    pace = Pace()
    assert pace.next_sleep(status(percent=0), 0.0) == POLL_S
    assert pace.next_sleep(status(percent=10), 1.0) == POLL_S
    assert pace.next_sleep(status(percent=50), 5.0) == POLL_S  # 10% a second: 5 s left
    assert pace.next_sleep(status(percent=98), 9.8) == pytest.approx(0.1)  # 0.2 s left
    assert pace.next_sleep(status(percent=99), 9.95) == FAST_POLL_S
    assert pace.next_sleep(status(state="completed", percent=100), 10.0) == POLL_S


def test_pace_keeps_the_normal_pace_while_progress_stands_still():
    pace = Pace()
    for t in range(5):
        assert pace.next_sleep(status(percent=40), float(t)) == POLL_S


def test_a_job_that_freed_its_slots_gives_way_only_to_jobs_on_their_way_to_move_vm():
    sent = timezone.now()
    assert still_starting([("running", None)])  # taken by a worker: Compare-VM, leaving its cluster
    assert not still_starting([("running", sent)])  # Move-VM sent: verify and refresh now
    assert not still_starting([("admitted", None)])  # no worker yet: this one may be the one it needs
    assert not still_starting([("cancelled", None), ("failed", None)])
    assert still_starting([("running", sent), ("running", None)])
    assert not still_starting([])
