"""The emitter: what it sends, to which groups, and that it sends only what has committed."""

import asyncio
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from migrations_ui import progress
from migrations_ui.events import change_state, record
from migrations_ui.models import JobState
from tests.fabric.factories import make_host
from tests.migrations_ui.test_jobs_pages import make_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    # A fresh dict makes Channels build a fresh layer for each test.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def job():
    """Running for a while: its state change is older than the window in which samples redraw sections."""
    source, destination = make_host("hv-s1"), make_host("hv-s2")
    job = make_job(source, destination, JobState.RUNNING, step="move", events=[("state", {"state": "running"})])
    job.events.update(time=timezone.now() - timedelta(minutes=1))
    return job


async def listen(*groups) -> tuple:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return layer, channel


async def receive(layer, channel, timeout=1.0):
    try:
        return await asyncio.wait_for(layer.receive(channel), timeout)
    except TimeoutError:
        return None


async def test_it_sends_nothing_until_the_transaction_commits(job):
    layer, channel = await listen("jobs", f"job-{job.pk}")
    committed = asyncio.Event()

    def sample_in_a_transaction(loop):
        with transaction.atomic():
            record(job, "progress", {"percent": 40}, percent=40)
            record(job, "progress", {"percent": 41}, percent=41)
            # Still inside the transaction: the emitter has not run, nothing is on the layer.
            assert asyncio.run_coroutine_threadsafe(receive(layer, channel, 0.3), loop).result() is None
        loop.call_soon_threadsafe(committed.set)

    await database_sync_to_async(sample_in_a_transaction)(asyncio.get_running_loop())
    await committed.wait()

    messages = [await receive(layer, channel) for _ in range(4)]
    assert all(m is not None for m in messages)
    assert {m["type"] for m in messages} == {"jobs.update", "job.update"}
    # Rendered from the database after commit: both announcements show the committed percent.
    assert all("41%" in m["html"] for m in messages)


async def test_a_progress_sample_sends_the_row_and_the_status(job):
    layer, channel = await listen("jobs", f"job-{job.pk}")

    await database_sync_to_async(record)(
        job, "progress", {"percent": 63}, percent=63, pass_number=2, transfer_rate_mbps=950, bytes_sent=3 * 1024**3
    )

    board, detail = await receive(layer, channel), await receive(layer, channel)
    assert board["type"] == "jobs.update" and detail["type"] == "job.update"
    assert board["html"].startswith(f'<tr id="job-{job.pk}" hx-swap-oob="true"')
    assert "63%" in board["html"] and "950 MB/s" in board["html"]
    assert 'id="jobs-running"' not in board["html"]  # a sample changes one row, not the sections
    assert board["finished"] is False
    assert '<section id="job-status" class="card" hx-swap-oob="true">' in detail["html"]
    assert '<section id="job-steps" class="card" hx-swap-oob="true">' in detail["html"]
    assert "3.0\xa0GB" in detail["html"]
    assert detail["sequence"] == 3
    assert 'hx-swap-oob="beforeend:#job-events"' in detail["event_html"]
    assert 'id="event-3"' in detail["event_html"] and "63%" in detail["event_html"]


async def test_a_state_change_sends_the_running_and_queued_sections(job):
    layer, channel = await listen("jobs")

    await database_sync_to_async(change_state)(job, JobState.CANCELLING)

    board = await receive(layer, channel)
    assert '<section id="jobs-running" class="card wide" hx-swap-oob="true">' in board["html"]
    assert '<section id="jobs-queued" class="card wide" hx-swap-oob="true">' in board["html"]
    assert "Cancelling" in board["html"]
    assert board["finished"] is False


async def test_samples_right_after_a_state_change_send_the_sections_too(job):
    # Announcements are coalesced: the one made after a state change may see a sample as newest.
    layer, channel = await listen("jobs")
    await database_sync_to_async(change_state)(job, JobState.CANCELLING)
    await receive(layer, channel)

    await database_sync_to_async(record)(job, "progress", {"percent": 64}, percent=64)

    board = await receive(layer, channel)
    assert '<section id="jobs-running" class="card wide" hx-swap-oob="true">' in board["html"]
    assert "64%" in board["html"]


async def test_a_job_that_ends_is_flagged_for_the_finished_section(job):
    layer, channel = await listen("jobs", f"job-{job.pk}")

    await database_sync_to_async(change_state)(
        job, JobState.FAILED, error_code="21502", error_message="It failed.", error_remedy="Try again."
    )

    board, detail = await receive(layer, channel), await receive(layer, channel)
    assert board["finished"] is True
    assert f'id="job-{job.pk}"' not in board["html"]  # no longer running
    assert "Error 21502" in detail["html"] and "Try again." in detail["html"]
    assert "Cancel</button>" not in detail["html"]


async def test_it_sends_only_to_the_jobs_own_group(job):
    other = await database_sync_to_async(make_job)(job.source, job.destination, JobState.RUNNING)
    layer, channel = await listen(f"job-{other.pk}")

    await database_sync_to_async(record)(job, "progress", {"percent": 5}, percent=5)

    assert await receive(layer, channel, 0.3) is None


class BrokenLayer:
    async def group_send(self, group, message):
        raise ConnectionError("layer down")


def test_a_failing_layer_never_reaches_the_caller(job, monkeypatch, caplog):
    monkeypatch.setattr(progress, "get_channel_layer", lambda: BrokenLayer())

    with caplog.at_level(logging.ERROR, logger="migrations_ui.progress"):
        record(job, "progress", {"percent": 70}, percent=70)

    job.refresh_from_db()
    assert job.percent == 70
    assert "could not send to group jobs" in caplog.text


def test_a_failing_render_never_reaches_the_caller(job, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("template broke")

    monkeypatch.setattr(progress, "render_to_string", broken)

    with caplog.at_level(logging.ERROR, logger="migrations_ui.progress"):
        change_state(job, JobState.SUCCEEDED)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
    assert "could not render its update" in caplog.text


def test_a_job_that_is_gone_sends_nothing(monkeypatch):
    monkeypatch.setattr(progress, "get_channel_layer", lambda: BrokenLayer())

    progress.send_job_update(987654)  # no exception, nothing to send


def test_a_process_that_is_exiting_sends_nothing_and_says_so_quietly(job, monkeypatch, caplog):
    # A CLI that queued a job exits while its announcement is pending: no thread may start then.
    monkeypatch.setattr(progress.threading, "main_thread", lambda: SimpleNamespace(is_alive=lambda: False))
    monkeypatch.setattr(progress, "get_channel_layer", lambda: BrokenLayer())

    with caplog.at_level(logging.INFO, logger="migrations_ui.progress"):
        progress.send_job_update(job.pk)

    assert "process exiting, update not sent" in caplog.text
    assert "ERROR" not in caplog.text
