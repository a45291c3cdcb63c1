"""Process heartbeats for the metrics: a worker's row, a web process's websocket clients."""

from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_ui import beats
from migrations_ui.models import ProcessBeat

pytestmark = pytest.mark.django_db


def test_it_writes_a_workers_row_at_most_every_beat_and_forgets_processes_long_gone():
    gone = timezone.now() - beats.FORGET - timedelta(minutes=1)
    ProcessBeat.objects.create(kind="worker", name="old:1", started_at=gone, beat_at=gone)
    worker_beat = beats.WorkerBeat()
    worker_beat()
    row = ProcessBeat.objects.get()
    assert (row.kind, row.name) == ("worker", beats.process_name())
    first = row.beat_at
    worker_beat()  # within BEAT_S: no write
    assert ProcessBeat.objects.get().beat_at == first
    worker_beat.last -= beats.BEAT_S
    worker_beat()
    assert ProcessBeat.objects.get().beat_at > first


def test_a_web_process_counts_its_clients_in_memory_and_never_below_zero(settings):
    settings.BEATS_IN_BACKGROUND = False
    clients = beats._WebClients()
    clients.add(1)
    clients.add(1)
    clients.add(-1)
    assert clients.count == 1 and clients.thread is None
    clients.add(-5)
    assert clients.count == 0
    beats.beat("web", clients.count + 4)
    assert ProcessBeat.objects.get(name=beats.process_name()).websocket_clients == 4
