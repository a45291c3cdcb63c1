"""The emitter: what it sends, to which groups, and that it sends only what has committed; and what the
web processes render for each message."""

import asyncio
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from migrations_ui.jobs import emit
from migrations_ui.jobs.events import change_state, record
from migrations_ui.live import consumers, progress
from migrations_ui.models import Batch, BatchKind, JobState
from tests.fabric.factories import make_host
from tests.migrations_ui.views.test_jobs_pages import make_job

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


MESSAGE_FIELDS = {"type", "id", "job_id", "sequence"}


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
    assert {m["type"] for m in messages} == {"job.changed"}
    # Read after commit: both announcements name the newest committed event, and what the pages
    # render for it shows the committed percent.
    assert {m["sequence"] for m in messages} == {4}
    board, _ = await database_sync_to_async(progress.render_board_update)(job.pk, 4)
    assert "41%" in board


async def test_a_worker_sends_data_not_pages(job):
    layer, channel = await listen("jobs", f"job-{job.pk}")

    await database_sync_to_async(record)(job, "progress", {"percent": 63}, percent=63)

    board, detail = await receive(layer, channel), await receive(layer, channel)
    assert board == detail  # one message, to each group that shows the job
    assert set(board) == MESSAGE_FIELDS and board["type"] == "job.changed"
    assert board["job_id"] == job.pk and board["sequence"] == 3


async def test_a_job_of_a_batch_is_announced_to_the_batch_page_too(job):
    batch = await database_sync_to_async(Batch.objects.create)(name="b", kind=BatchKind.SELECTION)
    job.batch = batch
    await database_sync_to_async(job.save)(update_fields=["batch"])
    layer, channel = await listen(f"batch-{batch.pk}")

    await database_sync_to_async(record)(job, "progress", {"percent": 63}, percent=63)

    message = await receive(layer, channel)
    assert message["type"] == "job.changed" and message["job_id"] == job.pk


def test_a_progress_sample_renders_the_row_and_the_status(job):
    record(job, "progress", {"percent": 63}, percent=63, pass_number=2, transfer_rate_mbps=950, bytes_sent=3 * 1024**3)

    board, finished = progress.render_board_update(job.pk, 3)
    html, event_html = progress.render_job_update(job.pk, 3, chart=False)

    assert board.startswith(f'<tr id="job-{job.pk}" hx-swap-oob="true" data-sequence="3"')
    assert "63%" in board and "950 MB/s" in board
    assert 'id="jobs-running"' not in board  # a sample changes one row, not the sections
    assert finished is False
    assert '<section id="job-status" class="card" hx-swap-oob="true">' in html
    assert '<section id="job-steps" class="card" hx-swap-oob="true">' in html
    assert "3.0\xa0GB" in html
    assert 'hx-swap-oob="beforeend:#job-events"' in event_html
    assert 'id="event-3"' in event_html and "63%" in event_html


def test_a_state_change_renders_the_running_and_queued_sections(job):
    event = change_state(job, JobState.CANCELLING)

    board, finished = progress.render_board_update(job.pk, event.sequence)
    assert '<section id="jobs-running" class="card wide" hx-swap-oob="true">' in board
    assert '<section id="jobs-queued" class="card wide" hx-swap-oob="true">' in board
    assert "Cancelling" in board
    assert finished is False


def test_samples_right_after_a_state_change_render_the_sections_too(job):
    # Announcements are coalesced: the one made after a state change may see a sample as newest.
    change_state(job, JobState.CANCELLING)
    event = record(job, "progress", {"percent": 64}, percent=64)

    board, _ = progress.render_board_update(job.pk, event.sequence)
    assert '<section id="jobs-running" class="card wide" hx-swap-oob="true">' in board
    assert "64%" in board


def test_a_job_that_ends_is_flagged_for_the_finished_section(job):
    event = change_state(
        job, JobState.FAILED, error_code="21502", error_message="It failed.", error_remedy="Try again."
    )

    board, finished = progress.render_board_update(job.pk, event.sequence)
    html, _ = progress.render_job_update(job.pk, event.sequence, chart=False)
    assert finished is True
    assert f'id="job-{job.pk}"' not in board  # no longer running
    assert "Error 21502" in html and "Try again." in html
    assert "Cancel</button>" not in html


async def test_it_sends_only_to_the_jobs_own_group(job):
    other = await database_sync_to_async(make_job)(job.source, job.destination, JobState.RUNNING)
    layer, channel = await listen(f"job-{other.pk}")

    await database_sync_to_async(record)(job, "progress", {"percent": 5}, percent=5)

    assert await receive(layer, channel, 0.3) is None


class BrokenLayer:
    async def group_send(self, group, message):
        raise ConnectionError("layer down")


def test_a_failing_layer_never_reaches_the_caller(job, monkeypatch, caplog):
    monkeypatch.setattr(emit, "get_channel_layer", lambda: BrokenLayer())

    with caplog.at_level(logging.ERROR, logger="migrations_ui.jobs.emit"):
        record(job, "progress", {"percent": 70}, percent=70)

    job.refresh_from_db()
    assert job.percent == 70
    assert "could not send to group jobs" in caplog.text


def test_a_worker_renders_nothing(job, monkeypatch):
    def broken(*args, **kwargs):
        raise AssertionError("a worker rendered a template")

    monkeypatch.setattr(progress, "render_to_string", broken)

    change_state(job, JobState.SUCCEEDED)

    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


async def test_a_failing_render_in_the_web_process_is_logged_and_sends_nothing(caplog):
    def broken(*args):
        raise RuntimeError("template broke")

    with caplog.at_level(logging.ERROR, logger="migrations_ui.live.consumers"):
        assert await consumers.shared(("u-broken", "jobs", "en"), broken, language="en") is None

    assert "could not render" in caplog.text and "template broke" in caplog.text


def test_a_job_that_is_gone_sends_nothing(monkeypatch):
    monkeypatch.setattr(emit, "get_channel_layer", lambda: BrokenLayer())

    emit.send_job_update(987654)  # no exception, nothing to send


def test_a_process_that_is_exiting_sends_nothing_and_says_so_quietly(job, monkeypatch, caplog):
    # A CLI that queued a job exits while its announcement is pending: no thread may start then.
    monkeypatch.setattr(emit.threading, "main_thread", lambda: SimpleNamespace(is_alive=lambda: False))
    monkeypatch.setattr(emit, "get_channel_layer", lambda: BrokenLayer())

    with caplog.at_level(logging.INFO, logger="migrations_ui.jobs.emit"):
        emit.send_job_update(job.pk)

    assert "process exiting, update not sent" in caplog.text
    assert "ERROR" not in caplog.text
