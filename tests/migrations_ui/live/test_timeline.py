import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from migrations_ui.live.timeline import BY_MOVE, clock, tick_step, timeline_svg
from migrations_ui.planning.planner import STOPPED_MOVE, Plan
from tests.migrations_ui.planning.test_planner import A, B, C, evacuate, vm

SVG = "{http://www.w3.org/2000/svg}"
NASTY = "x'; $(Remove-VM -Name *) ; \"<script>alert(1)</script>&amp;"


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture, which tests/conftest.py's autouse fixtures ask for: these
    tests are pure and run with -p no:django too."""
    return SimpleNamespace()


@pytest.fixture
def plan() -> Plan:
    vms = [vm("db", 32), vm("web1", 4), vm("web2", 4), vm(NASTY, 2), vm("old", 8, state="off")]
    return evacuate(A, vms, [A, B, C], stopped=STOPPED_MOVE)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 -- our own output, parsed to check it is well-formed


def test_it_is_well_formed_svg_with_one_bar_per_move(plan):
    root = parse(timeline_svg(plan))

    assert root.tag == f"{SVG}svg"
    moves = root.findall(f"{SVG}g[@class='move']")
    assert len(moves) == len(plan.moves)
    assert {g.get("data-kind") for g in moves} == {"live", "network"}


def test_vm_names_are_escaped_and_come_back_unchanged(plan):
    svg = timeline_svg(plan, lanes=BY_MOVE, width=2000)

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    tips = [g.find(f"{SVG}title").text for g in root.findall(f"{SVG}g[@class='move']")]
    assert any(t.startswith(NASTY + ": Live to hv-") for t in tips)
    lane_labels = [t.text for t in root.findall(f"{SVG}text")]
    assert any(label and label.startswith("x'; $(Remove-VM") for label in lane_labels)


def test_control_characters_cannot_break_the_document():
    odd = evacuate(A, [vm("bell\x07tab\tname", 2)], [A, B])
    root = parse(timeline_svg(odd))
    assert "bell\ufffdtab\tname" in root.find(f"{SVG}g/{SVG}title").text


def test_overlapping_moves_to_one_host_stack_in_rows(plan):
    root = parse(timeline_svg(plan))
    bars = []
    for g in root.findall(f"{SVG}g[@class='move']"):
        rect = g.find(f"{SVG}rect")
        bars.append((float(rect.get("y")), float(rect.get("x")), float(rect.get("x")) + float(rect.get("width"))))
    for i, (y, x0, x1) in enumerate(bars):
        for y2, a0, a1 in bars[i + 1 :]:
            if y == y2:
                assert x1 <= a0 + 0.2 or a1 <= x0 + 0.2  # same row: never on top of each other


def test_a_lane_per_destination_or_per_move(plan):
    by_host = parse(timeline_svg(plan))
    labels = {t.text for t in by_host.findall(f"{SVG}text")}
    assert {"hv-b", "hv-c"} & labels
    by_move = timeline_svg(plan, lanes=BY_MOVE)
    assert by_move.count('<rect x="0"') == len(plan.moves)  # one lane background each
    with pytest.raises(ValueError, match="lanes"):
        timeline_svg(plan, lanes="cluster")


def test_the_actual_run_is_drawn_under_the_plan(plan):
    first, second = plan.moves[0], plan.moves[1]
    svg = timeline_svg(plan, actual={first.vm_id: (1.0, first.end_s + 20), second.vm_id: (3.0, None)})

    root = parse(svg)
    assert len(root.findall(f".//{SVG}rect[@class='actual']")) == 2
    assert "still running" in svg
    assert ">actual<" in svg  # in the legend


def test_the_axis_reaches_the_makespan(plan):
    root = parse(timeline_svg(plan))
    ticks = [t.text for t in root.findall(f"{SVG}text[@text-anchor='middle']")]
    assert ticks[0] == "0 s"
    assert len(ticks) >= 3


def test_an_empty_plan_still_draws():
    root = parse(timeline_svg(evacuate(A, [], [A, B])))
    assert root.findall(f"{SVG}g[@class='move']") == []


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.4, "59 s"), (65, "1:05"), (3723, "1:02:03")])
def test_times_read_like_a_clock(seconds, text):
    assert clock(seconds) == text


def test_ticks_are_round_and_few():
    assert tick_step(95) == 10
    assert tick_step(600) == 60
    assert tick_step(10_000) == 1800


def test_a_name_too_long_for_its_bar_is_written_beside_it_where_the_row_is_free():
    # issue 19 defect 15: a short move's name was cut to "prin…" inside its bar.
    long_name = "print-spooler-01"
    plan = evacuate(A, [vm("db", 64), vm(long_name, 1)], [A, B, C])
    root = parse(timeline_svg(plan, width=600))
    texts = ["".join(t.itertext()) for g in root.findall(f"{SVG}g[@class='move']") for t in g.findall(f"{SVG}text")]
    assert long_name in texts
    assert not any(t.endswith("\u2026") and long_name.startswith(t[:-1]) for t in texts)
