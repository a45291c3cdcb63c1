"""The convergence and slots charts: the SVG and words (pure), and where the pages show them."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_ui.jobs.events import change_state, record
from migrations_ui.live import chart_data, charts, progress
from migrations_ui.live.convergence import (
    AT_RISK,
    CONVERGING,
    NOT_CONVERGING,
    NOT_REPORTED,
    SLOW,
    WAITING,
    Sample,
    judge,
)
from migrations_ui.live.slot_history import Held, steps
from migrations_ui.models import JobEvent, JobState
from tests.fabric.factories import make_host, make_vm
from tests.migrations_ui.views.test_jobs_pages import make_job

SVG = "{http://www.w3.org/2000/svg}"
GB = 1_000_000_000
MB = 1_000_000


def run(*passes, per_pass=4, memory=None):
    """Samples, one a second, for passes given as (transfer MB/s, dirty MB/s)."""
    out, t = [], 0.0
    for number, (rate, dirty) in enumerate(passes, 1):
        for i in range(per_pass):
            left = None if memory is None else min(memory, max(0, int(memory - (rate - dirty) * MB * (t + i))))
            out.append(Sample(t, number, rate, dirty, left))
            t += 1.0
    return out


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the charts this project drew; raises unless well-formed


def points(root: ET.Element, css: str) -> list[tuple[float, float]]:
    [line] = [e for e in root.iter(f"{SVG}polyline") if e.get("class") == css]
    return [tuple(map(float, p.split(","))) for p in line.get("points").split()]


# --- the convergence chart (pure) ---------------------------------------------------------------------


def test_the_job_chart_draws_both_rates_and_the_memory_left_with_a_title_and_a_description():
    samples = [Sample(0, 0, 0, 40, 4 * GB), *run((125, 10), (125, 10), memory=4 * GB)]
    samples = [Sample(s.t + 1, s.pass_number, s.transfer_mbps, s.dirty_mbps, s.memory_left) for s in samples[1:]]
    verdict = judge(samples)

    root = parse(charts.job_chart_svg(samples, verdict))

    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Convergence of the memory copy"
    assert "Converging: 2 passes, memory left falling" in root.find(f"{SVG}desc").text
    assert "Pass 1: transfer 125 MB/s, dirty 10 MB/s (8 %)" in root.find(f"{SVG}desc").text
    transfer, dirty = points(root, "transfer-rate"), points(root, "dirty-rate")
    assert len(transfer) == len(dirty) == 8
    # Same x for both; higher on the chart (smaller y) for the faster transfer.
    assert [x for x, _ in transfer] == [x for x, _ in dirty]
    assert all(ty < dy for (_, ty), (_, dy) in zip(transfer, dirty, strict=True))
    assert [e for e in root.iter(f"{SVG}polygon") if e.get("class") == "memory-left"]
    assert not [e for e in root.iter(f"{SVG}rect") if e.get("class") == "hot-pass"]
    assert len([e for e in root.iter(f"{SVG}line") if e.get("class") == "pass-start"]) == 1


def test_the_job_chart_shades_the_passes_whose_dirty_rate_is_near_the_transfer_rate():
    samples = run((125, 10), (125, 115), (125, 200))

    root = parse(charts.job_chart_svg(samples, judge(samples)))

    hot = [e for e in root.iter(f"{SVG}rect") if e.get("class") == "hot-pass"]
    assert [e.find(f"{SVG}title").text for e in hot] == [
        "Pass 2: the dirty rate is 92 % of the transfer rate",
        "Pass 3: the dirty rate is 160 % of the transfer rate",
    ]
    assert not [e for e in root.iter(f"{SVG}polygon")]  # no memory left reported: no area


def test_the_job_chart_is_empty_without_a_sample_of_the_memory_copy():
    assert charts.job_chart_svg([], judge([])) == ""
    assert charts.job_chart_svg([Sample(0, 0, 100, 10, GB)], judge([Sample(0, 0, 100, 10, GB)])) == ""


def test_the_job_chart_draws_a_long_copy_with_a_bounded_number_of_points():
    samples = [Sample(float(t), 1 + t // 500, 125, 10) for t in range(5000)]

    root = parse(charts.job_chart_svg(samples, judge(samples)))

    line = points(root, "transfer-rate")
    assert len(line) == charts.MAX_POINTS
    assert line[-1][0] == pytest.approx(float(root.get("width")) - charts.RIGHT)  # the newest at the right edge


def test_the_chart_escapes_its_title():
    samples = run((125, 10))

    svg = charts.job_chart_svg(samples, judge(samples), title='x\'; $(Remove-VM *) ; "<b>"')

    assert parse(svg).find(f"{SVG}title").text == 'x\'; $(Remove-VM *) ; "<b>"'
    assert "<b>" not in svg


@pytest.mark.parametrize(
    ("samples", "outcome", "status", "words", "badge"),
    [
        ([], charts.RUNNING, WAITING, "No pass of the memory copy yet.", None),
        ([Sample(0, 0, 0, 0)], charts.RUNNING, NOT_REPORTED, "The host reports no pre-copy figures", None),
        (
            run((125, 10), (125, 10), (125, 10), memory=4 * GB),
            charts.RUNNING,
            CONVERGING,
            "Converging: 3 passes, memory left falling.",
            "Converging",
        ),
        (run((125, 10), (125, 10)), charts.SUCCEEDED, CONVERGING, "Converged in 2 passes.", "Converged"),
        (
            run((125, 10), (125, 120)),
            charts.RUNNING,
            AT_RISK,
            "May not converge: in pass 2 the dirty rate is 96 % of the transfer rate.",
            "May not converge",
        ),
        (
            run((125, 100), memory=4 * GB),
            charts.RUNNING,
            SLOW,
            "Converging slowly: 1 pass, the dirty rate 80 % of the transfer rate. If the rates hold",
            "Converging slowly",
        ),
        (
            run((125, 200), (125, 200), (125, 200), memory=2 * GB),
            charts.RUNNING,
            NOT_CONVERGING,
            "Not converging: the dirty rate has stayed near or above the transfer rate for 3 passes (now 160 % of it)",
            "Not converging",
        ),
        (
            run((125, 200), (125, 200), (125, 200)),
            charts.SUCCEEDED,
            NOT_CONVERGING,
            "Did not converge: the dirty rate stayed near or above the transfer rate for 3 passes.",
            "Did not converge",
        ),
        (run((125, 10), (125, 10)), charts.STOPPED, CONVERGING, "Stopped after 2 passes: it was converging.", None),
        (
            run(*[(125, 100)] * 11),
            charts.SUCCEEDED,
            SLOW,
            "Converged only at the pass cap, after 11 passes: the stop-and-copy carried what was left",
            "Converged slowly",
        ),
        (
            run(*[(125, 100)] * 11),
            charts.RUNNING,
            SLOW,
            "Converging slowly: 11 passes, the dirty rate 80 % of the transfer rate. The pass cap is reached",
            "Converging slowly",
        ),
    ],
)
def test_it_words_the_verdict(samples, outcome, status, words, badge):
    verdict = judge(samples)

    assert verdict.status == status
    assert charts.job_summary(verdict, outcome).startswith(words)
    assert (charts.job_badge(verdict, outcome) or (None, None))[1] == badge


def test_it_projects_the_blackout_in_words():
    verdict = judge(run((125, 200), (125, 200), (125, 200), memory=2 * GB))

    # Every pass sends all 2 GB again: the stop-and-copy carries the whole memory, 16 s at 125 MB/s.
    assert charts.job_summary(verdict).endswith("the stop-and-copy sends 1.9\xa0GB: about 16.0 s of blackout.")


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (0.3, 0.5), (1, 1), (118, 200), (126, 200), (260, 500), (2400, 2500)]
)
def test_axes_end_at_a_round_number(value, top):
    assert charts.nice_ceiling(value) == top


# --- the slots chart (pure) -----------------------------------------------------------------------------


def test_the_slots_chart_steps_with_the_slots_in_use_under_the_limits():
    series = steps([Held(-1800, -900, live=1, storage=1), Held(-1200, None, live=1, storage=0)], -3600, 0)

    svg = charts.slots_chart_svg(series, live_limit=2, storage_limit=2)
    root = parse(svg)

    assert root.find(f"{SVG}title").text == "Migration slots in use, last hour"
    assert root.find(f"{SVG}desc").text == (
        "In the last hour at most 2 of 2 live and 1 of 2 storage migration slots were in use; now 1 live and 0 storage."
    )
    live = points(root, "live-in-use")
    # Horizontal then vertical: each step keeps its level until the next one's time.
    assert [round(y) for _, y in live][:4] == [round(live[0][1])] * 2 + [round(live[2][1])] * 2
    levels = sorted({round(y, 1) for _, y in live}, reverse=True)
    assert len(levels) == 3  # 0, 1 and 2 live slots
    [limit] = [e for e in root.iter(f"{SVG}line") if e.get("class") == "live-limit"]
    assert float(limit.get("y1")) == pytest.approx(min(levels) + 1.5)  # the level of 2 (drawn 1.5 px up)
    ticks = [t.text for t in root.iter(f"{SVG}text")]
    assert "-60 min" in ticks and "now" in ticks


# --- the pages -------------------------------------------------------------------------------------------


def progress_events(job, passes, start):
    """Progress events as runner._sample writes them, one a second from `start`."""
    n = job.events.count()
    for i, (number, wire, memory_rate, dirty, left) in enumerate(passes):
        data = {"percent": 10 + i, "pass_number": number, "transfer_rate_mbps": wire, "dirty_rate_mbps": dirty}
        if memory_rate is not None:
            data |= {"memory_rate_mbps": memory_rate, "memory_remaining_bytes": left}
        event = JobEvent.objects.create(job=job, sequence=n + i + 1, kind="progress", data=data)
        JobEvent.objects.filter(pk=event.pk).update(time=start + timedelta(seconds=i))


@pytest.fixture
def hot_job(db):
    source, destination = make_host("hv-s1"), make_host("hv-s2")
    job = make_job(source, destination, JobState.RUNNING, vm=make_vm("sql01", host=source), step="move")
    rows = [(p, 125, 125, 200, 2 * GB) for p in (1, 1, 2, 2, 3, 3, 4)]
    progress_events(job, rows, timezone.now() - timedelta(seconds=10))
    return job


@pytest.mark.django_db
def test_the_job_page_shows_the_chart_and_its_verdict(viewer_client, hot_job):
    page = viewer_client.get(hot_job.get_absolute_url()).content.decode()

    assert 'id="job-chart"' in page
    assert '<span class="badge bad">Not converging</span>' in page
    assert "for 4 passes (now 160 % of it), memory left not falling." in page
    assert 'class="convergence-chart"' in page.replace("chart convergence-chart", "convergence-chart")
    assert page.count('<tr class="hot">') == 4


@pytest.mark.django_db
def test_the_job_page_says_when_the_host_reports_no_pre_copy_figures(viewer_client):
    job = make_job(make_host("hv-s1"), make_host("hv-s2"), JobState.RUNNING)
    progress_events(job, [(0, 118, None, 0, None)] * 3, timezone.now())  # a real host: percent and bytes only

    page = viewer_client.get(job.get_absolute_url()).content.decode()

    assert "The host reports no pre-copy figures" in page
    assert "<svg" not in page.split('id="job-chart"')[1].split("</section>")[0]


@pytest.mark.django_db
def test_the_chart_uses_the_memory_rate_and_says_so_when_it_has_only_the_wire_rate(hot_job):
    compressed = make_job(make_host("hv-c1"), make_host("hv-c2"), JobState.RUNNING)
    # Compression: 125 MB/s on the wire carry 250 MB/s of memory; the guest dirties 150 MB/s.
    progress_events(compressed, [(1, 125, 250, 150, GB), (1, 125, 250, 150, GB - 100 * MB)], timezone.now())
    wire_only = make_job(make_host("hv-w1"), make_host("hv-w2"), JobState.RUNNING)
    progress_events(wire_only, [(1, 125, None, 150, None)], timezone.now())

    assert chart_data.job_chart(compressed)["verdict"].latest.transfer_mbps == 250
    assert not chart_data.job_chart(compressed)["wire_rate"]
    assert chart_data.job_chart(wire_only)["wire_rate"]
    assert chart_data.job_chart(hot_job)["passes"][0] == {
        "number": 1,
        "start_s": 0.0,
        "end_s": 1.0,
        "transfer_mbps": 125.0,
        "dirty_mbps": 200.0,
        "memory_at_start": 2 * GB,
        "memory_at_end": 2 * GB,
        "rated": True,
        "near": True,
        "share": "160 %",
        "sampled": True,
    }


@pytest.mark.django_db
def test_a_storage_move_has_no_convergence_chart(viewer_client):
    host = make_host("hv-s1")
    job = make_job(host, host, JobState.RUNNING, kind="storage", storage_path="D:\\VMs")

    assert chart_data.job_chart(job) is None
    assert 'id="job-chart"' not in viewer_client.get(job.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_the_job_page_gets_the_chart_with_state_changes_and_at_most_every_few_seconds_with_samples(hot_job):
    def update(event) -> str:
        # As a web process does for each message: decide once, then render.
        chart = progress.job_chart_due(hot_job.pk, event.sequence)
        return progress.render_job_update(hot_job.pk, event.sequence, chart)[0]

    progress._chart_sent.clear()
    first = update(record(hot_job, "progress", {"pass_number": 4, "transfer_rate_mbps": 125, "dirty_rate_mbps": 200}))
    soon = update(record(hot_job, "progress", {"pass_number": 4, "transfer_rate_mbps": 125, "dirty_rate_mbps": 200}))
    progress._chart_sent[hot_job.pk] = progress.time.monotonic() - progress.CHART_EVERY_S
    later = update(record(hot_job, "progress", {"pass_number": 4, "transfer_rate_mbps": 125, "dirty_rate_mbps": 200}))
    final = update(change_state(hot_job, JobState.SUCCEEDED, percent=100))

    assert 'id="job-chart" class="card wide" hx-swap-oob="true"' in first
    assert 'id="job-chart"' not in soon and 'id="job-status"' in soon
    assert 'id="job-chart"' in later
    assert "Did not converge" in final
    assert hot_job.pk not in progress._chart_sent


@pytest.mark.django_db
def test_a_page_that_connects_gets_the_chart_in_the_replay(hot_job):
    state, _, _ = progress.render_job_replay(hot_job.pk)

    assert 'id="job-chart"' in state and "Not converging" in state


@pytest.mark.django_db
def test_the_host_page_shows_the_slots_in_use_over_the_last_hour(viewer_client):
    host, other, third = make_host("hv-s1", max_live_migrations=2), make_host("hv-s2"), make_host("hv-s3")
    now = timezone.now()

    def job(source, destination, state, admitted_min_ago, ended_min_ago=None, **kw):
        j = make_job(source, destination, state, events=[("state", {"state": "admitted"})], **kw)
        j.events.filter(kind="state").update(time=now - timedelta(minutes=admitted_min_ago))
        if ended_min_ago is not None:
            j.finished_at = now - timedelta(minutes=ended_min_ago)
            j.save(update_fields=["finished_at"])
        return j

    job(host, other, JobState.SUCCEEDED, 50, 40)  # out of hv-s1
    job(other, host, JobState.RUNNING, 20)  # into hv-s1, still running
    job(host, other, JobState.FAILED, 30, 25, kind="live_vsm")  # a live and a storage slot
    job(host, other, JobState.SUCCEEDED, 200, 90)  # ended before the hour
    job(other, third, JobState.RUNNING, 10)  # not this host
    make_job(host, other, JobState.CANCELLED, finished_at=now)  # cancelled while queued: never held a slot

    page = viewer_client.get(host.get_absolute_url()).content.decode()

    assert 'id="host-slots-chart"' in page
    assert (
        "In the last hour at most 2 of 2 live and 1 of 2 storage migration slots were in use; now 1 live and 0 storage."
    ) in page
    assert 'class="chart slots-chart"' in page


@pytest.mark.django_db
def test_slots_held_come_from_admission_to_the_end(db):
    host, other = make_host("hv-s1"), make_host("hv-s2")
    now = timezone.now()
    j = make_job(host, other, JobState.SUCCEEDED, kind="live_vsm", events=[("state", {"state": "admitted"})])
    j.events.filter(kind="state").update(time=now - timedelta(minutes=30))
    j.finished_at = now - timedelta(minutes=5)
    j.save(update_fields=["finished_at"])
    storage = make_job(host, host, JobState.RUNNING, kind="storage", events=[("state", {"state": "admitted"})])
    storage.events.filter(kind="state").update(time=now - timedelta(minutes=2))

    held = chart_data.held_slots(host, now - timedelta(hours=1), now)

    assert sorted((round(h.start), h.end and round(h.end), h.live, h.storage) for h in held) == [
        (-1800, -300, 1, 1),
        (-120, None, 0, 1),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_real_run_of_a_vm_that_never_converges_is_flagged(settings, tmp_path, viewer_client):
    """The whole path: the runner samples the simulated host, the event rows carry the pre-copy figures,
    the job page judges them. cache-01 dirties 700 MB/s, faster than any stream copies."""
    from django.core.management import call_command

    from fabric.driver import sim_store
    from fabric.models import Host, VirtualMachine
    from migrations_ui.jobs.operations import create_job
    from migrations_ui.jobs.scheduler import admit_waiting
    from migrations_ui.jobs.tasks import run_job

    settings.SIM_FABRIC_PATH = tmp_path / "fabric.sqlite3"
    # A pass of its 4 GiB at 625 MB/s takes 6.9 s: about a second of wall time at this scale, so the
    # runner's samples (one a second) fall in most passes; a cap of 5 passes keeps the run short.
    settings.SIM_TIME_SCALE = 6
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with sim_store().session() as fabric:
        fabric.tuning.max_passes = 5
        fabric.touch()  # saved only when marked changed
    job = create_job(VirtualMachine.objects.get(name="cache-01"), Host.objects.get(name="hv-new3"))
    admit_waiting()

    run_job.call(job.pk)

    job.refresh_from_db()
    chart = chart_data.job_chart(job)
    assert job.state == JobState.SUCCEEDED, job.error_message
    assert len([p for p in chart["verdict"].passes if p.rated]) >= 3
    assert chart["verdict"].status == NOT_CONVERGING
    assert all(p["memory_at_start"] for p in chart["passes"])
    assert not chart["wire_rate"]
    page = viewer_client.get(job.get_absolute_url()).content.decode()
    assert "Did not converge" in page and 'class="chart convergence-chart"' in page


@pytest.mark.django_db
def test_a_long_move_has_its_chart_sent_less_often(hot_job):
    assert progress.chart_every_s(hot_job) == progress.CHART_EVERY_S  # started 90 s ago
    hot_job.started_at = timezone.now() - timedelta(hours=1)

    assert progress.chart_every_s(hot_job) == pytest.approx(30, abs=0.1)


@pytest.mark.django_db
def test_the_pass_count_is_the_hosts_not_the_passes_sampled(viewer_client):
    # Issue 19, 7: samples come once a second, so short passes have none (sql-prod01 in the demo: passes
    # 1, 2, 3, 4, 6, 10 sampled); the summary, the status's Pass and the table must agree on 10.
    source, destination = make_host("hv-s1"), make_host("hv-s2")
    job = make_job(source, destination, JobState.SUCCEEDED, vm=make_vm("sql-prod01", host=source), pass_number=10)
    rows = [(p, 1000, 1000, 100, GB // p) for p in (1, 1, 2, 3, 4, 6, 10)]
    progress_events(job, rows, timezone.now() - timedelta(seconds=10))

    chart = chart_data.job_chart(job)
    page = viewer_client.get(job.get_absolute_url()).content.decode()

    assert chart["summary"] == "Converged in 10 passes."
    assert [p["number"] for p in chart["passes"]] == list(range(1, 11))
    assert [p["number"] for p in chart["passes"] if not p["sampled"]] == [5, 7, 8, 9]
    assert page.count('<tr class="unsampled">') == 4 and "shorter than a second: no sample" in page
    assert "<dt>Pass</dt><dd>10</dd>" in page
