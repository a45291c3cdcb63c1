import pytest

from fabric.hyperv.precopy import closed_form_total, plan_precopy, precopy_rounds

GIB = 1024**3
MB = 1_000_000


def test_it_sends_all_memory_first_then_what_was_dirtied():
    plan = plan_precopy(8 * GIB, 400 * MB, 100 * MB, threshold_bytes=1, max_passes=3)

    assert plan.ratio == pytest.approx(0.25)
    assert plan.pass_bytes == pytest.approx((8 * GIB, 2 * GIB, 0.5 * GIB))
    assert plan.final_bytes == pytest.approx(0.125 * GIB)


def test_it_matches_the_closed_form_total_and_time():
    memory, rate, dirty = 16 * GIB, 1250 * MB, 300 * MB
    plan = plan_precopy(memory, rate, dirty)

    expected = closed_form_total(memory, dirty / rate, plan.passes)
    assert plan.total_bytes == pytest.approx(expected, rel=1e-12)
    assert plan.duration_s == pytest.approx(expected / rate, rel=1e-12)
    assert plan.converged


def test_it_stops_when_the_rest_is_under_the_threshold():
    threshold = 64 * 1024 * 1024
    plan = plan_precopy(4 * GIB, 125 * MB, 25 * MB, threshold_bytes=threshold)

    assert plan.final_bytes < threshold
    # The pass before the last was still over the threshold, or the passes would have stopped earlier.
    assert plan.pass_bytes[-1] * plan.ratio == pytest.approx(plan.final_bytes)
    assert all(size >= threshold for size in plan.pass_bytes[1:])
    assert plan.passes < 10


def test_it_gives_the_downtime_of_the_stop_and_copy_plus_resume():
    plan = plan_precopy(4 * GIB, 125 * MB, 25 * MB, resume_s=0.5)

    assert plan.blackout_s == pytest.approx(plan.final_bytes / (125 * MB) + 0.5)
    assert plan.blackout_s < plan.duration_s


@pytest.mark.parametrize("dirty_mb", [125, 200, 1000])
def test_it_never_converges_when_the_guest_dirties_as_fast_as_the_link(dirty_mb):
    memory = 2 * GIB
    plan = plan_precopy(memory, 125 * MB, dirty_mb * MB, max_passes=10)

    assert not plan.converged
    assert plan.passes == 10
    # A page dirtied twice is sent once: no pass can exceed the memory.
    assert all(size <= memory for size in plan.pass_bytes)
    assert plan.final_bytes == pytest.approx(memory)
    assert plan.total_bytes == pytest.approx(11 * memory)


def test_it_needs_one_pass_for_an_idle_guest():
    plan = plan_precopy(2 * GIB, 125 * MB, 0, resume_s=0.2)

    assert plan.passes == 1
    assert plan.final_bytes == 0
    assert plan.duration_s == pytest.approx(2 * GIB / (125 * MB))
    assert plan.blackout_s == pytest.approx(0.2)


def test_it_can_plan_the_rest_of_a_migration_from_a_later_pass():
    passes, final = precopy_rounds(8 * GIB, 0.5, threshold_bytes=1, max_passes=2, first_bytes=1 * GIB)

    assert passes == pytest.approx([1 * GIB, 0.5 * GIB])
    assert final == pytest.approx(0.25 * GIB)


def test_it_refuses_a_zero_rate():
    with pytest.raises(ValueError):
        plan_precopy(GIB, 0, 0)
