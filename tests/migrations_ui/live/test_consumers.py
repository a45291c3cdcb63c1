"""Websocket consumers through the real ASGI stack (origin check, sessions, routing)."""

import asyncio
import threading
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_lite.layers.core import SQLiteChannelLayer
from django.conf import settings
from django.test import Client
from django.utils import timezone

from console.asgi import build_application
from migrations_ui.jobs.batches import end_maintenance
from migrations_ui.jobs.emit import JOBS_GROUP
from migrations_ui.jobs.events import change_state, record
from migrations_ui.live import batch_page, consumers, progress
from migrations_ui.live.consumers import JobsConsumer
from migrations_ui.models import Batch, BatchKind, JobEvent, JobState
from tests.fabric.factories import make_host, make_vm
from tests.migrations_ui.views.test_jobs_pages import make_job

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://testserver"


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    # One process only: the in-memory layer (a fresh dict gives each test a fresh layer).
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def hosts():
    return make_host("hv-s1"), make_host("hv-s2")


@pytest.fixture
def job(hosts):
    job = make_job(*hosts, JobState.RUNNING, vm=make_vm("web01", host=hosts[0]), step="move", percent=30)
    job.events.update(time=timezone.now() - timedelta(minutes=1))  # running for a while
    return job


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def connect(path: str, user=None, origin: str = ORIGIN, language: str = ""):
    """A communicator over a freshly built application; returns it and whether it was accepted."""
    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if language:
        headers.append((b"accept-language", language.encode()))
    if user is not None:
        headers.append((b"cookie", (await database_sync_to_async(session_cookie)(user)).encode()))
    communicator = WebsocketCommunicator(build_application(), path, headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def closed_with(communicator) -> int:
    message = await communicator.receive_output(timeout=2)
    assert message["type"] == "websocket.close"
    return message["code"]


async def test_a_logged_in_user_gets_the_current_board_first(admin_user, job, hosts):
    queued = await database_sync_to_async(make_job)(*hosts, vm=await database_sync_to_async(make_vm)("db01"))

    communicator, connected = await connect("/ws/jobs/", admin_user)

    assert connected
    first = await communicator.receive_from()
    assert '<section id="jobs-running" class="card wide" hx-swap-oob="true">' in first
    assert f'<tr id="job-{job.pk}">' in first and "30%" in first
    assert f'<tr id="job-{queued.pk}">' in first
    assert '<div id="jobs-finished" hx-swap-oob="true">' in first
    await communicator.disconnect()


async def test_a_logged_in_user_gets_the_jobs_current_state_first(admin_user, job):
    communicator, connected = await connect(f"/ws/jobs/{job.pk}/", admin_user)

    assert connected
    state, events = await communicator.receive_from(), await communicator.receive_from()
    assert '<section id="job-status" class="card" hx-swap-oob="true">' in state and "30%" in state
    assert '<section id="job-steps" class="card" hx-swap-oob="true">' in state
    # The log in a message of its own, starting with its <tbody> (HTML parsing drops one after other elements).
    assert events.lstrip().startswith('<tbody id="job-events" hx-swap-oob="true">') and 'id="event-1"' in events
    await communicator.disconnect()


@pytest.mark.parametrize("path", ["/ws/jobs/", "/ws/jobs/1/"])
async def test_an_anonymous_user_is_refused(path, job):
    communicator, _ = await connect(path)

    assert await closed_with(communicator) == 4401


async def test_a_refused_user_is_closed_before_anything_is_sent(django_user_model):
    # The stack never resolves an inactive user's session, so put one in the scope directly: this is
    # the path a per-object access rule takes.
    user = await database_sync_to_async(django_user_model.objects.create_user)("gone", is_active=False)
    communicator = WebsocketCommunicator(JobsConsumer.as_asgi(), "/ws/jobs/")
    communicator.scope["user"] = user
    await communicator.connect()

    assert await closed_with(communicator) == 4403
    assert await communicator.receive_nothing()


@pytest.mark.parametrize("origin", ["http://evil.example", "http://testserver.evil.example"])
async def test_a_foreign_origin_is_refused(admin_user, job, origin):
    _, connected = await connect("/ws/jobs/", admin_user, origin=origin)

    assert not connected


async def test_an_unknown_job_closes_with_4404(admin_user):
    communicator, _ = await connect("/ws/jobs/424242/", admin_user)

    assert await closed_with(communicator) == 4404


async def test_an_update_sent_after_commit_reaches_both_pages(admin_user, job):
    board, _ = await connect("/ws/jobs/", admin_user)
    detail, _ = await connect(f"/ws/jobs/{job.pk}/", admin_user)
    await board.receive_from()
    await detail.receive_from()
    await detail.receive_from()

    await database_sync_to_async(record)(job, "progress", {"percent": 55, "pass_number": 2}, percent=55)

    row = await board.receive_from()
    assert row.startswith(f'<tr id="job-{job.pk}" hx-swap-oob="true"') and "55%" in row
    state, events = await detail.receive_from(), await detail.receive_from()
    assert "55%" in state
    assert events.lstrip().startswith('<tbody hx-swap-oob="beforeend:#job-events">') and 'id="event-2"' in events
    await board.disconnect()
    await detail.disconnect()


async def test_the_job_page_gets_every_event_once_even_when_a_message_is_lost(admin_user, job):
    detail, _ = await connect(f"/ws/jobs/{job.pk}/", admin_user)
    await detail.receive_from()
    await detail.receive_from()

    # Event 2 is written without its announcement (as if the layer dropped it); event 3 is announced.
    await database_sync_to_async(JobEvent.objects.create)(job=job, sequence=2, kind="step", data={"step": "verify"})
    await database_sync_to_async(record)(job, "progress", {"percent": 80}, percent=80)

    await detail.receive_from()  # status and steps
    update = await detail.receive_from()
    assert 'id="event-2"' in update and 'id="event-3"' in update
    assert update.index('id="event-2"') < update.index('id="event-3"')
    # A late copy of an update the page already has is dropped.
    message = {"type": "job.changed", "id": "late", "job_id": job.pk, "sequence": 3}
    await get_channel_layer().group_send(f"job-{job.pk}", message)
    assert await detail.receive_nothing()
    await detail.disconnect()


async def test_a_finished_job_redraws_each_clients_finished_page_with_its_filters(admin_user, job):
    failed, _ = await connect("/ws/jobs/?state=failed", admin_user)
    succeeded, _ = await connect("/ws/jobs/?state=succeeded", admin_user)
    later_page, _ = await connect("/ws/jobs/?page=2", admin_user)
    for communicator in (failed, succeeded, later_page):
        await communicator.receive_from()

    await database_sync_to_async(change_state)(job, JobState.FAILED, error_code="21502")

    shown = await failed.receive_from()
    finished = shown[shown.index('id="jobs-finished"') :]
    assert f'<tr id="job-{job.pk}">' in finished and "21502" in finished
    other = await succeeded.receive_from()
    assert f'id="job-{job.pk}"' not in other[other.index('id="jobs-finished"') :]
    assert 'id="jobs-finished"' not in await later_page.receive_from()  # later pages do not shift
    for communicator in (failed, succeeded, later_page):
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True, databases=["default", "channels"])
async def test_a_group_send_through_the_sqlite_layer_reaches_a_consumer(settings, admin_user, monkeypatch):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_lite.layers.core.SQLiteChannelLayer",
            "CONFIG": {"database": "channels", "polling_interval": 0.02},
        }
    }
    board, connected = await connect("/ws/jobs/", admin_user)
    assert connected and isinstance(get_channel_layer(), SQLiteChannelLayer)
    await board.receive_from(timeout=5)
    # Another instance, as a worker process has: the message crosses through the database only.
    sender = SQLiteChannelLayer(database="channels")
    monkeypatch.setattr(progress, "render_board_update", lambda job_id, sequence: ('<p id="x">hello</p>', False))
    message = {"type": "job.changed", "id": "1", "job_id": 1, "sequence": 1}

    await sender.group_send("jobs", message)

    assert await board.receive_from(timeout=5) == '<p id="x">hello</p>'
    await board.disconnect()
    await get_channel_layer().close()


async def test_a_layer_that_fails_on_join_closes_so_that_htmx_reconnects(admin_user, monkeypatch):
    async def broken(*args):
        raise ConnectionError("layer down")

    monkeypatch.setattr(InMemoryChannelLayer, "group_add", broken)

    communicator, _ = await connect("/ws/jobs/", admin_user)

    assert await closed_with(communicator) == 1011  # htmx's ws extension retries 1011 with backoff


async def test_a_part_is_rendered_once_per_key_in_a_process():
    renders = []
    same, other = {"state": "", "vm": "", "page": 1}, {"state": "failed", "vm": "", "page": 1}

    def render(filters):
        renders.append(filters)
        return "html"

    for filters in (same, dict(same), other, same):
        assert await consumers.shared(("update-1", "en", *filters.values()), render, filters, language="en") == "html"

    assert renders == [same, other]


async def test_an_update_reaches_the_page_without_a_thread_hop_per_page(admin_user, monkeypatch):
    hops = []

    async def counted():
        hops.append(1)

    monkeypatch.setattr("channels.consumer.aclose_old_connections", counted)
    monkeypatch.setattr(progress, "render_board_update", lambda job_id, sequence: ("<tr>x</tr>", False))
    board, _ = await connect("/ws/jobs/", admin_user)
    await board.receive_from()
    before = len(hops)
    message = {"type": "job.changed", "id": "u1", "job_id": 1, "sequence": 9}

    await get_channel_layer().group_send(JOBS_GROUP, message)

    assert await board.receive_from() == "<tr>x</tr>"
    assert len(hops) == before  # channels' close_old_connections hop is skipped for the updates
    await board.disconnect()


async def test_pages_in_one_process_share_one_render_of_an_update(admin_user, monkeypatch):
    renders = []

    def board(job_id, sequence):
        renders.append("board")
        return "<tr>x</tr>", True

    def finished(filters):
        renders.append("finished")
        return "<section>finished</section>"

    monkeypatch.setattr(progress, "render_board_update", board)
    monkeypatch.setattr(progress, "render_finished", finished)
    boards = [(await connect("/ws/jobs/", admin_user))[0] for _ in range(3)]
    for page in boards:
        await page.receive_from()
    renders.clear()  # the replays' own renders
    message = {"type": "job.changed", "id": "u2", "job_id": 1, "sequence": 9}

    await get_channel_layer().group_send(JOBS_GROUP, message)

    for page in boards:
        assert await page.receive_from() == "<tr>x</tr><section>finished</section>"
        await page.disconnect()
    assert renders == ["board", "finished"]  # the pages woke together and awaited one render of each


async def test_each_page_gets_the_update_in_its_language_rendered_once_per_language(admin_user, job, monkeypatch):
    renders = []
    board = progress.render_board_update
    monkeypatch.setattr(progress, "render_board_update", lambda *args: renders.append(args) or board(*args))
    pages = [(await connect("/ws/jobs/", admin_user, language=code))[0] for code in ("en", "de", "en", "de")]
    for page in pages:
        await page.receive_from()

    await database_sync_to_async(change_state)(job, JobState.CANCELLING)

    shown = [await page.receive_from() for page in pages]
    assert "Cancelling" in shown[0] and shown[0] == shown[2]
    assert "Wird abgebrochen" in shown[1] and shown[1] == shown[3]
    assert len(renders) == 2  # one per language in this process, not one per page
    for page in pages:
        await page.disconnect()


async def test_a_viewer_watches_but_a_user_without_a_role_is_closed(viewer_user, outsider_user, job):
    communicator, connected = await connect(f"/ws/jobs/{job.pk}/", viewer_user)
    assert connected
    first = await communicator.receive_from(timeout=5)
    assert job.vm_name in first
    await communicator.disconnect()

    communicator, _ = await connect("/ws/jobs/", outsider_user)
    assert await closed_with(communicator) == 4403


# --- the batch page ---------------------------------------------------------------------------------


@pytest.fixture
def batch(hosts):
    """An evacuation of hv-s1 (in maintenance) with two moves: web01 running at 30%, db01 queued."""
    source, destination = hosts
    source.maintenance = True
    source.save(update_fields=["maintenance"])
    batch_page._actual_sent.clear()  # the timeline's rate limit is per batch id, and ids are reused
    batch = Batch.objects.create(name="Evacuate hv-s1", kind=BatchKind.EVACUATION, host=source)
    jobs = [
        make_job(source, destination, JobState.RUNNING, vm=make_vm("web01", host=source), percent=30, batch=batch),
        make_job(source, destination, vm=make_vm("db01", host=source), batch=batch),
    ]
    moves = [
        {
            "vm": job.vm_name,
            "vm_id": str(job.vm.guid),
            "source": source.fqdn,
            "destination": destination.fqdn,
            "destination_name": destination.name,
            "transfer_type": "live",
            "start_s": 40.0 * n,
            "end_s": 40.0 * n + 40,
        }
        for n, job in enumerate(jobs)
    ]
    batch.plan = {"host": source.fqdn, "moves": moves, "left": [], "makespan_s": 80.0, "lower_bound_s": 80.0}
    batch.save()
    batch.running, batch.queued = jobs
    return batch


async def drained(communicator, n: int = 2) -> list[str]:
    return [await communicator.receive_from() for _ in range(n)]


async def test_the_batch_page_gets_its_current_state_first(viewer_user, batch):
    communicator, connected = await connect(f"/ws/batches/{batch.pk}/", viewer_user)

    assert connected
    state, rows = await drained(communicator)
    assert '<section id="batch-progress" class="card wide" hx-swap-oob="true">' in state
    assert '<progress max="100" value="15"' in state and 'aria-valuenow="15"' in state  # (30 + 0) / 2
    assert "1 running, 1 queued" in state and "Move back to" not in state  # not before the moves end
    assert '<figure id="batch-actual" hx-swap-oob="true">' in state and "thin black bars" in state
    # Every VM's row, in a message of its own starting with the <tbody>.
    assert rows.lstrip().startswith('<tbody id="batch-outcomes" hx-swap-oob="true">')
    assert f'<tr id="batch-job-{batch.running.pk}">' in rows and "30%" in rows
    assert f'<tr id="batch-job-{batch.queued.pk}">' in rows and "Queued" in rows
    await communicator.disconnect()


async def test_a_batch_job_progress_reaches_the_batch_page(viewer_user, batch):
    page, _ = await connect(f"/ws/batches/{batch.pk}/", viewer_user)
    await drained(page)

    await database_sync_to_async(record)(batch.running, "progress", {"percent": 70}, percent=70)

    state, row = await drained(page)
    assert '<progress max="100" value="35"' in state and 'aria-valuenow="35"' in state  # the batch's bar: (70 + 0) / 2
    assert 'id="batch-actual"' not in state  # a progress sample moves no bar of the timeline
    assert row.startswith(f'<tr id="batch-job-{batch.running.pk}" hx-swap-oob="true"') and "70%" in row
    await page.disconnect()


async def test_the_end_of_the_batch_reaches_the_page_with_move_back(operator_user, batch):
    page, _ = await connect(f"/ws/batches/{batch.pk}/", operator_user)
    await drained(page)

    await database_sync_to_async(change_state)(batch.running, JobState.SUCCEEDED, percent=100)
    state, row = await drained(page)
    assert "1 succeeded, 1 queued" in state and '<progress max="100" value="50"' in state
    assert "Succeeded" in row and "Move back to" not in state
    assert 'id="batch-actual"' in state and "thin black bars" in state  # the actual run is drawn

    await database_sync_to_async(change_state)(batch.queued, JobState.FAILED, error_message="The host refused.")
    state, row = await drained(page)
    assert row.startswith(f'<tr id="batch-job-{batch.queued.pk}"') and "The host refused." in row
    assert "1 succeeded, 1 failed" in state and "the run took" in state
    assert 'id="batch-actual"' in state  # the batch's end redraws it, however soon after the last
    assert "Move back to hv-s1" in state and "End maintenance, VMs stay" in state
    await page.disconnect()


async def test_ending_the_maintenance_updates_the_batch_page(operator_user, batch):
    for job in (batch.running, batch.queued):
        await database_sync_to_async(change_state)(job, JobState.SUCCEEDED, percent=100)
    page, _ = await connect(f"/ws/batches/{batch.pk}/", operator_user)
    state, _ = await drained(page)
    assert "In maintenance" in state and "Move back to" in state

    await database_sync_to_async(end_maintenance)(batch.host, operator_user)

    state = await page.receive_from()
    assert 'id="batch-progress"' in state and "In maintenance" not in state and "Move back to" not in state
    await page.disconnect()


def _as_drain(batch, status: str) -> None:
    roles = {str(job.vm.guid): job.vm_name for job in (batch.running, batch.queued)}
    batch.kind = BatchKind.DRAIN
    batch.plan = {**batch.plan, "drain": {"status": status, "roles": roles, "stuck": []}}
    batch.save()
    batch.queued.delete()  # the cluster has not moved this role yet: no job


async def test_a_drains_change_reaches_the_page_with_its_rows(viewer_user, batch):
    from migrations_ui.jobs.emit import send_batch_update

    await database_sync_to_async(_as_drain)(batch, "in_progress")
    page, _ = await connect(f"/ws/batches/{batch.pk}/", viewer_user)
    state, rows = await drained(page)
    assert 'data-drain="in_progress"' in state and "The cluster has not moved it yet." in rows

    drain = {**batch.plan["drain"], "status": "completed"}
    await database_sync_to_async(Batch.objects.filter(pk=batch.pk).update)(plan={**batch.plan, "drain": drain})
    await database_sync_to_async(send_batch_update)(batch.pk)
    state, rows = await drained(page)  # the state, then the rows in a message of their own
    assert 'data-drain="completed"' in state
    assert rows.lstrip().startswith('<tbody id="batch-outcomes" hx-swap-oob="true">')
    assert f'<tr id="batch-job-{batch.running.pk}">' in rows

    # A drain's job change carries all its rows: the cluster's next move is a row the page lacks.
    await database_sync_to_async(change_state)(batch.running, JobState.SUCCEEDED, percent=100)
    state, rows = await drained(page)
    assert rows.lstrip().startswith('<tbody id="batch-outcomes" hx-swap-oob="true">') and "Succeeded" in rows
    await page.disconnect()


async def test_the_batch_page_hears_only_its_own_jobs_and_drops_stale_copies(viewer_user, batch, hosts):
    other = await database_sync_to_async(make_job)(*hosts, JobState.RUNNING, percent=5)
    page, _ = await connect(f"/ws/batches/{batch.pk}/", viewer_user)
    await drained(page)

    await database_sync_to_async(record)(other, "progress", {"percent": 60}, percent=60)
    assert await page.receive_nothing()
    # A late copy of an update older than the replay (the running job's only event is #1).
    stale = {"type": "job.changed", "id": "stale", "job_id": batch.running.pk, "sequence": 1}
    await get_channel_layer().group_send(f"batch-{batch.pk}", stale)
    assert await page.receive_nothing()
    await page.disconnect()


async def test_an_outsider_or_anonymous_user_is_refused_the_batch_page(outsider_user, batch):
    communicator, _ = await connect(f"/ws/batches/{batch.pk}/", outsider_user)
    assert await closed_with(communicator) == 4403
    assert await communicator.receive_nothing()

    communicator, _ = await connect(f"/ws/batches/{batch.pk}/")
    assert await closed_with(communicator) == 4401


async def test_an_unknown_batch_closes_with_4404(admin_user):
    communicator, _ = await connect("/ws/batches/424242/", admin_user)

    assert await closed_with(communicator) == 4404


async def test_the_actual_timeline_is_redrawn_at_most_every_few_seconds(viewer_user, batch):
    page, _ = await connect(f"/ws/batches/{batch.pk}/", viewer_user)
    await drained(page)

    await database_sync_to_async(change_state)(batch.queued, JobState.RUNNING)  # a move starts: drawn
    state, _ = await drained(page)
    assert 'id="batch-actual"' in state
    await database_sync_to_async(change_state)(batch.running, JobState.CANCELLING)  # at once after: not
    state, row = await drained(page)
    assert 'id="batch-actual"' not in state and "Cancelling" in row
    await page.disconnect()


@pytest.mark.parametrize("path", ["/ws/nothing/", "/ws/jobs/abc/", "/ws/batches/", "/", "/ws/jobs/1/extra/"])
async def test_an_unknown_path_closes_with_4404_and_logs_no_error(admin_user, path, caplog):
    # URLRouter raised ValueError("No route found for path ..."), logged as an error by the server.
    communicator, connected = await connect(path, admin_user)
    assert connected
    assert await closed_with(communicator) == 4404
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_the_web_process_counts_the_clients_it_streams_to_for_the_metrics(admin_user, job):
    from migrations_ui.beats import web_clients

    before = web_clients.count
    watching, connected = await connect(f"/ws/jobs/{job.pk}/", admin_user)
    assert connected and await watching.receive_from()  # joined: its replay comes
    assert web_clients.count == before + 1
    refused, _ = await connect("/ws/jobs/")  # anonymous: closed, never counted
    assert await closed_with(refused) == 4401 and web_clients.count == before + 1
    await refused.disconnect()
    await watching.disconnect()
    assert web_clients.count == before


IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
FANOUT = {"BACKEND": "console.fanout.FanoutChannelLayer", "CONFIG": {"layer": IN_MEMORY}}


@pytest.fixture
def fanout_layer(settings):
    settings.CHANNEL_LAYERS = {"default": FANOUT}


def update(update_id: str, sequence: int) -> dict:
    return {"type": "job.changed", "id": update_id, "job_id": 1, "sequence": sequence}


def rows_by_sequence(monkeypatch):
    monkeypatch.setattr(progress, "render_board_update", lambda job_id, sequence: (f"<tr>{sequence}</tr>", False))


async def test_with_the_fan_out_updates_reach_the_pages_without_their_own_tasks(fanout_layer, admin_user, monkeypatch):
    rows_by_sequence(monkeypatch)
    woken = []
    monkeypatch.setattr(JobsConsumer, "job_changed", lambda self, event: woken.append(event))
    pages = [(await connect("/ws/jobs/", admin_user))[0] for _ in range(3)]
    for page in pages:
        await page.receive_from()

    for sequence in (7, 8):
        await get_channel_layer().group_send(
            JOBS_GROUP, {"type": "job.changed", "id": f"d{sequence}", "job_id": 1, "sequence": sequence}
        )

    for page in pages:
        assert [await page.receive_from(), await page.receive_from()] == ["<tr>7</tr>", "<tr>8</tr>"]
        await page.disconnect()
    assert woken == []  # the fan-out handed them over: no page's task woke for them


async def test_a_page_whose_client_does_not_read_holds_up_only_itself(fanout_layer, admin_user, monkeypatch):
    """A server's send may wait for its client (uvicorn's backpressure): the other pages go on."""
    rows_by_sequence(monkeypatch)
    reading = asyncio.Event()
    send = JobsConsumer.send

    async def slow_for_german(self, text_data=None, **kwargs):
        if self.language == "de" and self.streaming:
            await reading.wait()
        await send(self, text_data=text_data, **kwargs)

    monkeypatch.setattr(JobsConsumer, "send", slow_for_german)
    slow, _ = await connect("/ws/jobs/", admin_user, language="de")
    fast, _ = await connect("/ws/jobs/", admin_user, language="en")
    for page in (slow, fast):
        await page.receive_from()

    for sequence in (1, 2, 3):
        await get_channel_layer().group_send(
            JOBS_GROUP, {"type": "job.changed", "id": f"s{sequence}", "job_id": 1, "sequence": sequence}
        )

    assert [await fast.receive_from() for _ in range(3)] == ["<tr>1</tr>", "<tr>2</tr>", "<tr>3</tr>"]
    assert await slow.receive_nothing(timeout=0.2)
    reading.set()
    assert [await slow.receive_from() for _ in range(3)] == ["<tr>1</tr>", "<tr>2</tr>", "<tr>3</tr>"]
    for page in (slow, fast):
        await page.disconnect()


async def test_an_update_during_the_replay_follows_it_and_later_ones_stay_in_order(
    fanout_layer, admin_user, monkeypatch
):
    rows_by_sequence(monkeypatch)
    replaying, replayed = threading.Event(), threading.Event()
    sections = progress.render_sections

    def slow_replay(*args):
        replaying.set()
        replayed.wait(5)
        return sections(*args)

    monkeypatch.setattr(progress, "render_sections", slow_replay)
    # The update's row is rendered already (another page asked): only the order can hold it back.
    language = settings.LANGUAGE_CODE
    await consumers.shared(("r1", "jobs", language), progress.render_board_update, 1, 1, language=language)
    cookie = await database_sync_to_async(session_cookie)(admin_user)
    headers = [(b"origin", ORIGIN.encode()), (b"host", b"testserver"), (b"cookie", cookie.encode())]
    page = WebsocketCommunicator(build_application(), "/ws/jobs/", headers=headers)
    connecting = asyncio.ensure_future(page.connect())
    await asyncio.get_running_loop().run_in_executor(None, replaying.wait, 5)
    layer = get_channel_layer()
    await layer.group_send(JOBS_GROUP, update("r1", 1))
    replayed.set()
    await connecting
    await layer.group_send(JOBS_GROUP, update("r2", 2))

    assert 'id="jobs-queued"' in await page.receive_from()  # the replay first
    assert [await page.receive_from(), await page.receive_from()] == ["<tr>1</tr>", "<tr>2</tr>"]
    await page.disconnect()
