"""The default thread count (tinyrt/threads.py WidthChooser): the faster width wins, whatever the rhythm of
the caller's runs, and one thread wins when another process keeps a core busy.

Each case replays a caller's runs against a made-up clock: the seconds a run takes at each width, just
after a pause (``cold``: a benchmark that alternates runtimes, a camera loop waiting for a frame) or
right after another run (``warm``)."""
import pytest

from tinyrt.threads import WidthChooser


def replay(times, rhythm, runs=300):
    """The widths a chooser (two cores) gives ``runs`` runs whose conditions repeat as ``rhythm`` ("c"
    cold, "w" warm), timed by ``times[width][condition]``, and the seconds of the last 200 runs."""
    chooser = WidthChooser(2)
    widths, spent = [], 0.0
    for i in range(runs):
        width = chooser.pick()
        seconds = times[width][rhythm[i % len(rhythm)]]
        chooser.record(width, seconds)
        widths.append(width)
        spent += seconds if i >= runs - 200 else 0.0
    return widths, spent


def fixed(times, rhythm, width, runs=300):
    """The seconds of the same last 200 runs all at ``width``."""
    return sum(times[width][rhythm[i % len(rhythm)]] for i in range(runs - 200, runs))


# two threads slower than one just after a pause, faster otherwise, and faster on the mix of both
WAKES_SLOWLY = {2: {"c": 8.0, "w": 3.9}, 1: {"c": 7.0, "w": 6.7}}
# another process keeps a core busy: two threads always slower
BUSY = {2: {"c": 9.0, "w": 8.7}, 1: {"c": 7.0, "w": 6.7}}


@pytest.mark.parametrize("rhythm", ["cw", "wc", "ccw", "cww", "w", "c", "cwwcw"])
def test_the_default_costs_at_most_a_few_percent_over_the_better_width_whatever_the_rhythm(rhythm):
    widths, spent = replay(WAKES_SLOWLY, rhythm)
    best = min(fixed(WAKES_SLOWLY, rhythm, w) for w in (1, 2))
    assert spent <= 1.05 * best, (rhythm, widths[-40:])


@pytest.mark.parametrize("rhythm", ["cw", "wc"])
def test_two_threads_win_where_they_are_faster_on_the_mix_though_slower_after_a_pause(rhythm):
    widths, _ = replay(WAKES_SLOWLY, rhythm)
    assert widths[-100:].count(2) >= 95, widths[-40:]


@pytest.mark.parametrize("rhythm", ["cw", "wc", "w", "c"])
def test_one_thread_wins_when_a_core_is_busy(rhythm):
    widths, _ = replay(BUSY, rhythm)
    assert widths[-100:].count(1) >= 95


def test_both_widths_are_tried_four_times_each_in_thue_morse_order_after_the_warm_up():
    chooser = WidthChooser(2)
    widths = []
    for _ in range(WidthChooser.SKIP + 8):
        width = chooser.pick()
        chooser.record(width, 1.0)
        widths.append(width)
    assert widths[:WidthChooser.SKIP] == [2] * WidthChooser.SKIP
    assert widths[WidthChooser.SKIP:] == [2, 1, 1, 2, 1, 2, 2, 1]
