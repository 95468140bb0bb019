"""The one progress mechanism (videotag.progress): a bar on a terminal, lines every N
seconds otherwise, silent; rate, total and time left; as training and extraction use it."""

import io
import itertools

import numpy as np
import pytest

from videotag.extraction.pipeline import extraction_progress
from videotag.progress import Progress
from videotag.training.logs import EpochProgress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


def clock_of(*times):
    values = iter(times)
    return lambda: next(values)


def test_auto_mode_draws_a_bar_on_a_terminal_and_lines_elsewhere():
    assert Progress("x", stream=Terminal()).mode == "bar"
    assert Progress("x", stream=io.StringIO()).mode == "lines"
    assert Progress("x", stream=Terminal(), every=0).mode == "silent"
    assert Progress("x", stream=io.StringIO(), every=-1, mode="bar").mode == "silent"
    with pytest.raises(ValueError, match="progress mode must be one of auto, bar, lines"):
        Progress("x", mode="fancy")


def test_bar_redraws_one_line_in_place_with_total_and_time_left():
    stream = Terminal()
    # start at 0 s; updates at 1, 1.05 (too soon to redraw), 2 and 4 s (the total); close at 4 s
    progress = Progress("copied", total=4, stream=stream, clock=clock_of(0.0, 1.0, 1.05, 2.0, 4.0, 4.0))
    progress.start()
    for _ in range(4):
        progress.add()
    progress.close()
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # one line, ended at close
    frames = text[:-1].split("\r\033[K")[1:]
    assert frames == [
        "  copied [######..................] 1/4 videos (1/s, 3 s left)",
        "  copied [##################......] 3/4 videos (2/s, 1 s left)",  # 3 / 2 s
        "  copied [########################] 4/4 videos (1/s, 0 s left)",
        "  copied [########################] 4/4 videos (1/s, 0 s left)",  # at close
    ]


def test_lines_every_n_seconds_with_rate():
    stream = io.StringIO()
    progress = Progress("searched", every=5, stream=stream,
                        clock=clock_of(10.0, 12.0, 15.0, 16.0, 21.0))
    assert progress.rate() == 0.0  # the clock has not started
    for n in (10, 20, 30, 40, 50):  # the clock starts with the first videos, at 10 s
        progress.add(n)
    progress.close()  # nothing more in lines mode
    assert stream.getvalue().splitlines() == ["  searched 60 videos (12/s)",   # 60 / 5 s
                                             "  searched 150 videos (14/s)"]  # 150 / 11 s
    assert progress.count == 150
    assert progress.rate(now=40.0) == 150 / 30


def test_silent_progress_counts_but_writes_nothing_but_messages():
    stream = Terminal()
    progress = Progress("predicted", every=0, stream=stream, clock=itertools.count(0.0, 100.0).__next__)
    for _ in range(3):
        progress.add(2)
    progress.close()
    assert stream.getvalue() == "" and progress.count == 6
    progress.message("error: a.mp4 is not a video")
    assert stream.getvalue() == "error: a.mp4 is not a video\n"


def test_message_clears_the_bar_and_the_bar_comes_back():
    stream = Terminal()
    progress = Progress("x", total=2, stream=stream, clock=clock_of(0.0, 1.0, 2.0, 2.0))
    progress.start()
    progress.add()
    progress.message("error: bad")
    progress.add()
    assert stream.getvalue().split("\r\033[K")[2] == "error: bad\n"
    assert stream.getvalue().endswith("2/2 videos (1/s, 0 s left)")


def test_items_done_before_are_counted_but_not_in_the_rate():
    stream = io.StringIO()
    progress = Progress("trained", unit="steps", total=100, every=1, done=40, scale=8,
                        stream=stream, clock=clock_of(0.0, 10.0),
                        template="{count}/{total} {unit}, {rate:.0f} examples/s, {eta:.0f} s left")
    progress.start()
    progress.update(60)  # 20 steps in 10 s: 2 steps/s, 16 examples/s, 40 steps left
    assert stream.getvalue() == "60/100 steps, 16 examples/s, 20 s left\n"


def test_training_progress_bar_and_lines():
    stream = Terminal()
    clock = itertools.count(0.0, 0.5)
    progress = EpochProgress(True, batch_size=4, epochs=3, fgm=True, stream=stream,
                             clock=lambda: next(clock))
    progress.epoch_begin(1, steps=2)
    progress.step(1, {"loss": 0.5, "clean": 0.25, "adversarial": 0.75})
    progress.step(2, {"loss": 0.375, "clean": 0.25, "adversarial": 0.5})
    progress.epoch_end()
    last = stream.getvalue().rstrip("\n").split("\r\033[K")[-1]
    # 2 steps of 4 examples in 1.5 s (start at 0, close at 1.5 s)
    assert last == ("epoch 2/3 [########################] step 2/2, loss 0.3750, clean 0.2500, "
                    "adversarial 0.5000, 5 examples/s, 0 s left")
    quiet = Terminal()
    progress = EpochProgress(False, batch_size=4, epochs=3, stream=quiet)
    progress.epoch_begin(0, steps=None)
    progress.step(1, {"loss": 1.0})
    progress.epoch_end()
    assert quiet.getvalue() == ""


def test_extraction_progress_keeps_its_words():
    stream = io.StringIO()
    progress = extraction_progress(10, stream=stream)
    progress.every = 0.0  # a line at each video
    progress.update(3, failed=1)
    line = stream.getvalue()
    assert line.startswith("extracting [#######.................] 3/10 videos, 1 failed, ")
    assert line.endswith(" s left\n") and " videos/s, " in line
    silent = io.StringIO()
    bar = extraction_progress(2, enabled=False, stream=silent)
    bar.update(2, failed=0)
    bar.close()
    assert silent.getvalue() == ""


def test_the_commands_progress_counts_videos_and_zero_seconds_silences_it(capsys):
    # the interval was once passed where the unit goes: "predicted 3 10.0", never silent
    from videotag.inference.writers import write_predictions
    from videotag.retrieval.similar import similar_videos

    rows = [(f"v{i}", [(1, "a", 0.9)]) for i in range(3)]
    write_predictions(rows, io.StringIO(), "csv", progress_seconds=1e-9)  # a line per video
    err = capsys.readouterr().err
    assert "predicted 3 videos" in err and "1e-09" not in err
    write_predictions(rows, io.StringIO(), "csv", progress_seconds=0)
    assert capsys.readouterr().err == ""
    vectors = np.eye(3, dtype=np.float32)
    similar_videos(["a", "b", "c"], vectors, None, 1, 2, verbose=True, progress_seconds=0)
    assert "searched" not in capsys.readouterr().err
    with pytest.raises(TypeError):
        Progress("x", "videos")  # the unit is keyword-only
