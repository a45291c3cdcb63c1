"""The pre-maintenance report (pure): each kind of VM that cannot move live, its choices, and the
plan its choices make."""

from dataclasses import replace

from migrations_ui.planning.planner import PlanOptions
from migrations_ui.planning.report import (
    LEAVE_RUNNING,
    MOVE_OFFLINE,
    SAVE_MOVE,
    SHUT_DOWN_MOVE,
    SHUT_DOWN_STAY,
    STAY,
    build_report,
    plan_with_choices,
)
from migrations_ui.preflight.facts import SAVE, SHUT_DOWN, Kind
from tests.migrations_ui.planning.test_planner import host, vm

N1 = host("hv-n1", cluster="cl1", free_gib=100)
N2 = host("hv-n2", cluster="cl1", free_gib=100)
VMS = [
    vm("web", 4),  # moves live: not in the report
    vm("legacy", 4, compat_vector_stale=True),  # came from an older cluster version
    vm("dbpass", 4, passthrough_disks=(2,)),  # a physical disk: no move takes it
    vm("huge", 120),  # no host has room for it
    vm("parked", 4, state="off"),
    vm("asleep", 4, state="saved"),
]


def report(**kw):
    return build_report(N1, VMS, [N1, N2], PlanOptions(), resident={N2.fqdn: []}, **kw)


def rows(r) -> dict:
    return {row.vm.name: row for row in r.rows}


def test_every_vm_that_cannot_move_live_is_listed_with_its_rules_and_remedies():
    r = rows(report())

    assert set(r) == {"legacy", "dbpass", "huge", "parked", "asleep"}
    assert [f.rule for f in r["legacy"].findings] == ["compat-vector-restart-required"]
    assert [f.rule for f in r["dbpass"].findings] == ["passthrough-disk"]
    assert [f.rule for f in r["huge"].findings] == ["insufficient-memory"]
    assert "0x800705AA" in r["huge"].findings[0].message
    assert [f.rule for f in r["parked"].findings] == [f.rule for f in r["asleep"].findings] == ["vm-not-running"]
    assert all(f.remedy for row in r.values() for f in row.findings)


def test_each_vm_is_offered_what_its_state_allows_and_a_destination_takes():
    r = rows(report())

    # A shut-down VM starts with its new host's vector; a saved one keeps the old one.
    assert r["legacy"].choices == (SHUT_DOWN_MOVE, SHUT_DOWN_STAY, LEAVE_RUNNING)
    assert dict(r["legacy"].unavailable)[SAVE_MOVE].startswith("No host can take it")
    assert dict(r["legacy"].destinations) == {SHUT_DOWN_MOVE: "hv-n2"}
    # No offline move takes a pass-through disk either; no host has the memory to start the big one.
    assert r["dbpass"].choices == r["huge"].choices == (SHUT_DOWN_STAY, LEAVE_RUNNING)
    assert "memory" in dict(r["huge"].unavailable)[SHUT_DOWN_MOVE]
    assert r["parked"].choices == r["asleep"].choices == (MOVE_OFFLINE, STAY)


def test_nothing_is_stopped_by_default_and_a_kept_default_comes_back():
    r = rows(report())
    assert {name: row.default for name, row in r.items()} == {
        "legacy": LEAVE_RUNNING,
        "dbpass": LEAVE_RUNNING,
        "huge": LEAVE_RUNNING,
        "parked": STAY,
        "asleep": STAY,
    }
    assert rows(report(move_stopped=True))["parked"].default == MOVE_OFFLINE

    kept = rows(report(kept={"id-legacy": SHUT_DOWN_MOVE, "id-dbpass": SAVE_MOVE}))
    assert (kept["legacy"].default, kept["legacy"].kept) == (SHUT_DOWN_MOVE, True)
    assert (kept["dbpass"].default, kept["dbpass"].kept) == (LEAVE_RUNNING, False)  # no longer possible


def test_the_plan_carries_out_each_choice():
    choices = {
        "id-legacy": SHUT_DOWN_MOVE,
        "id-dbpass": SHUT_DOWN_STAY,
        "id-huge": SHUT_DOWN_STAY,
        "id-parked": MOVE_OFFLINE,
        "id-asleep": STAY,
    }
    chosen = plan_with_choices(N1, VMS, [N1, N2], PlanOptions(), choices, resident={N2.fqdn: []})

    kinds = {m.vm: m.transfer_type for m in chosen.plan.moves}
    assert kinds == {"web": Kind.LIVE, "legacy": Kind.NETWORK, "parked": Kind.NETWORK}
    assert chosen.power == {"id-legacy": SHUT_DOWN}
    assert set(chosen.shut_down) == {"id-dbpass", "id-huge"}
    assert {v.vm for v in chosen.plan.left} == {"dbpass", "huge", "asleep"}
    assert chosen.left_running == ()  # the host can enter maintenance


def test_a_vm_left_running_keeps_the_host_out_of_maintenance():
    chosen = plan_with_choices(N1, VMS, [N1, N2], PlanOptions(), {"id-huge": LEAVE_RUNNING}, resident={N2.fqdn: []})
    # dbpass has no choice: it cannot move and nobody said to shut it down, so it runs on too.
    assert {v.vm for v in chosen.left_running} == {"huge", "dbpass", "legacy"}


def test_a_saved_move_needs_the_memory_to_resume_where_it_lands():
    small = replace(N2, memory_available_bytes=60 * 1024**3)  # 34.4 GiB to give with 10% headroom
    fits = vm("mid", 8, passthrough_disks=())
    blocked = replace(fits, id="id-big", name="big", memory_bytes=40 * 1024**3)
    chosen = plan_with_choices(
        N1, [fits, blocked], [N1, small], PlanOptions(), {"id-mid": SAVE_MOVE, "id-big": SAVE_MOVE}, resident={}
    )
    assert [m.vm for m in chosen.plan.moves] == ["mid"]
    assert chosen.power == {"id-mid": SAVE}  # the VM with nowhere to go is not taken down
    assert [v.vm for v in chosen.left_running] == ["big"]


def test_choices_a_row_does_not_offer_are_refused_with_the_reason():
    r = report()
    wrong = r.refused({"id-legacy": SAVE_MOVE, "id-web": STAY, "id-parked": "explode", "id-huge": SHUT_DOWN_STAY})

    assert set(wrong) == {"id-legacy", "id-web", "id-parked"}
    assert "No host can take it" in wrong["id-legacy"]
    assert "not in the report" in wrong["id-web"]
