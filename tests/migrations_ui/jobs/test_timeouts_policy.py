"""The stall and timeout policy on its own (pure): from status reads and limits, whether and why to act."""

from migrations_ui.jobs.timeouts import (
    COMPLETION,
    DEFAULT_PER_GIB_S,
    DEFAULT_STALL_S,
    GIB,
    STALL,
    Breach,
    Limits,
    Reading,
    Watch,
    describe,
)


def reads(watch, *readings):
    return [watch.observe(r) for r in readings]


def test_the_defaults_are_kubevirts_progress_timeout_and_the_completion_timeout_of_nova_and_kubevirt():
    assert (DEFAULT_STALL_S, DEFAULT_PER_GIB_S) == (150, 800)
    assert Limits().completion_s(8 * GIB) == 6400
    # The floor: a small VM gets the limit of a 2 GiB one.
    assert Limits().completion_s(512 * 1024**2) == 1600
    assert Limits(per_gib_s=0).completion_s(8 * GIB) is None


def test_bytes_that_keep_moving_are_progress_even_when_the_percent_stands_still():
    watch = Watch(Limits(stall_s=10, per_gib_s=None), 4 * GIB)
    out = reads(watch, *(Reading(t=t, percent=40, bytes_sent=100 * t, bytes_remaining=1) for t in range(0, 60, 5)))
    assert out == [None] * 12


def test_no_progress_for_the_stall_limit_acts_once_with_the_figures():
    watch = Watch(Limits(stall_s=10, per_gib_s=None), 4 * GIB)
    moving = Reading(t=3, percent=20, bytes_sent=1000, bytes_remaining=3 * GIB, pass_number=2)
    stuck = dict(percent=20, bytes_sent=1000, bytes_remaining=3 * GIB, pass_number=2, dirty_rate_mbps=40)
    out = reads(watch, Reading(t=1, bytes_sent=10, bytes_remaining=1), moving, Reading(t=12.9, **stuck))
    assert out == [None, None, None]

    breach = watch.observe(Reading(t=13, **stuck))

    assert breach is not None and breach.rule == STALL
    assert (breach.stalled_s, breach.limit_s, breach.pass_number, breach.elapsed_s) == (10, 10, 2, 13)
    assert watch.observe(Reading(t=30, **stuck)) is None  # it acted: the runner follows the cancel
    text = describe(breach)
    assert "no progress for 10 s (limit 10 s)" in text and "pass 2" in text and "3.0 GiB left" in text
    assert "dirty rate 40 MB/s, transfer rate 0 MB/s" in text


def test_a_host_that_reports_only_its_percent_is_judged_by_its_percent():
    watch = Watch(Limits(stall_s=10, per_gib_s=None), GIB)
    assert reads(watch, Reading(t=0, percent=5), Reading(t=8, percent=6), Reading(t=17, percent=6)) == [None] * 3
    assert watch.observe(Reading(t=18, percent=6)).rule == STALL


def test_the_stall_clock_starts_when_following_starts():
    """A recovered job: the new worker has seen no progress yet, and does not count the time before it."""
    watch = Watch(Limits(stall_s=10, per_gib_s=None), GIB, started_t=100)
    assert watch.observe(Reading(t=105, percent=50)) is None
    assert watch.observe(Reading(t=114, percent=50)) is None
    assert watch.observe(Reading(t=115, percent=50)).rule == STALL


def test_a_precopy_that_never_converges_runs_into_the_completion_limit():
    # 4 GiB at 2 s/GiB: 8 s. The guest dirties more than the link carries: bytes move, the passes go on.
    watch = Watch(Limits(stall_s=150, per_gib_s=2), 4 * GIB)
    samples = [
        Reading(t=t, percent=60, bytes_sent=GIB * t, bytes_remaining=2 * GIB, pass_number=1 + t // 2) for t in range(8)
    ]
    assert reads(watch, *samples) == [None] * 8
    late = Reading(
        t=8.2,
        percent=61,
        bytes_sent=9 * GIB,
        bytes_remaining=2 * GIB,
        pass_number=5,
        dirty_rate_mbps=1300,
        transfer_rate_mbps=1100,
    )

    breach = watch.observe(late)

    assert breach.rule == COMPLETION and breach.limit_s == 8 and breach.data_gib == 4
    text = describe(breach)
    assert "ran 8 s, over its limit of 8 s (2 s per GiB of 4.0 GiB)" in text
    assert "pass 5; dirty rate 1300 MB/s, transfer rate 1100 MB/s; 2.0 GiB left" in text


def test_a_rule_set_to_zero_or_none_is_off():
    watch = Watch(Limits(stall_s=0, per_gib_s=None), GIB)
    assert reads(watch, Reading(t=0), Reading(t=10_000), Reading(t=10**7)) == [None] * 3


def test_a_stall_is_named_before_the_completion_limit_when_both_are_broken():
    watch = Watch(Limits(stall_s=5, per_gib_s=1), GIB)  # 2 s (the floor)
    assert watch.observe(Reading(t=0, percent=1)) is None
    assert watch.observe(Reading(t=6, percent=1)).rule == STALL


def test_a_breach_survives_its_event_for_a_recovered_job():
    watch = Watch(Limits(stall_s=1, per_gib_s=None), GIB)
    watch.observe(Reading(t=0, percent=3))
    breach = watch.observe(Reading(t=2, percent=3, pass_number=1))
    assert Breach.from_data(breach.as_data()) == breach
    assert Breach.from_data({"rule": STALL}) is None


def test_the_memory_figures_are_named_where_the_host_reports_them():
    """With compression the wire carries less than the memory copied: the memory rate is what competes
    with the dirty rate, and the memory the destination lacks is what is left (convergence.py reads them so)."""
    watch = Watch(Limits(stall_s=1, per_gib_s=None), GIB)
    watch.observe(Reading(t=0, percent=3))
    stuck = Reading(
        t=1,
        percent=3,
        bytes_remaining=9 * GIB,
        transfer_rate_mbps=300,
        memory_rate_mbps=600,
        memory_remaining_bytes=GIB // 2,
    )
    breach = watch.observe(stuck)
    assert (breach.transfer_rate_mbps, breach.bytes_remaining) == (600, GIB // 2)
    assert "512.0 MiB left" in describe(breach)
