"""The planning adapter reads the measured links from the succeeded live jobs of each pair of hosts."""

import pytest
from django.template.loader import render_to_string

from migrations_ui.planning.estimates import MIN_SAMPLES, Figures, measured_link
from migrations_ui.planning.inventory import measured_links, past_moves, selection_plan
from tests.fabric.factories import make_host, make_vm
from tests.migrations_ui.past import GIB, finished_job

pytestmark = pytest.mark.django_db
READY = {"auth_type": "kerberos", "kerberos_delegation": "configured", "use_any_network": True, "nic_gbps": 10.0}


@pytest.fixture
def pair(settings):
    settings.SIM_TIME_SCALE = 2  # the sim driver: two fabric seconds a wall second
    return make_host("hv-a", **READY), make_host("hv-b", **READY)


def test_five_succeeded_live_moves_measure_a_pair(pair):
    a, b = pair
    vm = make_vm("web01", host=a)
    for _ in range(MIN_SAMPLES - 1):
        finished_job(vm, a, b, memory_gib=8, sent_gib=10, move_s=30.0)
    # Neither a failed nor a Quick move, nor a move the other way, measures a -> b.
    finished_job(vm, a, b, state="failed")
    finished_job(vm, a, b, kind="quick")
    finished_job(vm, b, a)
    assert measured_links() == {}

    finished_job(vm, a, b, memory_gib=8, sent_gib=10, move_s=30.0)

    moves = past_moves()[(a.fqdn, b.fqdn)]
    assert len(moves) == MIN_SAMPLES
    assert moves[0].move_s == pytest.approx(60.0)  # 30 wall seconds of a fabric running twice as fast
    rate = measured_links()[(a.fqdn, b.fqdn)]
    assert rate.samples == MIN_SAMPLES
    assert rate.link_bytes_s == pytest.approx(10 * GIB / (60.0 - Figures().prepare_s - Figures().resume_s))
    assert rate == measured_link(moves)
    assert (b.fqdn, a.fqdn) not in measured_links()


def test_a_plan_on_a_measured_pair_says_so(pair):
    a, b = pair
    vm = make_vm("web01", host=a)
    selection = [make_vm("app01", host=a, memory_assigned_bytes=8 * GIB)]
    plan = selection_plan(selection, b)
    assert [m.estimate_basis for m in plan.moves] == ["inventory"]
    for _ in range(MIN_SAMPLES):
        finished_job(vm, a, b, sent_gib=4, move_s=200.0)  # far slower than 10 Gbit/s

    measured = selection_plan(selection, b)

    assert [(m.estimate_basis, m.spec.link_samples) for m in measured.moves] == [("measured", MIN_SAMPLES)]
    assert measured.makespan_s > 3 * plan.makespan_s
    rows = render_to_string("partials/plan_rows.html", {"plan": measured})
    assert "Estimate from 5 past moves on this pair." in rows and "inventory" not in rows
    rows = render_to_string("partials/plan_rows.html", {"plan": plan})
    assert "Estimates from the inventory's link speed: no pair of hosts in this plan has 5 past live moves" in rows
