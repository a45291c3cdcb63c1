"""A host's migration slots in use over a window, as a step series (migrations_ui.live.slot_history)."""

import pytest

from migrations_ui.live.slot_history import Held, Step, peak, steps

LIVE = dict(live=1, storage=0)
VSM = dict(live=1, storage=1)
STORE = dict(live=0, storage=1)


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        # Nothing ran: flat at zero from the window's start to its end.
        ([], [(-3600, 0, 0), (0, 0, 0)]),
        # One live move in the middle of the hour.
        ([Held(-1800, -1200, **LIVE)], [(-3600, 0, 0), (-1800, 1, 0), (-1200, 0, 0), (0, 0, 0)]),
        # Began before the window: counted from its start; still running: counted to its end.
        ([Held(-7200, None, **VSM)], [(-3600, 1, 1), (0, 1, 1)]),
        # Ended before the window, or right at its start: not counted at all.
        ([Held(-9000, -4000, **LIVE), Held(-5000, -3600, **LIVE)], [(-3600, 0, 0), (0, 0, 0)]),
        # Overlapping moves add up; a storage move only takes a storage slot.
        (
            [Held(-3000, -1000, **LIVE), Held(-2000, None, **LIVE), Held(-1500, -500, **STORE)],
            [
                (-3600, 0, 0),
                (-3000, 1, 0),
                (-2000, 2, 0),
                (-1500, 2, 1),
                (-1000, 1, 1),
                (-500, 1, 0),
                (0, 1, 0),
            ],
        ),
        # One move ends as the next begins: no dip to draw.
        (
            [Held(-3000, -2000, **LIVE), Held(-2000, -1000, **LIVE)],
            [(-3600, 0, 0), (-3000, 1, 0), (-1000, 0, 0), (0, 0, 0)],
        ),
        # Two moves admitted at the same moment: one step of two.
        ([Held(-600, None, **LIVE), Held(-600, None, **LIVE)], [(-3600, 0, 0), (-600, 2, 0), (0, 2, 0)]),
    ],
)
def test_it_steps_at_every_change_inside_the_window(held, expected):
    assert [(s.t, s.live, s.storage) for s in steps(held, -3600, 0)] == expected


def test_a_job_admitted_after_the_window_or_with_no_length_does_not_count():
    held = [Held(10, None, **LIVE), Held(-100, -100, **LIVE)]

    assert steps(held, -3600, 0) == [Step(-3600, 0, 0), Step(0, 0, 0)]


def test_it_refuses_a_window_that_ends_before_it_starts():
    with pytest.raises(ValueError):
        steps([], 0, -3600)


def test_its_peak_is_the_most_of_each_kind_at_any_time():
    series = steps([Held(-3000, -1000, **VSM), Held(-2000, None, **LIVE), Held(-500, None, **STORE)], -3600, 0)

    assert peak(series) == (2, 1)
    assert peak([]) == (0, 0)
