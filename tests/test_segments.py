"""Segment records and the segment metric: the reader on hand-written segment records
(good, and each kind of bad, named by file, record and key), rated segments and
windows equal to NumPy slices, the loss on rated pairs only, the segment label map
file, and the 2019 metric on hand-worked cases and against a slow, obvious
implementation of its definition on random ones, within its memory bound."""

import numpy as np
import pytest
import tensorflow as tf

import videotag.evaluation.segments as segment_metric
from tests.helpers import frame_record, tiny_config, with_segments, write_file
from videotag.data import PARSE_REASONS, RecordParser, SkipCounter, data_errors, make_dataset
from videotag.data.segments import load_segment_classes, segment_windows
from videotag.errors import DataError
from videotag.evaluation.segments import SegmentRanking, submission_ap
from videotag.training.losses import task_losses

RNG = np.random.default_rng(5)


def _frames(n, size):
    return RNG.integers(0, 256, (n, size), dtype=np.uint8)


def _config(**overrides):
    return tiny_config(**{"data.segment_labels": True, "data.max_frames": 20, **overrides})


def _video(vid, n, **segments):
    """(a record of n random frames with the segment ratings `segments` (labels,
    starts, scores), its rgb, its audio)."""
    rgb, audio = _frames(n, 1024), _frames(n, 128)
    record = frame_record(vid, (1,), rgb=rgb, audio=audio)
    return with_segments(record, **segments), rgb, audio


BAD = [  # (ratings of a 12-frame video, message)
    (dict(labels=(1, 2), starts=(0,), scores=(1.0, 0.0)),
     "context keys segment_labels, segment_start_times and segment_scores hold 2, 1 and 2 "
     "values (one per rated segment and class: they must be equal)"),
    (dict(labels=(1, 12, -1), starts=(0, 5, 5), scores=(1.0, 1.0, 0.0)),
     "context key segment_labels has [12 -1] outside [0, 10)"),
    (dict(labels=(1,), starts=(3,), scores=(1.0,)),
     "context key segment_start_times has [3] that are not multiples of data.segment_size (5)"),
    (dict(labels=(1, 1), starts=(0, 15), scores=(1.0, 0.0)),
     "context key segment_start_times has [15] past the video's end (12 frames)"),
    (dict(labels=(1,), starts=(0,), scores=(0.5,)),
     "context key segment_scores has [0.5] other than 0 and 1"),
    (dict(labels=(1, 1), starts=(5, 5), scores=(1.0, 0.0)),
     "context keys segment_start_times and segment_labels rate a (start time, class) pair "
     "twice"),
]


def test_each_bad_kind_and_its_message():
    cfg = _config()
    good = _video(b"ok", 12, labels=(1, 2), starts=(0, 10), scores=(1.0, 0.0))[0]
    records = [good] + [_video(b"bad", 12, **ratings)[0] for ratings, _ in BAD]
    names = [f"record {i}" for i in range(len(records))]
    parsed = RecordParser(cfg.data).parse(tf.constant(records), tf.constant(names))
    errors = [e.decode() for e in parsed.errors.numpy()]
    assert errors == [""] + [f"record {i} (id bad): {m}" for i, (_, m) in enumerate(BAD, 1)]
    bad = parsed.bad.numpy()
    column = PARSE_REASONS.index("bad_segments")
    assert not bad[0].any() and (bad[1:, column] & (bad[1:].sum(1) == 1)).all()


def test_a_bad_record_stops_every_segment_pipeline_or_is_skipped(tmp_path):
    good = _video(b"ok", 12, labels=(1,), starts=(0,), scores=(1.0,))[0]
    bad = _video(b"bad", 12, **BAD[3][0])[0]
    path = write_file(tmp_path / "seg.tfrecord", [good, bad])
    cfg = _config()
    for segments in ("rated", "videos"):
        with pytest.raises(DataError) as info, data_errors([path]):
            list(make_dataset(cfg.data, path, 4, training=False, segments=segments))
        assert str(info.value).startswith(f"bad record: {path}: record 1 (id bad): {BAD[3][1]}")
    skips = SkipCounter()
    skip_cfg = _config(**{"data.on_bad_record": "skip"})
    kept = list(make_dataset(skip_cfg.data, path, 4, training=False, skip_counter=skips,
                             segments="rated"))
    assert [b"ok"] == [v for b in kept for v in b["video_id"].numpy().tolist()]
    assert skips.counts() == {"bad_segments": 1}


def test_start_times_past_max_frames_and_segment_classes(tmp_path):
    classes = tmp_path / "segment_label_ids.csv"
    classes.write_text("Index\n1\n3\n")
    cfg = _config(**{"data.segment_label_file": str(classes)})
    records = [_video(b"long", 30, starts=(20, 25), labels=(1, 1), scores=(1.0, 0.0))[0],
               _video(b"other", 12, starts=(0,), labels=(2,), scores=(1.0,))[0],
               _video(b"fine", 12, starts=(0, 10), labels=(1, 3), scores=(1.0, 0.0))[0]]
    parsed = RecordParser(cfg.data).parse(tf.constant(records), tf.constant(["a", "b", "c"]))
    errors = [e.decode() for e in parsed.errors.numpy()]
    assert errors[0] == ("a (id long): context key segment_start_times has [20 25] at or past "
                         "data.max_frames (20): raise it to read them")
    assert errors[1] == ("b (id other): context key segment_labels has [2] that are not "
                         "segment classes (data.segment_label_file)")
    assert errors[2] == ""
    # records without ratings are good; without data.segment_labels nothing is read
    plain = frame_record(b"plain", (1,))
    assert RecordParser(cfg.data).parse(tf.constant([plain]), tf.constant(["d"])).errors \
        .numpy().tolist() == [b""]
    off = RecordParser(tiny_config().data).parse(tf.constant(records), tf.constant(["a"] * 3))
    assert not off.bad.numpy().any() and "segment_labels" not in off.features


def test_rated_segments_are_the_frames_and_ratings_of_the_records(tmp_path):
    cfg = _config()
    first, rgb1, audio1 = _video(b"a", 12, starts=(10, 0, 0), labels=(4, 1, 2),
                                 scores=(1.0, 1.0, 0.0))
    second, rgb2, audio2 = _video(b"b", 7, starts=(5,), labels=(9,), scores=(0.0,))
    path = write_file(tmp_path / "r.tfrecord", [first, frame_record(b"none", (1,)), second])
    (batch,) = list(make_dataset(cfg.data, path, 8, training=False))  # training=False: videos
    assert batch["video_id"].numpy().tolist() == [b"a", b"none", b"b"]
    (batch,) = list(make_dataset(cfg.data, path, 8, training=False, segments="rated"))
    assert batch["video_id"].numpy().tolist() == [b"a", b"a", b"b"]
    assert batch["segment_start_time"].numpy().tolist() == [10, 0, 5]
    assert batch["num_frames"].numpy().tolist() == [2, 5, 2]  # cut at the videos' ends
    for name, (one, two) in (("rgb", (rgb1, rgb2)), ("audio", (audio1, audio2))):
        want = np.zeros((3, 5, one.shape[1]), np.uint8)
        want[0, :2], want[1], want[2, :2] = one[10:12], one[0:5], two[5:7]
        np.testing.assert_array_equal(batch[name].numpy(), want)
    labels, weights = np.zeros((3, 10), np.float32), np.zeros((3, 10), np.float32)
    labels[0, 4] = labels[1, 1] = 1
    weights[0, 4] = weights[1, 1] = weights[1, 2] = weights[2, 9] = 1
    np.testing.assert_array_equal(batch["labels"].numpy(), labels)
    np.testing.assert_array_equal(batch["label_weights"].numpy(), weights)


@pytest.mark.parametrize("context", [0, 2])
def test_windows_cover_every_segment(context):
    frames = RNG.integers(0, 256, (3, 13, 4), dtype=np.uint8)
    num_frames = np.array([13, 4, 10], np.int32)
    windows, counts, video, start = (
        segment_windows({"x": tf.constant(frames)}, tf.constant(num_frames), 5, context))
    want_video, want_start, want_windows, want_counts = [], [], [], []
    for b, n in enumerate(num_frames):
        for s in range(0, n, 5):
            lo, hi = max(s - context, 0), min(s + 5 + context, n)
            window = np.zeros((5 + 2 * context, 4), np.uint8)
            window[:hi - lo] = frames[b, lo:hi]
            want_video.append(b), want_start.append(s), want_windows.append(window)
            want_counts.append(hi - lo)
    assert video.numpy().tolist() == want_video and start.numpy().tolist() == want_start
    assert counts.numpy().tolist() == want_counts
    np.testing.assert_array_equal(windows["x"].numpy(), np.stack(want_windows))


def test_the_loss_counts_rated_pairs_only():
    targets = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], np.float32)
    weights = np.array([[1, 1, 0, 0], [0, 0, 1, 0]], np.float32)
    probs = np.array([[0.8, 0.3, 0.9, 0.1], [0.5, 0.5, 0.4, 0.99]], np.float32)
    loss = task_losses({"tags": probs}, {"tags": targets, "tag_weights": weights}, ["tags"])
    want = [-np.log(0.8) - np.log(0.7), -np.log(0.4)]
    np.testing.assert_allclose(loss["tags"].numpy(), want, rtol=1e-5)
    other = probs.copy()
    other[weights == 0] = RNG.random(int((weights == 0).sum()))  # unrated pairs: no effect
    again = task_losses({"tags": other}, {"tags": targets, "tag_weights": weights}, ["tags"])
    np.testing.assert_allclose(again["tags"].numpy(), want, rtol=1e-5)


def test_the_segment_label_map_file(tmp_path):
    path = tmp_path / "segment_label_ids.csv"
    path.write_text("Index\n3\n7\n1\n")  # the 2019 release's format
    assert load_segment_classes(str(path), 10).tolist() == [1, 3, 7]
    path.write_text("Index,Name\n2,Car\n")
    assert load_segment_classes(str(path), 10).tolist() == [2]
    for text, message in (("Index\n3\n12\n", "line 3: class id 12 is outside [0, 10)"),
                          ("Index\n3\nfoo\n", "line 3: 'foo' is not a class id"),
                          ("Index\n3\n3\n", "class ids listed twice: [3]"),
                          ("Index\n", "no segment class ids")):
        path.write_text(text)
        with pytest.raises(DataError, match=rf"{path}: {message}".replace("[", r"\[")
                           .replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
            load_segment_classes(str(path), 10)
    with pytest.raises(DataError, match="segment label file not found"):
        load_segment_classes(str(tmp_path / "missing.csv"), 10)


# --- the metric ---------------------------------------------------------------------


def slow_segment_map(scores, ids, starts, ratings, top_n):
    """The definition, written plainly: per class, every segment sorted by (score
    descending, video id, start), cut at top_n, reduced to rated pairs; AP = sum over
    positives of positives so far / rank among rated, over all positives of the class;
    the mean over classes with a positive."""
    aps = []
    for k in range(scores.shape[1]):
        positives = int((ratings[:, k] == 1).sum())
        if not positives:
            continue
        order = sorted(range(len(ids)), key=lambda i: (-scores[i, k], ids[i], starts[i]))
        found = ranked = 0
        total = 0.0
        for i in order[:top_n]:
            if ratings[i, k] >= 0:
                ranked += 1
                if ratings[i, k] == 1:
                    found += 1
                    total += found / ranked
        aps.append(total / positives)
    return float(np.mean(aps)) if aps else 0.0


def test_hand_worked_case():
    ranking = SegmentRanking(3, top_n=4)
    # class 0: +0.9, unrated 0.8, -0.7, +0.6 | cut here | +0.5, +0.4: 4 positives;
    # ranks among rated pairs 1, 2, 3: AP = (1/1 + 2/3) / 4 = 5/12
    ranking.add_candidates([0, 0, 0], [0.9, 0.8, 0.7], [b"v1", b"v2", b"v3"], [0, 0, 0],
                           [1, -1, 0], segments=3, videos=3)
    ranking.add_candidates([0, 0, 0], [0.6, 0.5, 0.4], [b"v4", b"v5", b"v6"], [0, 5, 10],
                           [1, 1, 1], segments=3, videos=3)
    # class 1: a tie at 0.3, the smaller video id first: - then +: AP = (1/2) / 1
    ranking.add_candidates([1, 1], [0.3, 0.3], [b"b", b"a"], [0, 5], [1, 0])
    # class 2: only a negative, left out of the mean
    ranking.add_candidates([2], [0.9], [b"a"], [0], [0])
    ap, positives = ranking.per_class_ap()
    np.testing.assert_allclose(ap, [5 / 12, 1 / 2, 0.0])
    assert positives.tolist() == [4, 1, 0]
    assert ranking.mean_ap() == pytest.approx((5 / 12 + 1 / 2) / 2, abs=1e-15)
    assert list(ranking.submission_rows()) == [
        (0, ["v1:0", "v2:0", "v3:0", "v4:0"]), (1, ["a:5", "b:0"]), (2, ["a:0"])]
    result = ranking.result()
    assert (result["num_rated_pairs"], result["num_positive_pairs"],
            result["num_classes_with_positives"]) == (8, 5, 2)


def test_a_class_with_positives_but_no_ranked_segment_counts_zero():
    ranking = SegmentRanking(2, top_n=10)
    ranking.add_candidates([0], [0.5], [b"v"], [0], [1])
    ranking.count_ratings([1], [1])  # rated positive for class 1, never ranked
    assert ranking.mean_ap() == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_equal_the_definition(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 300)), int(rng.integers(1, 7))
    values = rng.random((n, c)).astype(np.float32)
    if seed % 2:  # many ties
        values = rng.choice(np.float32([0.1, 0.5, 0.9]), (n, c))
    keys = rng.permutation(n * 3)[:n]
    ids = np.array([f"v{k // 4:03d}".encode() for k in keys])
    starts = (keys % 4) * 5
    ratings = rng.choice(np.int8([-1, -1, -1, 0, 1]), (n, c))
    top_n = int(rng.integers(1, 40))
    want = slow_segment_map(values, ids, starts, ratings, top_n)
    monkeypatch.setattr(segment_metric, "_MERGE_AT", int(rng.integers(1, 50)))
    ranking = SegmentRanking(c, top_n)
    order = rng.permutation(n)  # any order of the segments, any batches
    for part in np.array_split(order, int(rng.integers(1, 9))):
        ranking.add_scores(values[part], np.arange(c), ids[part], starts[part], ratings[part])
    assert ranking.mean_ap() == pytest.approx(want, abs=1e-12)
    rated = {(f"{ids[i].decode()}:{starts[i]}", k): float(ratings[i, k])
             for i in range(n) for k in range(c) if ratings[i, k] >= 0}
    ap, positives = submission_ap(ranking.submission_rows(), rated, c, top_n)
    has = positives > 0
    assert (float(ap[has].mean()) if has.any() else 0.0) == pytest.approx(want, abs=1e-12)


def test_memory_is_bounded_by_the_top_n_per_class(monkeypatch):
    monkeypatch.setattr(segment_metric, "_MERGE_AT", 2000)
    rng = np.random.default_rng(0)
    ranking = SegmentRanking(10, top_n=50)
    most = 0
    for step in range(60):  # 60,000 segments x 10 classes, 1,000 a batch
        scores = rng.random((1000, 10)).astype(np.float32)
        ids = np.array([f"{step:03d}{i:04d}".encode() for i in range(1000)])
        ratings = rng.choice(np.int8([-1, 0, 1]), (1000, 10))
        ranking.add_scores(scores, np.arange(10), ids, np.zeros(1000, np.int32), ratings)
        most = max(most, ranking.memory_bytes())
    per_entry = 4 + 4 + 7 + 4 + 1  # class, score, id, start, rating
    # the kept top 50 of 10 classes, at most a merge's worth of candidates, the counters
    assert most <= (50 * 10 + 2000 + 10 * 1000) * per_entry + 10 * 20
    assert ranking.num_segments == 60_000


def test_the_demo_rates_segments_from_what_each_frame_shows():
    from videotag.data import demo_segments

    # 16 frames: segments at 0, 5, 10, 15; class 3 shows in frames 2 and 15, class 5
    # in 5-9; class 0 is not a segment class (it is not rated)
    content = np.full(16, -1, np.int16)
    content[[2, 15]], content[5:10] = 3, 5
    labels, starts, scores = demo_segments.segment_ratings(
        content, [3, 5, 0], {3, 5, 7}, np.random.default_rng(0))
    assert list(zip(labels, starts, scores)) == [
        (3, 0, 1.0), (3, 5, 0.0), (3, 10, 0.0), (3, 15, 1.0),
        (5, 0, 0.0), (5, 5, 1.0), (5, 10, 0.0), (5, 15, 0.0)]
    # a long video: RATED_PER_LABEL distinct segments, in order, within MAX_FRAMES
    content = np.full(400, 7, np.int16)
    content[::2] = -1
    labels, starts, scores = demo_segments.segment_ratings(
        content, [7], {7}, np.random.default_rng(1))
    assert labels == [7] * demo_segments.RATED_PER_LABEL and scores == [1.0] * len(labels)
    assert starts == sorted(set(starts)) and max(starts) < demo_segments.MAX_FRAMES
    assert all(s % demo_segments.SEGMENT_SIZE == 0 for s in starts)
