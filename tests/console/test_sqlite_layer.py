"""console.sqlite_layer: the SQLite channel layer queries when its file changed, not on every look."""

from __future__ import annotations

import asyncio

import pytest
from channels_lite.layers import ChannelEmpty
from channels_lite.layers.core import SQLiteChannelLayer as BaseLayer

from console.sqlite_layer import SQLiteChannelLayer

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels"])


@pytest.fixture
def queries(monkeypatch):
    """The channels the base class was asked to query, in order."""
    asked = []
    real = BaseLayer._receive_single_from_db

    async def counted(self, channel):
        asked.append(channel)
        return await real(self, channel)

    monkeypatch.setattr(BaseLayer, "_receive_single_from_db", counted)
    return asked


async def test_a_message_sent_by_another_process_reaches_a_waiting_receiver():
    receiver = SQLiteChannelLayer(database="channels", watch_interval=0.002, polling_interval=5)
    sender = SQLiteChannelLayer(database="channels")  # another instance: as a worker process has
    channel = await receiver.new_channel()
    waiting = asyncio.ensure_future(receiver.receive(channel))
    await asyncio.sleep(0.1)  # looking, and finding nothing

    await sender.send(channel, {"type": "jobs.update", "html": "<tr>"})

    assert await asyncio.wait_for(waiting, 5) == {"type": "jobs.update", "html": "<tr>"}
    await receiver.close()


@pytest.fixture
def files(tmp_path):
    """Stand-ins for the database file and its WAL (the test database lives in memory)."""
    database, wal = tmp_path / "channels.sqlite3", tmp_path / "channels.sqlite3-wal"
    database.write_bytes(b"db")
    wal.write_bytes(b"")
    return database, wal


async def test_it_queries_again_only_once_the_file_changed(queries, files, monkeypatch):
    layer = SQLiteChannelLayer(database="channels", polling_interval=60)
    monkeypatch.setattr(layer, "watched", lambda: files)
    channel = "specific.test!"
    for _ in range(3):
        with pytest.raises(ChannelEmpty):
            await layer._receive_single_from_db(channel)
    assert queries == [channel]  # the two later looks saw the same file and skipped the query

    await SQLiteChannelLayer(database="channels").send(channel + "page", {"type": "jobs.update"})
    with files[1].open("ab") as wal:
        wal.write(b"frame")  # what the commit does to the real file

    _, message = await layer._receive_single_from_db(channel)
    assert message["type"] == "jobs.update" and queries == [channel, channel]


async def test_a_database_in_memory_is_queried_on_every_look(queries):
    layer = SQLiteChannelLayer(database="channels", polling_interval=60)
    assert layer.watched() == ()  # the test database: nothing to watch
    for _ in range(2):
        with pytest.raises(ChannelEmpty):
            await layer._receive_single_from_db("specific.test!")
    assert len(queries) == 2


async def test_it_queries_after_the_polling_interval_even_when_nothing_changed(queries, files, monkeypatch):
    layer = SQLiteChannelLayer(database="channels", polling_interval=0)
    monkeypatch.setattr(layer, "watched", lambda: files)
    for _ in range(3):
        with pytest.raises(ChannelEmpty):
            await layer._receive_single_from_db("specific.test!")
    assert len(queries) == 3
