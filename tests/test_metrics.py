"""Tests of videotag.evaluation.metrics: hand-worked cases, a slow reference, streaming."""

from fractions import Fraction

import numpy as np
import pytest

from videotag.evaluation import (
    StreamingEvaluator,
    average_precision_per_class,
    gap,
    hit_at_k,
    hit_at_one,
    mean_average_precision,
    perr,
)

# ---------------------------------------------------------------------------
# Slow reference, written straight from the definitions with Python loops.
# ---------------------------------------------------------------------------


def ref_top(row, k):
    """Class indices of the top k of one row: score descending, lower index first."""
    return sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]


def ref_ap(pairs, num_positives):
    """AP of (score, is_positive) pairs; each positive takes the precision at the
    end of its tie group."""
    if num_positives == 0:
        return 0.0
    pairs = sorted(pairs, key=lambda p: -p[0])
    total, i = 0.0, 0
    positives_so_far = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        group_positives = sum(1 for _, pos in pairs[i:j] if pos)
        positives_so_far += group_positives
        precision_at_end = positives_so_far / j
        for _ in range(group_positives):
            total += precision_at_end
        i = j
    return total / num_positives


def ref_gap(pred, lab, k):
    pairs = []
    for v in range(pred.shape[0]):
        for c in ref_top(pred[v], k):
            pairs.append((pred[v, c], bool(lab[v, c])))
    return ref_ap(pairs, int(np.count_nonzero(lab)))


def ref_class_ap(pred, lab, k):
    num_classes = pred.shape[1]
    pairs = [[] for _ in range(num_classes)]
    for v in range(pred.shape[0]):
        for c in ref_top(pred[v], k):
            pairs[c].append((pred[v, c], bool(lab[v, c])))
    positives = [int(np.count_nonzero(lab[:, c])) for c in range(num_classes)]
    return [ref_ap(pairs[c], positives[c]) for c in range(num_classes)], positives


def ref_map(pred, lab, k):
    ap, positives = ref_class_ap(pred, lab, k)
    with_pos = [a for a, p in zip(ap, positives) if p > 0]
    if not with_pos:
        return 0.0, 0.0
    return sum(with_pos) / len(with_pos), sum(ap) / len(ap)


def ref_hit(pred, lab, k):
    hits = sum(1 for v in range(pred.shape[0]) if any(lab[v, c] for c in ref_top(pred[v], k)))
    return hits / pred.shape[0]


def ref_perr(pred, lab):
    precisions = []
    for v in range(pred.shape[0]):
        n = int(np.count_nonzero(lab[v]))
        if n:
            precisions.append(sum(1 for c in ref_top(pred[v], n) if lab[v, c]) / n)
    return sum(precisions) / len(precisions) if precisions else 0.0


def assert_close(a, b):
    assert abs(float(a) - float(b)) <= 1e-12, (a, b)


# ---------------------------------------------------------------------------
# Hand-worked cases.
# ---------------------------------------------------------------------------


def test_gap_positive_outside_top_k_counts_in_denominator():
    # k = 2, 3 classes.
    # v0: scores .9 .5 .1, labels 1 0 1 -> top 2: (.9,+) (.5,-); class 2 is a
    #     positive outside the top 2 but still counts in P.
    # v1: scores .2 .8 .6, labels 0 1 0 -> top 2: (.8,+) (.6,-).
    # P = 3. Pool: .9+ .8+ .6- .5-; precision at the positives: 1/1, 2/2.
    # GAP = (1 + 1) / 3 = 2/3.
    pred = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.6]])
    lab = np.array([[1, 0, 1], [0, 1, 0]])
    assert gap(pred, lab, top_k=2) == pytest.approx(float(Fraction(2, 3)), abs=1e-15)
    # With k = 3 the positive .1 is reached at rank 6 of the pool: (1 + 1 + 3/6) / 3 = 5/6.
    assert gap(pred, lab, top_k=3) == pytest.approx(5 / 6, abs=1e-15)


# Four videos, k = 1, with a tie of 0.5 between v0 (positive) and v1 (negative).
#   v0: .5 .0 .05   labels 1 0 0   top 1: class 0 (.5, +)
#   v1: .5 .0 .05   labels 0 0 0   top 1: class 0 (.5, -)   (no labels)
#   v2: .2 .9 .05   labels 0 1 0   top 1: class 1 (.9, +)
#   v3: .1 .3 .05   labels 1 0 0   top 1: class 1 (.3, -)   (its positive is outside)
TIE_PRED = np.array(
    [[0.5, 0.0, 0.05], [0.5, 0.0, 0.05], [0.2, 0.9, 0.05], [0.1, 0.3, 0.05]]
)
TIE_LAB = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 0, 0]])


def test_gap_ties_across_videos_use_precision_at_group_end():
    # P = 3. Pool: .9+ | .5+ .5- | .3-
    # group .9: 1 new positive, precision 1/1
    # group .5: 1 new positive, precision at its end 2/3
    # GAP = (1 + 2/3) / 3 = 5/9, whichever of v0 / v1 comes first.
    expected = float(Fraction(5, 9))
    assert_close(gap(TIE_PRED, TIE_LAB, top_k=1), expected)
    for order in ([1, 0, 2, 3], [3, 2, 1, 0], [2, 1, 3, 0]):
        assert_close(gap(TIE_PRED[order], TIE_LAB[order], top_k=1), expected)


def test_map_with_classes_without_positives():
    # k = 1 on the tie case.
    # class 0: pairs from v0 (.5,+) and v1 (.5,-); P_0 = 2 (v0 and v3).
    #          one tie group, precision at its end 1/2 -> AP_0 = (1/2) / 2 = 1/4.
    # class 1: pairs v2 (.9,+), v3 (.3,-); P_1 = 1 -> AP_1 = 1.
    # class 2: no positives -> AP_2 = 0, left out of mAP.
    # mAP = (1/4 + 1) / 2 = 5/8; mean over all classes = (1/4 + 1 + 0) / 3 = 5/12.
    ap, positives = average_precision_per_class(TIE_PRED, TIE_LAB, top_k=1)
    np.testing.assert_allclose(ap, [0.25, 1.0, 0.0], rtol=0, atol=1e-15)
    assert positives.tolist() == [2, 1, 0]
    assert positives.dtype == np.int64 and ap.dtype == np.float64
    assert_close(mean_average_precision(TIE_PRED, TIE_LAB, top_k=1), 5 / 8)
    ev = StreamingEvaluator(num_classes=3, top_k=1)
    ev.add(TIE_PRED, TIE_LAB)
    result = ev.result()
    assert_close(result["map"], 5 / 8)
    assert_close(result["map_all_classes"], 5 / 12)
    assert result["num_videos"] == 4 and result["num_positives"] == 3


def test_map_without_any_positive_is_zero():
    pred = np.random.default_rng(0).random((5, 4))
    lab = np.zeros((5, 4), dtype=bool)
    assert mean_average_precision(pred, lab) == 0.0
    assert gap(pred, lab) == 0.0
    ev = StreamingEvaluator(4)
    ev.add(pred, lab)
    assert ev.result()["map_all_classes"] == 0.0
    assert ev.result()["perr"] == 0.0


def test_video_without_labels():
    # k = 1. v0: .9 .1 labels 1 0 -> (.9,+); v1: .95 .2 no labels -> (.95,-).
    # P = 1, pool .95- .9+ -> GAP = (1/2) / 1 = 1/2 (it would be 1 without v1).
    # Hit@1 = 1/2 (v1 counts in the denominator); PERR = 1 (v1 is excluded).
    pred = np.array([[0.9, 0.1], [0.95, 0.2]])
    lab = np.array([[1, 0], [0, 0]])
    assert_close(gap(pred, lab, top_k=1), 0.5)
    assert_close(gap(pred[:1], lab[:1], top_k=1), 1.0)
    assert_close(hit_at_one(pred, lab), 0.5)
    assert_close(perr(pred, lab), 1.0)


def test_fewer_classes_than_k():
    # 3 classes, k = 20 -> every class of every video is in the pool.
    # v0: .3 .6 .1 labels 1 0 0; v1: .2 .4 .5 labels 0 1 1. P = 3.
    # Pool: .6- .5+ .4+ .3+ .2- .1-; precisions at positives 1/2, 2/3, 3/4.
    # GAP = (1/2 + 2/3 + 3/4) / 3 = (23/12) / 3 = 23/36.
    pred = np.array([[0.3, 0.6, 0.1], [0.2, 0.4, 0.5]])
    lab = np.array([[1, 0, 0], [0, 1, 1]])
    assert_close(gap(pred, lab, top_k=20), float(Fraction(23, 36)))
    # Per class, all videos are in the pools:
    # class 0: .3+ .2- -> 1/1 / 1 = 1; class 1: .6- .4+ -> (1/2) / 1;
    # class 2: .5+ .1- -> 1. mAP = (1 + 1/2 + 1) / 3 = 5/6.
    assert_close(mean_average_precision(pred, lab, top_k=20), 5 / 6)
    assert_close(hit_at_k(pred, lab, 20), 1.0)


def test_hit_at_one_tie_at_the_top_takes_lower_class():
    # v0: .8 .8 .1 labels 0 1 0 -> top 1 is class 0 (lower index): miss.
    # v1: .4 .4 .0 labels 1 0 0 -> top 1 is class 0: hit.
    # v2: no labels: miss.  Hit@1 = 1/3.  Hit@2: v0 hit, v1 hit -> 2/3.
    pred = np.array([[0.8, 0.8, 0.1], [0.4, 0.4, 0.0], [0.3, 0.2, 0.1]])
    lab = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert_close(hit_at_one(pred, lab), 1 / 3)
    assert_close(hit_at_k(pred, lab, 2), 2 / 3)
    ev = StreamingEvaluator(3, top_k=20)
    ev.add(pred, lab)
    assert_close(ev.result()["hit_at_1"], 1 / 3)


def test_perr_with_n_labels():
    # v0: .9 .8 .7 .6 labels 1 0 1 1, n = 3: top 3 = classes 0 1 2 -> 2/3.
    # v1: .1 .2 .3 .4 labels 0 0 0 1, n = 1: top 1 = class 3 -> 1.
    # v2: no labels -> excluded.
    # v3: .5 .5 .5 .0 labels 0 0 1 1, n = 2: top 2 = classes 0 1 (tie rule) -> 0.
    # PERR = (2/3 + 1 + 0) / 3 = 5/9.
    pred = np.array(
        [[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.5, 0.5, 0.5, 0.0]]
    )
    lab = np.array([[1, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 1]])
    assert_close(perr(pred, lab), float(Fraction(5, 9)))
    # PERR uses the full row, so n > k gives the same figure.
    for k in (1, 2, 20):
        ev = StreamingEvaluator(4, top_k=k)
        ev.add(pred, lab)
        assert_close(ev.result()["perr"], 5 / 9)


def test_top_k_tie_at_threshold_keeps_lower_classes():
    # k = 2, scores .7 .5 .5 .5: top 2 = classes 0 and 1 (of the tied .5s, the lowest).
    # Positive class 2 is outside the top 2: pool .7- .5-, P = 1 -> GAP = 0.
    pred = np.array([[0.7, 0.5, 0.5, 0.5]])
    assert gap(pred, np.array([[0, 0, 1, 0]]), top_k=2) == 0.0
    # Positive class 1 is inside: pool .7- .5+ -> precision 1/2, P = 1 -> 1/2.
    assert_close(gap(pred, np.array([[0, 1, 0, 0]]), top_k=2), 0.5)


# ---------------------------------------------------------------------------
# Vectorized functions against the reference on random data.
# ---------------------------------------------------------------------------

RANDOM_CASES = [
    # (videos, classes, k, round scores to decimals or None, label density)
    (1, 1, 20, None, 0.5),
    (7, 3, 20, None, 0.4),
    (50, 30, 5, None, 0.1),
    (200, 100, 20, 1, 0.05),
    (60, 40, 3, 1, 0.3),
    (30, 25, 4, 0, 0.5),
]


def random_case(seed, videos, classes, decimals, density):
    rng = np.random.default_rng(seed)
    pred = rng.random((videos, classes)).astype(np.float32)
    if decimals is not None:
        pred = np.round(pred, decimals)
    lab = rng.random((videos, classes)) < density
    return pred, lab


@pytest.mark.parametrize("videos,classes,k,decimals,density", RANDOM_CASES)
def test_against_reference(videos, classes, k, decimals, density):
    for seed in range(3):
        pred, lab = random_case(seed, videos, classes, decimals, density)
        assert_close(gap(pred, lab, top_k=k), ref_gap(pred, lab, k))
        ap, positives = average_precision_per_class(pred, lab, top_k=k)
        ref_ap_c, ref_pos = ref_class_ap(pred, lab, k)
        np.testing.assert_allclose(ap, ref_ap_c, rtol=0, atol=1e-12)
        assert positives.tolist() == ref_pos
        ref_mean, ref_mean_all = ref_map(pred, lab, k)
        assert_close(mean_average_precision(pred, lab, top_k=k), ref_mean)
        assert_close(hit_at_one(pred, lab), ref_hit(pred, lab, 1))
        assert_close(hit_at_k(pred, lab, k), ref_hit(pred, lab, k))
        assert_close(perr(pred, lab), ref_perr(pred, lab))
        ev = StreamingEvaluator(classes, top_k=k)
        ev.add(pred, lab.astype(np.float32))
        result = ev.result()
        assert_close(result["map_all_classes"], ref_mean_all)
        assert_close(result["gap"], ref_gap(pred, lab, k))


def test_label_dtypes_are_equivalent():
    pred, lab = random_case(5, 20, 10, 1, 0.3)
    expected = gap(pred, lab)
    for dtype in (np.int32, np.int64, np.float32, np.float64, np.uint8):
        assert gap(pred, lab.astype(dtype)) == expected


# ---------------------------------------------------------------------------
# Streaming.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch_sizes", [[1], [7, 3, 50], [64], [1000]])
def test_streaming_matches_whole_array_under_shuffles_and_batching(batch_sizes):
    pred, lab = random_case(11, 300, 40, 1, 0.08)  # rounded scores: many ties
    k = 5
    whole = {
        "gap": gap(pred, lab, top_k=k),
        "map": mean_average_precision(pred, lab, top_k=k),
        "hit_at_1": hit_at_one(pred, lab),
        "perr": perr(pred, lab),
    }
    whole_ap, whole_pos = average_precision_per_class(pred, lab, top_k=k)
    rng = np.random.default_rng(len(batch_sizes))
    for _ in range(3):
        order = rng.permutation(len(pred))
        ev = StreamingEvaluator(40, top_k=k)
        start, i = 0, 0
        while start < len(pred):
            size = batch_sizes[i % len(batch_sizes)]
            idx = order[start : start + size]
            ev.add(pred[idx], lab[idx])
            start, i = start + size, i + 1
        assert ev.num_videos == 300
        result = ev.result()
        for key, value in whole.items():
            assert abs(result[key] - value) <= 1e-12, key
        assert result["num_positives"] == int(lab.sum())
        ap, pos = ev.per_class_ap()
        np.testing.assert_allclose(ap, whole_ap, rtol=0, atol=1e-12)
        assert pos.tolist() == whole_pos.tolist()


def test_streaming_empty_batch_result_twice_and_reset():
    pred, lab = random_case(3, 40, 12, 1, 0.2)
    ev = StreamingEvaluator(12, top_k=3)
    assert ev.result()["gap"] == 0.0 and ev.num_videos == 0
    ev.add(pred[:0], lab[:0])
    ev.add(pred[:25], lab[:25])
    first = ev.result()
    assert ev.result() == first  # result() does not consume anything
    ev.add(pred[25:], lab[25:])
    assert ev.result()["gap"] == gap(pred, lab, top_k=3)
    ev.reset()
    assert ev.num_videos == 0 and ev.result()["num_positives"] == 0
    ev.add(pred, lab)
    assert ev.result()["gap"] == gap(pred, lab, top_k=3)


# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------


def test_shape_mismatch_errors():
    ev = StreamingEvaluator(4)
    mismatch = r"predictions have shape \(3, 4\) but labels have shape \(3, 5\)"
    with pytest.raises(ValueError, match=mismatch):
        ev.add(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="num_classes=4"):
        ev.add(np.zeros((3, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="2-D"):
        ev.add(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        gap(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least one class"):
        gap(np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(ValueError, match="top_k"):
        StreamingEvaluator(4, top_k=0)


def test_nan_and_bad_label_errors():
    pred = np.zeros((2, 3))
    pred[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        StreamingEvaluator(3).add(pred, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        perr(pred, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="0 or 1"):
        gap(np.zeros((2, 3)), np.full((2, 3), 0.5))
    ev = StreamingEvaluator(3)
    with pytest.raises(ValueError):
        ev.add(pred, np.zeros((2, 3)))
    assert ev.num_videos == 0  # a rejected batch leaves no trace
