"""Converging or not, judged from a migration's progress samples (migrations_ui.live.convergence)."""

import math

import pytest

from fabric.hyperv.precopy import plan_precopy
from migrations_ui.live.convergence import (
    AT_RISK,
    CONVERGING,
    FALLING,
    NOT_CONVERGING,
    NOT_FALLING,
    NOT_REPORTED,
    SLOW,
    WAITING,
    Sample,
    judge,
    memory_trend,
    passes,
    project,
)

GB = 1_000_000_000
MB = 1_000_000


def run(*passes_, per_pass=3, memory=None):
    """Samples for passes given as (transfer MB/s, dirty MB/s), one second apart, per_pass each;
    memory: the memory left at each pass's start (falling within the pass at R - D)."""
    out, t = [], 0.0
    for number, (rate, dirty) in enumerate(passes_, 1):
        for i in range(per_pass):
            left = None
            if memory is not None:
                left = min(max(memory), max(0, int(memory[number - 1] - (rate - dirty) * MB * i)))
            out.append(Sample(t, number, rate, dirty, left))
            t += 1.0
    return out


@pytest.mark.parametrize(
    ("passes_", "status", "hot"),
    [
        # Dirty rate well under the transfer rate: every pass shrinks.
        ([(125, 10), (125, 10), (125, 10)], CONVERGING, 0),
        # One pass close to the transfer rate (90 %) is a warning, not yet a verdict.
        ([(125, 10), (125, 113)], AT_RISK, 1),
        # Two passes above it, still fewer than three.
        ([(125, 200), (125, 200)], AT_RISK, 2),
        # Three passes in a row near (>= 90 %) or above: not converging.
        ([(125, 115), (125, 130), (125, 200)], NOT_CONVERGING, 3),
        ([(125, 10), (125, 200), (125, 200), (125, 200), (125, 200)], NOT_CONVERGING, 4),
        # Just under 90 % every pass: still converging, if slowly.
        ([(100, 89), (100, 89), (100, 89), (100, 89)], CONVERGING, 0),
        # It was hot, then the link freed up (another migration ended): converging again.
        ([(60, 100), (60, 100), (60, 100), (250, 100)], CONVERGING, 0),
        # The transfer rate halves while the dirty rate stays: the latest passes turn hot.
        ([(250, 100), (250, 100), (110, 100), (110, 100), (110, 100)], NOT_CONVERGING, 3),
    ],
)
def test_it_judges_from_the_latest_passes(passes_, status, hot):
    verdict = judge(run(*passes_))

    assert (verdict.status, verdict.hot_passes) == (status, hot)
    assert [p.number for p in verdict.passes] == list(range(1, len(passes_) + 1))


@pytest.mark.parametrize(
    ("samples", "status"),
    [
        ([], WAITING),
        # The host reports the memory left but the copy has not begun (prepare, or a VSM's files first).
        ([Sample(0, 0, 0, 0, 4 * GB), Sample(1, 0, 80, 0, 4 * GB)], WAITING),
        # A real host: percent and bytes, no pass number, no memory left.
        ([Sample(0, 0, 0, 0), Sample(1, 0, 0, 0)], NOT_REPORTED),
        # Pass numbers but never a rate: nothing to compare.
        ([Sample(0, 1, 0, 0), Sample(1, 2, 0, 0)], NOT_REPORTED),
    ],
)
def test_it_says_when_there_is_nothing_to_judge(samples, status):
    assert judge(samples).status == status


def test_a_pass_read_only_as_it_ended_does_not_count():
    # The last sample of a finished move: the stop-and-copy round, its rate already 0.
    samples = [*run((125, 10), (125, 10)), Sample(10, 3, 0, 10, 0)]

    verdict = judge(samples)

    assert verdict.status == CONVERGING
    assert [p.rated for p in verdict.passes] == [True, True, False]
    assert math.isnan(verdict.passes[-1].ratio)
    assert verdict.latest.number == 2


def test_it_ignores_samples_before_the_memory_copy_and_averages_each_pass():
    samples = [Sample(0, 0, 300, 40), Sample(1, 1, 100, 40), Sample(2, 1, 140, 60), Sample(3, 2, 0, 60)]

    [first, second] = passes(samples)

    assert (first.start_s, first.end_s) == (1, 2)
    assert (first.transfer_mbps, first.dirty_mbps) == (120, 50)
    assert first.ratio == pytest.approx(50 / 120)
    assert not second.rated


def test_it_sorts_samples_by_time():
    samples = run((125, 10), (125, 200))

    assert [p.number for p in passes(list(reversed(samples)))] == [1, 2]


@pytest.mark.parametrize(
    ("passes_", "memory", "trend"),
    [
        ([(125, 10), (125, 10)], [4 * GB, GB], FALLING),
        # lambda >= 1: each pass sends the whole memory again (capped at M).
        ([(125, 200), (125, 200)], [2 * GB, 2 * GB], NOT_FALLING),
        ([(125, 40)], [4 * GB], FALLING),  # pass 1 alone: falls at R - D within it
        ([(125, 125)], [4 * GB], NOT_FALLING),
    ],
)
def test_it_tells_whether_the_memory_left_falls(passes_, memory, trend):
    samples = run(*passes_, memory=memory)

    assert memory_trend(samples) == trend
    assert judge(samples).memory_trend == trend


def test_the_memory_trend_is_unknown_without_the_figure():
    assert memory_trend(run((125, 10), (125, 10))) == ""


@pytest.mark.parametrize(
    ("dirty", "expected"),
    [
        (20, CONVERGING),  # lambda 0.16: under the threshold in a few passes
        (100, SLOW),  # lambda 0.8: shrinking, but ten passes leave 460 MB for the blackout
        (150, NOT_CONVERGING),  # lambda 1.2: every pass sends all the memory again
    ],
)
def test_its_verdict_agrees_with_the_pre_copy_model(dirty, expected):
    memory = 4 * 1024**3
    plan = plan_precopy(memory, 125 * MB, dirty * MB)
    samples = run(*[(125, dirty)] * plan.passes, memory=list(plan.pass_bytes))

    assert judge(samples).status == expected
    assert plan.converged == (expected == CONVERGING)
    # Already from the first pass, the projection tells a slow copy from a quick one.
    early = judge(run((125, dirty), memory=[memory]))
    assert (early.status == SLOW) == (expected == SLOW)


def test_it_projects_the_stop_and_copy_as_the_model_does():
    memory = 4 * 1024**3
    plan = plan_precopy(memory, 125 * MB, 100 * MB)
    [first] = passes(samples := [Sample(0, 1, 125, 100, memory)])

    final_bytes, final_s = project(samples, first)

    assert final_bytes == pytest.approx(plan.final_bytes)
    assert final_s == pytest.approx(plan.final_bytes / (125 * MB))
    assert judge(samples).final_bytes == pytest.approx(plan.final_bytes)


def test_it_projects_nothing_without_the_memory_left_or_after_the_pass_cap():
    [first] = passes(plain := [Sample(0, 1, 125, 100)])
    [stop] = passes(late := [Sample(0, 11, 125, 100, 10 * MB)])

    assert project(plain, first) is None
    assert project(late, stop) is None
    assert judge(plain).final_bytes is None


def test_a_copy_that_reached_the_pass_cap_converged_slowly():
    # lambda 0.8 for ten passes, then the stop-and-copy (pass 11): the passes shrank, but too little.
    samples = run(*[(125, 100)] * 11)

    verdict = judge(samples)

    assert (verdict.status, verdict.final_bytes) == (SLOW, None)
    assert judge(run(*[(125, 100)] * 10)).status == CONVERGING  # without the memory left, the cap tells
