"""The stall and timeout policy in a job's run: a stalled move through the emulator (the pypsrp
driver over WinRM), a move that never converges on the in-process simulator, and a move that the
host completes before the policy's cancel lands."""

import re

import pytest

from fabric.driver import get_driver
from fabric.hyperv.api import HyperVError, MigrationStatus
from fabric.models import Cluster, Host
from fabric.sync import sync_inventory
from migrations_ui.jobs.operations import create_job
from migrations_ui.jobs.runner import TIMED_OUT, Runner
from migrations_ui.jobs.scheduler import admit_waiting, slots_in_use
from migrations_ui.live.chart_data import job_chart
from migrations_ui.models import SLOT_STATES, JobState, MigrationJob
from migrations_ui.templatetags.migrations import event_text
from tests.fabric.conftest import emu_fabric_path, emu_store, emulator  # noqa: F401 - the fixtures
from tests.fabric.hyperv.test_embedded_psrp import psrp_settings  # noqa: F401 - the fixture
from tests.migrations_ui.conftest import host, vm

pytestmark = pytest.mark.django_db(transaction=True)
D = ".contoso.test"


def state(job):
    return MigrationJob.objects.get(pk=job.pk).state


def policy_events(job):
    return list(job.events.filter(kind="policy").values_list("data", flat=True))


class LinkStops:
    """The real driver; once the host reports bytes sent, the source's migration network stops
    (the simulated fabric's link goes to 0): the host keeps answering, the move makes no progress."""

    def __init__(self, store, fqdn):
        self.real, self.store, self.fqdn = get_driver(), store, fqdn
        self.stopped = False

    def __getattr__(self, name):
        return getattr(self.real, name)

    def migration_status(self, conn, migration_id, request=None):
        status = self.real.migration_status(conn, migration_id, request)
        if not self.stopped and status.bytes_sent > 0:
            with self.store.session() as fabric:
                fabric.set_link(self.fqdn, 0.0)
            self.stopped = True
        return status


def test_a_stalled_move_is_timed_out_and_cancelled_on_the_emulated_host(psrp_settings, emu_store):  # noqa: F811
    assert len(sync_inventory(get_driver()).synced) == 9
    Host.objects.filter(name="hv-s1").update(move_stall_timeout_s=2, move_timeout_s_per_gib=0)
    # A slow link first, so the move is seen making progress before it stops.
    with emu_store.session() as fabric:
        fabric.set_link("hv-s1" + D, 0.05)
    machine = vm("file-s01")
    jobs = [create_job(vm(n), host("hv-s2")) for n in ["file-s01", "app-s01", "web-dmz01"]]
    admit_waiting()
    assert [state(j) for j in jobs] == ["admitted", "admitted", "queued"]  # hv-s1: two live slots
    driver = LinkStops(emu_store, "hv-s1" + D)

    Runner.start(jobs[0].pk, driver=driver).run()

    job = MigrationJob.objects.get(pk=jobs[0].pk)
    assert driver.stopped
    assert (job.state, job.error_code) == (JobState.FAILED, TIMED_OUT), job.error_message
    assert re.search(r"no progress for [23] s \(limit 2 s\)", job.error_message), job.error_message
    assert "in pass 1" in job.error_message and "left" in job.error_message and "dirty rate" in job.error_message
    assert "Compression" in job.error_remedy
    [acted] = policy_events(job)
    assert acted["rule"] == "stall" and acted["action"] == "cancel" and acted["stalled_s"] >= 2
    assert acted["pass_number"] == 1 and acted["bytes_remaining"] > 0
    kinds = list(job.events.values_list("kind", flat=True))
    assert kinds.index("policy") < kinds.index("cancel_sent")
    assert job.events.get(kind="cancel_sent").data == {"by": "policy"}
    # The host was asked to terminate the move (RequestStateChange 4 on its Msvm_MigrationJob) ...
    with emu_store.session() as fabric:
        stops = [r for r in fabric.record if r["cmdlet"] == "Invoke-CimMethod"]
        assert [r["params"]["InstanceID"] for r in stops] == [job.host_migration_id]
        assert stops[0]["params"]["MethodName"] == "RequestStateChange"
        assert fabric.migrations[job.host_migration_id].state == "cancelled"
        # ... and the VM stays on its source, in the host's world and in the inventory.
        assert fabric.vms[str(machine.guid)].host == "hv-s1" + D
    assert vm("file-s01").host.name == "hv-s1"
    # Its slots are free: the third move out of hv-s1 was admitted when it ended.
    assert job.state not in SLOT_STATES
    assert state(jobs[2]) == JobState.ADMITTED
    assert slots_in_use()[(host("hv-s1").pk, "live")] == 2  # the second and third jobs


def test_a_move_that_never_converges_runs_into_its_clusters_completion_limit(demo, settings):
    # cache-01 dirties 700 MB/s, more than a Compression stream copies (625 MB/s): its passes never
    # shrink. At 4x wall time ten passes take about 17 s; CL-NEW allows 1 s per GiB: 4 s for 4 GiB.
    settings.SIM_TIME_SCALE = 4
    settings.MOVE_STALL_TIMEOUT_S = 0
    Cluster.objects.filter(name="CL-NEW").update(move_timeout_s_per_gib=1)
    job = create_job(vm("cache-01"), host("hv-new1"))
    admit_waiting()

    Runner.start(job.pk).run()

    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.FAILED, TIMED_OUT), job.error_message
    assert "over its limit of 4 s (1 s per GiB of 4.0 GiB)" in job.error_message
    assert "dirty rate 700 MB/s" in job.error_message
    [acted] = policy_events(job)
    assert acted["rule"] == "completion" and acted["limit_s"] == 4 and acted["elapsed_s"] >= 4
    assert acted["dirty_rate_mbps"] > acted["transfer_rate_mbps"] > 0
    assert vm("cache-01").host.name == "hv-new2"
    with demo.session() as fabric:
        assert fabric.migrations[job.host_migration_id].state == "cancelled"
    # The convergence chart marks where the policy acted, and says why in words beside it.
    chart = job_chart(job)
    assert chart["svg"].count('class="policy-mark"') == 1 and "Move timeout" in chart["svg"]
    [note] = chart["policy"]
    assert "the move ran 4 s, over its limit of 4 s, in pass" in note and "dirty rate 700 MB/s" in note
    log = [event_text(e) for e in job.events.order_by("sequence")]
    assert note in log and "Cancel passed to the host (move timeout)" in log


def test_a_move_the_host_completes_before_the_cancel_lands_succeeds(demo, settings):
    settings.MOVE_STALL_TIMEOUT_S = 1
    job = create_job(vm("file-s01"), host("hv-s2"))
    admit_waiting()
    real = get_driver()

    class EndsBeforeTheCancel:
        """The host reports the same progress until the policy acts; its cancel meets a move that
        has ended meanwhile (RequestStateChange 4097)."""

        def __init__(self):
            self.first: MigrationStatus | None = None
            self.cancelled = False

        def __getattr__(self, name):
            return getattr(real, name)

        def migration_status(self, conn, migration_id, request=None):
            status = real.migration_status(conn, migration_id, request)
            if self.cancelled:
                return status
            self.first = self.first or MigrationStatus(migration_id, status.vm_id, "running", 40, 1000, 5000, 1)
            return self.first

        def cancel_migration(self, conn, migration_id):
            self.cancelled = True
            raise HyperVError("InvalidState", "The migration job has already ended", "Refresh its status")

    Runner.start(job.pk, driver=EndsBeforeTheCancel()).run()

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert job.error_code == ""
    acted = policy_events(job)
    assert [a["action"] for a in acted] == ["cancel", "none"] and acted[1]["reason"] == "completed"
    assert vm("file-s01").host.name == "hv-s2"


def test_no_limits_no_policy(demo, settings):
    settings.MOVE_STALL_TIMEOUT_S = settings.MOVE_TIMEOUT_S_PER_GIB = 0
    job = create_job(vm("file-s01"), host("hv-s2"))
    admit_waiting()
    runner = Runner.start(job.pk)
    assert runner._watch() is None
    runner.run()
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and not policy_events(job)


def test_a_timed_out_move_is_started_once_more_with_compression_where_the_policy_says_so(demo, settings):
    # With TCP/IP one stream copies 312 MB/s of cache-01's 700 MB/s dirtied: no convergence; CL-NEW
    # retries with Compression (625 MB/s, still below): the retry times out too and is not retried.
    settings.SIM_TIME_SCALE = 4
    settings.MOVE_STALL_TIMEOUT_S = 0
    Cluster.objects.filter(name="CL-NEW").update(move_timeout_s_per_gib=1, move_timeout_retry_compression=True)
    job = create_job(vm("cache-01"), host("hv-new1"), performance_option="tcpip")
    admit_waiting()

    Runner.start(job.pk).run()

    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.FAILED, TIMED_OUT)
    retry = MigrationJob.objects.exclude(pk=job.pk).get(vm=job.vm)
    assert (retry.performance_option, retry.destination, retry.state) == ("compression", job.destination, "admitted")
    assert [a["action"] for a in policy_events(job)] == ["cancel", "retry"]
    assert policy_events(job)[1]["job"] == retry.pk
    assert policy_events(retry) == [{"action": "retry_of", "job": job.pk}]
    assert "Started again with Compression as job" in event_text(job.events.order_by("-sequence")[0])

    Runner.start(retry.pk).run()

    retry.refresh_from_db()
    assert (retry.state, retry.error_code) == (JobState.FAILED, TIMED_OUT)
    assert MigrationJob.objects.filter(vm=job.vm).count() == 2  # once: a move with Compression is not retried
    assert vm("cache-01").host.name == "hv-new2"


def test_a_stall_is_not_retried(demo, settings):
    settings.MOVE_STALL_TIMEOUT_S, settings.MOVE_TIMEOUT_RETRY_COMPRESSION = 1, True
    job = create_job(vm("file-s01"), host("hv-s2"), performance_option="tcpip")
    admit_waiting()
    real = get_driver()

    class Frozen:
        def __getattr__(self, name):
            return getattr(real, name)

        def migration_status(self, conn, migration_id, request=None):
            status = real.migration_status(conn, migration_id, request)
            if status.state != "running":
                return status
            return MigrationStatus(migration_id, status.vm_id, "running", 10, 1000, 5000, 1)

    with demo.session() as fabric:
        fabric.set_link("hv-s1" + D, 0.001)  # the real move stays running while the reads are frozen

    Runner.start(job.pk, driver=Frozen()).run()

    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.FAILED, TIMED_OUT)
    assert MigrationJob.objects.filter(vm=job.vm).count() == 1


def test_the_job_page_gives_a_timed_out_jobs_figures_in_the_readers_language(demo, settings, admin_client):
    settings.SIM_TIME_SCALE = 4
    settings.MOVE_STALL_TIMEOUT_S = 0
    Cluster.objects.filter(name="CL-NEW").update(move_timeout_s_per_gib=1)
    job = create_job(vm("cache-01"), host("hv-new1"))
    admit_waiting()
    Runner.start(job.pk).run()

    english = admin_client.get(job.get_absolute_url()).content.decode()
    admin_client.cookies["django_language"] = "de"
    german = admin_client.get(job.get_absolute_url()).content.decode()

    assert "Error timed_out" in english and "Move timeout: the move ran 4 s, over its limit of 4 s" in english
    assert "Zeitüberschreitung: die Verschiebung lief 4 s, über ihrer Grenze von 4 s" in german
    assert "Änderungsrate 700 MB/s" in german and 'class="policy-mark"' in german
