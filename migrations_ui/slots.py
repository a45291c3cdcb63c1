"""Migration slots (pure): the unit of a host's limits, and which slots each kind of move holds.

hyperv.md section 3: a host counts every migration it takes part in, in or out; live and storage
slots are independent; Live (VSM) takes one of each on both hosts; a storage move takes a storage
slot on its one host; a cluster node's live limit is the cluster's MaximumParallelMigrations.
Pre-flight, the planner, admission and the slots chart all count with these.
"""

from __future__ import annotations

LIVE, STORAGE = "live", "storage"
_NEEDS = {
    "live": (LIVE,),
    "quick": (LIVE,),
    "network": (LIVE, STORAGE),  # an offline move copies files: hold both, as a host may count either
    "live_vsm": (LIVE, STORAGE),
    "storage": (STORAGE,),
}

Slot = tuple[int, str]  # (host id, "live" | "storage")


def slots_needed(kind: str, source: int, destination: int) -> list[Slot]:
    hosts = dict.fromkeys((source, destination))  # one host for a storage move, in order
    return [(host, slot) for host in hosts for slot in _NEEDS[kind]]
