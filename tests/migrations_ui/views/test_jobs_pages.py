from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from fabric.models import VirtualDisk
from migrations_ui.jobs.runner import steps_for
from migrations_ui.live import progress
from migrations_ui.models import JobEvent, JobState, MigrationJob
from tests.fabric.factories import make_cluster, make_host, make_vm

pytestmark = pytest.mark.django_db

JOBS = reverse("migrations_ui:jobs")


def make_job(source, destination, state=JobState.QUEUED, kind="live", vm=None, events=(), **fields) -> MigrationJob:
    """A job row as the runner leaves it in `state`, with its event log (kind, data) pairs."""
    vm = vm or make_vm(host=source)
    now = timezone.now()
    if state not in (JobState.QUEUED, JobState.ADMITTED):
        fields.setdefault("started_at", now - timedelta(seconds=90))
    if state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        fields.setdefault("finished_at", now)
    job = MigrationJob.objects.create(
        kind=kind, vm=vm, vm_name=vm.name, source=source, destination=destination, state=state, **fields
    )
    for n, (event_kind, data) in enumerate([("created", {"state": "queued"}), *events], 1):
        JobEvent.objects.create(job=job, sequence=n, kind=event_kind, data=data)
    return job


@pytest.fixture
def hosts():
    return {name: make_host(name, max_live_migrations=2) for name in ("hv-s1", "hv-s2", "hv-s3", "hv-s4")}


@pytest.fixture
def running(hosts):
    """Two live moves out of hv-s1 (limit 2): its live slots are full."""
    a = make_job(
        hosts["hv-s1"],
        hosts["hv-s2"],
        JobState.RUNNING,
        vm=make_vm("web01", host=hosts["hv-s1"]),
        percent=42,
        transfer_rate_mbps=1180.4,
        pass_number=3,
        step="move",
        bytes_sent=5 * 1024**3,
        bytes_remaining=7 * 1024**3,
        dirty_rate_mbps=35,
        events=[("state", {"state": "running"}), ("step", {"step": "compare", "label": "x"})],
    )
    b = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.RUNNING, vm=make_vm("web02", host=hosts["hv-s1"]))
    return [a, b]


def test_it_shows_running_jobs_with_their_progress(admin_client, running):
    response = admin_client.get(JOBS)

    assert response.status_code == 200
    body = response.content.decode()
    running_section = body[body.index('id="jobs-running"') : body.index('id="jobs-queued"')]
    assert "web01" in running_section and "web02" in running_section
    assert '<progress max="100" value="42"' in running_section
    assert 'role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="42"' in running_section
    assert "1180 MB/s" in running_section
    assert ">3</td>" in running_section  # pass
    assert "Migrate" in running_section  # the step, as VMM words it


def test_it_shows_the_queue_position_and_the_slot_a_job_waits_for(admin_client, hosts, running):
    first = make_job(hosts["hv-s1"], hosts["hv-s3"], vm=make_vm("db01", host=hosts["hv-s1"]))
    second = make_job(hosts["hv-s1"], hosts["hv-s4"], vm=make_vm("db02", host=hosts["hv-s1"]))
    free = make_job(hosts["hv-s3"], hosts["hv-s4"], vm=make_vm("app01", host=hosts["hv-s3"]))

    response = admin_client.get(JOBS)

    queued = {job.pk: job for job in response.context["queued"]}
    assert [queued[first.pk].position, queued[second.pk].position] == [1, 2]
    body = response.content.decode()
    assert body.count("waits for a live slot on hv-s1 (2/2 in use)") == 2
    assert queued[free.pk].position is None
    assert "starting: its slots are free" in body


def test_it_names_every_slot_a_live_vsm_waits_for(admin_client, hosts):
    hosts["hv-s1"].max_live_migrations = hosts["hv-s1"].max_storage_migrations = 1
    hosts["hv-s1"].save()
    make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.RUNNING)
    make_job(hosts["hv-s1"], hosts["hv-s1"], JobState.RUNNING, kind="storage")
    make_job(hosts["hv-s1"], hosts["hv-s3"], kind="live_vsm")

    body = admin_client.get(JOBS).content.decode()

    assert "waits for a live slot on hv-s1 (1/1 in use); waits for a storage slot on hv-s1 (1/1 in use)" in body


def test_it_lists_finished_jobs_recent_first(admin_client, hosts):
    now = timezone.now()
    old = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED, finished_at=now - timedelta(hours=1))
    new = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.FAILED, finished_at=now, error_code="21502")

    response = admin_client.get(JOBS)

    assert [j.pk for j in response.context["finished"]] == [new.pk, old.pk]
    assert "21502" in response.content.decode()


def test_it_filters_finished_jobs_by_state_and_vm_name(admin_client, hosts):
    a = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.FAILED, vm=make_vm("sql-prod-01", host=hosts["hv-s1"]))
    make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED, vm=make_vm("sql-prod-02", host=hosts["hv-s1"]))
    make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.FAILED, vm=make_vm("web03", host=hosts["hv-s1"]))

    response = admin_client.get(JOBS, {"state": "failed", "vm": "SQL"})

    assert [j.pk for j in response.context["finished"]] == [a.pk]
    body = response.content.decode()
    assert 'ws-connect="/ws/jobs/?state=failed&amp;vm=SQL"' in body  # the live updates keep the filter
    assert '<option value="failed" selected>' in body


def test_it_ignores_unknown_filter_values(admin_client, hosts):
    make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED)

    response = admin_client.get(JOBS, {"state": "running", "page": "x"})

    assert response.status_code == 200
    assert len(response.context["finished"]) == 1


def test_it_paginates_finished_jobs(admin_client, hosts):
    for _ in range(27):
        make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED)

    first = admin_client.get(JOBS, {"state": "succeeded"})
    second = admin_client.get(JOBS, {"state": "succeeded", "page": 2})

    assert len(first.context["finished"]) == 25 and len(second.context["finished"]) == 2
    assert 'href="?state=succeeded&amp;page=2"' in first.content.decode()
    assert 'ws-connect="/ws/jobs/?state=succeeded&amp;page=2"' in second.content.decode()


def test_it_connects_the_pages_to_the_websockets(admin_client, running):
    jobs_page = admin_client.get(JOBS).content.decode()
    job_page = admin_client.get(running[0].get_absolute_url()).content.decode()

    for body in (jobs_page, job_page):
        assert 'hx-ext="ws"' in body
        assert "django_htmx/ext/hx-ws-2.min.js" in body and "django_htmx/htmx-2.min.js" in body
        assert "css/jobs.css" in body
    assert 'ws-connect="/ws/jobs/"' in jobs_page
    assert f'ws-connect="/ws/jobs/{running[0].pk}/"' in job_page


def test_the_jobs_page_has_a_bounded_number_of_queries(admin_client, hosts, running, django_assert_max_num_queries):
    for _ in range(5):
        make_job(hosts["hv-s1"], hosts["hv-s3"])
        make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED)

    # Session, user, then running, queued (+ queue decision: slots, limits), finished (count + page):
    # a fixed number of queries, whatever the number of jobs.
    with django_assert_max_num_queries(11):
        admin_client.get(JOBS)


def test_it_shows_a_running_job_with_steps_progress_and_events(admin_client, running):
    response = admin_client.get(running[0].get_absolute_url())

    assert response.status_code == 200
    body = response.content.decode()
    steps = {s["name"]: s["status"] for s in response.context["steps"]}
    assert steps == {"compare": "done", "move": "current", "verify": "pending", "refresh": "pending"}
    assert "5.0\xa0GB" in body and "7.0\xa0GB" in body  # sent, remaining
    assert "1180 MB/s" in body and "35 MB/s" in body  # transfer and dirty rate
    assert 'id="event-3"' in body and "Check compatibility on the destination (Compare-VM)" in body
    assert "Cancel</button>" in body


def test_it_lists_the_cluster_steps_of_a_cross_cluster_move(admin_client):
    a, b = make_cluster("clu-a"), make_cluster("clu-b")
    source, destination = make_host("hv-a1", cluster=a), make_host("hv-b1", cluster=b)
    job = make_job(source, destination, JobState.SUCCEEDED, vm=make_vm(host=source, is_clustered=True))

    steps = admin_client.get(job.get_absolute_url()).context["steps"]

    assert [s["name"] for s in steps] == ["compare", "leave_cluster", "move", "verify", "join_cluster", "refresh"]
    assert {s["status"] for s in steps} == {"done"}


def test_it_shows_the_blackout_at_the_end(admin_client, hosts):
    job = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED, percent=100, blackout_ms=312)

    body = admin_client.get(job.get_absolute_url()).content.decode()

    assert "312 ms" in body
    assert "Cancel</button>" not in body


def test_it_shows_the_error_and_remedy_of_a_failed_job(admin_client, hosts):
    job = make_job(
        hosts["hv-s1"],
        hosts["hv-s2"],
        JobState.FAILED,
        step="move",
        error_code="21502",
        error_message="Virtual machine migration operation failed at migration source.",
        error_remedy="Check the migration network between the hosts.",
    )

    response = admin_client.get(job.get_absolute_url())

    body = response.content.decode()
    assert "Error 21502" in body and "failed at migration source" in body
    assert "Check the migration network between the hosts." in body
    assert {s["name"]: s["status"] for s in response.context["steps"]}["move"] == "failed"


def test_an_unknown_job_is_not_found(admin_client):
    assert admin_client.get(reverse("migrations_ui:job", args=[999])).status_code == 404


def test_the_pages_need_a_login(client, running):
    assert client.get(JOBS).status_code == 302
    assert client.get(running[0].get_absolute_url()).status_code == 302


# --- cancel ---------------------------------------------------------------------------------------


def cancel_url(pk):
    return reverse("migrations_ui:cancel_job", args=[pk])


def test_it_cancels_a_queued_job_at_once(admin_client, hosts):
    job = make_job(hosts["hv-s1"], hosts["hv-s2"])

    response = admin_client.post(cancel_url(job.pk), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert f"Job {job.pk} cancelled" in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_it_asks_the_host_to_stop_a_running_job(admin_client, running):
    response = admin_client.post(cancel_url(running[0].pk), follow=True)

    assert response.redirect_chain[-1][0] == running[0].get_absolute_url()
    assert "the host is asked to stop the migration" in response.content.decode()
    running[0].refresh_from_db()
    assert running[0].state == JobState.CANCELLING


def test_a_plain_cancel_goes_back_to_the_page_it_came_from(admin_client, running):
    response = admin_client.post(cancel_url(running[0].pk), {"next": "/jobs/?state=failed"})

    assert response.status_code == 302 and response.url == "/jobs/?state=failed"


def test_it_refuses_to_cancel_a_finished_job(admin_client, hosts):
    job = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.SUCCEEDED)
    events = job.events.count()

    htmx = admin_client.post(cancel_url(job.pk), HTTP_HX_REQUEST="true")
    plain = admin_client.post(cancel_url(job.pk), follow=True)

    assert htmx.status_code == 409
    assert f"Job {job.pk} has already ended (succeeded)." in htmx.content.decode()
    assert f"Job {job.pk} has already ended (succeeded)." in plain.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.events.count() == events


def test_it_refuses_to_cancel_an_unknown_job(admin_client):
    htmx = admin_client.post(cancel_url(999), HTTP_HX_REQUEST="true")
    plain = admin_client.post(cancel_url(999))

    assert htmx.status_code == 404 and "There is no job 999." in htmx.content.decode()
    assert plain.status_code == 302 and plain.url == JOBS


def test_cancel_is_a_post(admin_client, running):
    assert admin_client.get(cancel_url(running[0].pk)).status_code == 405
    running[0].refresh_from_db()
    assert running[0].state == JobState.RUNNING


def test_cancel_needs_the_csrf_token(hosts, admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    job = make_job(hosts["hv-s1"], hosts["hv-s2"])

    assert client.post(cancel_url(job.pk)).status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


# --- host slots -----------------------------------------------------------------------------------


def test_host_slots_shows_slots_in_use_against_the_limits(hosts, running):
    make_job(hosts["hv-s1"], hosts["hv-s1"], JobState.RUNNING, kind="storage")
    make_job(hosts["hv-s1"], hosts["hv-s3"])  # queued: holds no slot
    template = Template("{% load migrations %}{% host_slots host %}")
    request = RequestFactory().get("/")

    s1 = template.render(Context({"host": hosts["hv-s1"], "request": request}))
    s3 = template.render(Context({"host": hosts["hv-s3"], "request": request}))

    assert s1 == "live 2/2, storage 1/2"
    assert s3 == "live 0/2, storage 0/2"


def test_host_slots_uses_the_cluster_limit_on_a_node(django_assert_num_queries):
    node = make_host("hv-c1", cluster=make_cluster(max_parallel_migrations=4), max_live_migrations=2)

    assert Template("{% load migrations %}{% host_slots host %}").render(Context({"host": node})) == (
        "live 0/4, storage 0/2"
    )


@pytest.mark.parametrize(
    ("kind", "data", "text"),
    [
        ("created", {"user": "admin"}, "Queued by admin"),
        ("state", {"state": "cancelling", "user": "op"}, "Cancelling by op"),
        ("step", {"step": "move", "label": "x"}, "Migrate"),
        ("step", {"step": "move", "done": True, "blackout_ms": 120}, "Done: Migrate (blackout 120 ms)"),
        (
            "step",
            {"step": "join_cluster", "host": "hv-s1"},
            "Make the VM highly available on the destination cluster on hv-s1",
        ),
        (
            "progress",
            {
                "percent": 40,
                "pass_number": 2,
                "bytes_sent": 2**30,
                "bytes_remaining": 2**31,
                "transfer_rate_mbps": 512.4,
            },
            "40% · pass 2 · 1.0\xa0GB sent, 2.0\xa0GB left · 512 MB/s",
        ),
        # A storage move's steps in its own words; a sample with a percent only (Move-VMStorage's).
        ("step", {"step": "move", "label": "x", "kind": "storage"}, "Move the files (Move-VMStorage)"),
        ("step", {"step": "move", "done": True, "kind": "storage"}, "Done: Move the files (Move-VMStorage)"),
        ("progress", {"percent": 44, "pass_number": 0, "bytes_sent": 0, "transfer_rate_mbps": 0.0}, "44% done"),
        ("move_requested", {"resend": True}, "Move sent to the host again"),
        ("warning", {"message": "HA not restored"}, "Warning: HA not restored"),
        (
            "evidence",
            {"found": "VM still on the source", "source": "hv-old2", "migration": "none"},
            "hv-old2 still runs the VM: it was not moved",
        ),
        (
            "evidence",
            {"found": "VM already highly available", "host": "hv-new1"},
            "hv-new1 shows the VM highly available already: nothing to join again",
        ),
        ("something_new", {"a": 1}, "something_new {'a': 1}"),
    ],
)
def test_the_event_log_words_each_event(kind, data, text):
    from migrations_ui.templatetags.migrations import event_text

    assert event_text(JobEvent(kind=kind, data=data)) == text


# --- issue 19: a storage move's page, a cancelled job's page ------------------------------------------


GB = 1024**3


def storage_job(hosts, state, **fields):
    """Move-VMStorage of a VM with two disks (10 and 30 GB) on hv-s2, its files to another folder."""
    host = hosts["hv-s2"]
    vm = make_vm("file01", host=host)
    for n, size in enumerate((10, 30)):
        disk = VirtualDisk.objects.create(
            key=f"{host.fqdn}|d{n}", path=f"C:\\VMs\\file01\\d{n}.vhdx", size_bytes=size * GB
        )
        disk.vms.add(vm)
    fields.setdefault("move_requested_at", timezone.now() - timedelta(seconds=10))
    return make_job(host, host, state, kind="storage", vm=vm, storage_path="D:\\VMs\\file01", **fields)


def test_a_storage_move_shows_the_files_copied_not_live_migration_figures(admin_client, hosts):
    job = storage_job(
        hosts, JobState.RUNNING, percent=25, step="move", move_requested_at=timezone.now() - timedelta(seconds=100)
    )

    response = admin_client.get(job.get_absolute_url())
    body = response.content.decode()

    # The host reports 25 %: of 40 GB, 10 GB copied in 100 s, about 107 MB/s.
    assert "<dt>Copied</dt><dd>about 10.0\xa0GB of 40.0\xa0GB</dd>" in body
    assert "<dt>Copy rate</dt><dd>107 MB/s on average</dd>" in body
    assert "2 to move; the host switches them over at the end" in body
    for live_only in ("Sent", "Dirty rate", "<dt>Pass</dt>", "Blackout", "Compare-VM", "<dt>From</dt>"):
        assert live_only not in body, live_only
    assert [s["name"] for s in response.context["steps"]] == ["move", "verify", "refresh"]
    assert "Move the files (Move-VMStorage)" in body and "<dt>Host</dt>" in body


def test_a_finished_storage_move_says_its_disks_moved(admin_client, hosts):
    job = storage_job(hosts, JobState.SUCCEEDED, percent=100, slots_released_at=timezone.now())

    body = admin_client.get(job.get_absolute_url()).content.decode()

    assert "about 40.0\xa0GB of 40.0\xa0GB" in body and "2 of 2 moved" in body
    assert "Blackout" not in body
    board = admin_client.get(JOBS).content.decode()
    assert "<td>hv-s2</td>" in board and "hv-s2 → hv-s2" not in board


def test_a_storage_move_runs_no_compare_step(hosts):
    job = storage_job(hosts, JobState.QUEUED)

    assert steps_for(job) == ["move", "verify", "refresh"]


def test_a_cancelled_job_says_the_vm_stayed_on_its_source(admin_client, hosts):
    job = make_job(
        hosts["hv-s1"],
        hosts["hv-s2"],
        JobState.CANCELLED,
        vm=make_vm("web01", host=hosts["hv-s1"]),
        events=[("state", {"state": "running"}), ("step", {"step": "move", "label": "Migrate"})],
    )

    body = admin_client.get(job.get_absolute_url()).content.decode()

    assert "Cancelled: web01 stayed on its source, hv-s1." in body
    assert "at the end of the move" not in body
    assert "none: the VM did not move" in body


def test_a_finished_job_clears_what_the_cancel_click_answered(hosts):
    # The Cancel button's answer ("Cancelling job 2: the host is asked to stop ...") sits in #job-notice
    # until the job's end arrives over the websocket, which empties it.
    running = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.CANCELLING)
    cancelled = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.CANCELLED)

    assert 'id="job-notice"' not in progress.render_job_state(running)
    assert '<div id="job-notice" aria-live="polite" hx-swap-oob="true"></div>' in progress.render_job_state(cancelled)


def sample(pass_number, percent):
    return ("progress", {"pass_number": pass_number, "percent": percent, "bytes_sent": percent * 10**8})


def test_the_event_log_keeps_one_progress_row_per_pass(client, viewer_user, hosts):
    # issue 19: one row per progress tick (one a second) buried the steps.
    samples = [sample(1, 10), sample(1, 20), sample(1, 30), sample(2, 60), sample(2, 70), sample(3, 90)]
    job = make_job(hosts["hv-s1"], hosts["hv-s2"], JobState.RUNNING, events=[("state", {"state": "running"}), *samples])
    client.force_login(viewer_user)
    log = client.get(job.get_absolute_url()).context["events"]
    shown = [(e.kind, e.data.get("pass_number")) for e in log]
    assert shown == [("created", None), ("state", None), ("progress", 1), ("progress", 2), ("progress", 3)]

    # appended live: a sample of the pass already shown adds no row, the next pass does
    last = job.events.order_by("-sequence").first().sequence
    JobEvent.objects.create(job=job, sequence=last + 1, kind="progress", data=sample(3, 95)[1])
    assert progress.render_events_after(job.pk, last) == ""
    JobEvent.objects.create(job=job, sequence=last + 2, kind="progress", data=sample(4, 97)[1])
    assert f'id="event-{last + 2}"' in progress.render_events_after(job.pk, last + 1)
