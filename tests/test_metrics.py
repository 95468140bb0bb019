"""Tests of videotag.evaluation.metrics: hand-worked cases, a slow reference, streaming."""

from fractions import Fraction

import numpy as np
import pytest

from videotag.evaluation import (
    CategoryEvaluator,
    StreamingEvaluator,
    average_precision_per_class,
    category_ranks,
    category_top_k_accuracy,
    gap,
    hit_at_k,
    hit_at_one,
    mean_average_precision,
    perr,
    precision_recall_f1,
    summarize_batch,
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


def ref_prf(pred, lab, threshold):
    """Micro and macro (over classes with positives) precision / recall / F1."""
    num_classes = pred.shape[1]
    tp = [0] * num_classes
    fp = [0] * num_classes
    fn = [0] * num_classes
    for v in range(pred.shape[0]):
        for c in range(num_classes):
            predicted, positive = float(pred[v, c]) >= threshold, bool(lab[v, c])
            tp[c] += predicted and positive
            fp[c] += predicted and not positive
            fn[c] += positive and not predicted

    def div(a, b):
        return a / b if b else 0.0

    out = {
        "precision_micro": div(sum(tp), sum(tp) + sum(fp)),
        "recall_micro": div(sum(tp), sum(tp) + sum(fn)),
        "f1_micro": div(2 * sum(tp), 2 * sum(tp) + sum(fp) + sum(fn)),
    }
    classes = [c for c in range(num_classes) if tp[c] + fn[c] > 0]
    per = {
        "precision": [div(tp[c], tp[c] + fp[c]) for c in classes],
        "recall": [div(tp[c], tp[c] + fn[c]) for c in classes],
        "f1": [div(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]) for c in classes],
    }
    for name, values in per.items():
        out[f"{name}_macro"] = sum(values) / len(values) if values else 0.0
    return out


def ref_pr_curve(pred, lab, k):
    """(recall, precision) at the end of each tie group of the pooled top-k pairs."""
    pairs = sorted(
        ((pred[v, c], bool(lab[v, c])) for v in range(pred.shape[0]) for c in ref_top(pred[v], k)),
        key=lambda p: -p[0],
    )
    total = int(np.count_nonzero(lab))
    recall, precision, found = [], [], 0
    for i, (score, positive) in enumerate(pairs):
        found += positive
        if i + 1 == len(pairs) or pairs[i + 1][0] != score:
            recall.append(found / total if total else 0.0)
            precision.append(found / (i + 1))
    return recall, precision


def ref_category_ranks(scores, categories):
    ranks = []
    for row, cat in zip(scores, categories):
        ranks.append(-1 if cat < 0 else ref_top(row, len(row)).index(cat))
    return ranks


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


def test_precision_recall_f1_at_threshold():
    # threshold 0.5 (a score equal to it counts as predicted), 3 classes:
    # v0: .9 .5 .2 labels 1 0 0 -> predicted c0 (TP), c1 (FP)
    # v1: .4 .7 .6 labels 1 1 0 -> predicted c1 (TP), c2 (FP); c0 missed (FN)
    # v2: .1 .2 .3 no labels    -> nothing predicted
    # v3: .6 .1 .8 no labels    -> c0 (FP), c2 (FP)
    # class 0: TP 1 FP 1 FN 1 -> P 1/2 R 1/2 F1 2/4
    # class 1: TP 1 FP 1 FN 0 -> P 1/2 R 1   F1 2/3
    # class 2: TP 0 FP 2, no positives -> left out of the macro averages
    # micro: TP 2 FP 4 FN 1 -> P 2/6, R 2/3, F1 4/9
    # macro: P (1/2 + 1/2)/2, R (1/2 + 1)/2, F1 (1/2 + 2/3)/2 = 7/12
    pred = np.array([[0.9, 0.5, 0.2], [0.4, 0.7, 0.6], [0.1, 0.2, 0.3], [0.6, 0.1, 0.8]])
    lab = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    expected = {
        "precision_micro": 1 / 3, "recall_micro": 2 / 3, "f1_micro": 4 / 9,
        "precision_macro": 1 / 2, "recall_macro": 3 / 4, "f1_macro": 7 / 12,
    }
    result = precision_recall_f1(pred, lab, threshold=0.5)
    assert set(result) == set(expected)
    for key, value in expected.items():
        assert_close(result[key], value)
    ev = StreamingEvaluator(3, top_k=2, threshold=0.5)
    ev.add(pred[:3], lab[:3])
    ev.add(pred[3:], lab[3:])
    counts = ev.class_counts()
    assert counts["true_positives"].tolist() == [1, 1, 0]
    assert counts["false_positives"].tolist() == [1, 1, 2]
    assert counts["false_negatives"].tolist() == [1, 0, 0]
    precision, recall, f1 = ev.per_class_prf()
    np.testing.assert_allclose(precision, [0.5, 0.5, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(recall, [0.5, 1.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(f1, [0.5, 2 / 3, 0.0], rtol=0, atol=1e-15)
    assert_close(ev.result()["f1_macro"], 7 / 12)
    # Just above 0.5 the score .5 of v0 is no longer predicted: class 1 has no FP.
    assert_close(precision_recall_f1(pred, lab, threshold=0.5000001)["precision_macro"], 3 / 4)
    # Nothing predicted and no labels: every figure is 0, nothing divides by zero.
    empty = precision_recall_f1(np.zeros((2, 3)), np.zeros((2, 3)), threshold=0.5)
    assert all(v == 0.0 for v in empty.values())


def test_hit_at_k_for_every_k_whatever_top_k():
    # v0: .1 .4 .3 .2 labels 1 0 0 0 -> ranking c1 c2 c3 c0: first positive at rank 4
    # v1: .5 .5 .1 .0 labels 0 1 0 0 -> tie: c0 before c1, first positive at rank 2
    # v2: no labels                   -> never a hit, still in the denominator
    # Hit@1 0, Hit@2 1/3, Hit@3 1/3, Hit@4 2/3.
    pred = np.array([[0.1, 0.4, 0.3, 0.2], [0.5, 0.5, 0.1, 0.0], [0.9, 0.8, 0.7, 0.6]])
    lab = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    ev = StreamingEvaluator(4, top_k=4)
    ev.add(pred, lab)
    assert [ev.hit_at(k) for k in (1, 2, 3, 4)] == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3], abs=1e-15)
    assert ev.hit_at(10) == ev.hit_at(4)  # top_k covers every class
    assert ev.result()["hit_at_k"] == pytest.approx(2 / 3, abs=1e-15)
    for k, value in zip((1, 2, 3, 4, 20), (0, 1 / 3, 1 / 3, 2 / 3, 2 / 3)):
        assert_close(hit_at_k(pred, lab, k), value)
    ev3 = StreamingEvaluator(4, top_k=3)
    ev3.add(pred, lab)
    assert_close(ev3.result()["hit_at_k"], 1 / 3)
    assert_close(ev3.hit_at(4), 2 / 3)  # beyond the kept top 3: v0's label ranks 4th
    # several k in the result, beyond top_k too, while GAP and mAP keep their k
    ev1 = StreamingEvaluator(4, top_k=1, hit_at=[4, 2])
    ev1.add(pred, lab)
    result, alone = ev1.result(), StreamingEvaluator(4, top_k=1)
    alone.add(pred, lab)
    assert [result[f"hit_at_{k}"] for k in (1, 2, 4)] == pytest.approx([0, 1 / 3, 2 / 3])
    assert "hit_at_3" not in result and result["hit_at_k"] == result["hit_at_1"]
    assert result["gap"] == alone.result()["gap"] and result["map"] == alone.result()["map"]
    with pytest.raises(ValueError, match="Hit@0"):
        ev1.hit_at(0)


def test_pr_curve_on_the_tie_case():
    # k = 1 pool: .9+ | .5+ .5- | .3-, P = 3 -> points at the end of each tie group:
    # (1/3, 1/1), (2/3, 2/3), (2/3, 2/4).
    ev = StreamingEvaluator(3, top_k=1)
    ev.add(TIE_PRED, TIE_LAB)
    recall, precision = ev.pr_curve()
    np.testing.assert_allclose(recall, [1 / 3, 2 / 3, 2 / 3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(precision, [1, 2 / 3, 1 / 2], rtol=0, atol=1e-15)
    assert StreamingEvaluator(3).pr_curve()[0].size == 0


def test_category_top_k_accuracy():
    # 3 categories (fewer than 5):
    # v0: .2 .5 .3 category 1 -> rank 0
    # v1: .4 .4 .2 category 1 -> tied with category 0, the lower id ranks first: rank 1
    # v2: .4 .4 .2 category 0 -> rank 0
    # v3: .1 .2 .7 no category (-1) -> left out
    # v4: .6 .3 .1 category 2 -> rank 2
    # top-1 2/4, top-2 3/4, top-5 (all 3 categories) 4/4.
    scores = np.array(
        [[0.2, 0.5, 0.3], [0.4, 0.4, 0.2], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]
    )
    categories = np.array([1, 1, 0, -1, 2])
    assert category_ranks(scores, categories).tolist() == [0, 1, 0, -1, 2]
    assert category_top_k_accuracy(scores, categories, 1) == 0.5
    assert category_top_k_accuracy(scores, categories, 2) == 0.75
    assert category_top_k_accuracy(scores, categories, 5) == 1.0
    ev = CategoryEvaluator(3)
    ev.add(scores[:2], categories[:2])
    ev.add_ranks([0, -1, 2])  # the same videos as ranks computed elsewhere
    assert ev.result() == {
        "category_top1": 0.5, "category_top5": 1.0, "num_category_videos": 4,
        "num_videos_without_category": 1,
    }
    with pytest.raises(ValueError, match="outside"):
        category_ranks(scores, np.array([0, 1, 3, 0, 0]))
    with pytest.raises(ValueError, match="expected"):
        ev.add(scores[:, :2], categories)


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
        for j in range(1, k + 1):
            assert_close(hit_at_k(pred, lab, j), ref_hit(pred, lab, j))
        threshold = 0.5  # rounded scores hit it exactly: score == threshold is predicted
        ev = StreamingEvaluator(classes, top_k=k, threshold=threshold)
        ev.add(pred, lab.astype(np.float32))
        result = ev.result()
        assert_close(result["map_all_classes"], ref_mean_all)
        assert_close(result["gap"], ref_gap(pred, lab, k))
        for key, value in ref_prf(pred, lab, threshold).items():
            assert_close(result[key], value)
        for j in (k + 1, 2 * k, classes):  # Hit@j beyond the kept top k
            assert_close(ev.hit_at(j), ref_hit(pred, lab, j))
        recall, precision = ev.pr_curve()
        ref_recall, ref_precision = ref_pr_curve(pred, lab, k)
        np.testing.assert_allclose(recall, ref_recall, rtol=0, atol=1e-12)
        np.testing.assert_allclose(precision, ref_precision, rtol=0, atol=1e-12)
        cats = np.random.default_rng(seed).integers(-1, classes, videos)
        assert category_ranks(pred, cats).tolist() == ref_category_ranks(pred, cats)


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
    whole = StreamingEvaluator(40, top_k=k, threshold=0.5)
    whole.add(pred, lab)
    expected = whole.result()
    assert expected["gap"] == gap(pred, lab, top_k=k)
    assert expected["map"] == mean_average_precision(pred, lab, top_k=k)
    assert expected["hit_at_1"] == hit_at_one(pred, lab)
    assert expected["perr"] == perr(pred, lab)
    whole_ap, whole_pos = average_precision_per_class(pred, lab, top_k=k)
    whole_curve = whole.pr_curve()
    rng = np.random.default_rng(len(batch_sizes))
    for _ in range(3):
        order = rng.permutation(len(pred))
        ev = StreamingEvaluator(40, top_k=k, threshold=0.5)
        start, i = 0, 0
        while start < len(pred):
            size = batch_sizes[i % len(batch_sizes)]
            idx = order[start : start + size]
            ev.add(pred[idx], lab[idx])
            start, i = start + size, i + 1
        assert ev.num_videos == 300
        result = ev.result()
        assert result.keys() == expected.keys()
        for key, value in expected.items():
            assert abs(result[key] - value) <= 1e-12, key
        assert result["num_positives"] == int(lab.sum())
        ap, pos = ev.per_class_ap()
        np.testing.assert_allclose(ap, whole_ap, rtol=0, atol=1e-12)
        assert pos.tolist() == whole_pos.tolist()
        for a, b in zip(ev.pr_curve(), whole_curve):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_summaries_of_shards_added_in_any_order_give_the_same_figures():
    # Shards summarized apart (as evaluation workers would) and added in two orders.
    pred, lab = random_case(12, 120, 30, 2, 0.1)
    shards = [(pred[i::3], lab[i::3]) for i in range(3)]
    summaries = [summarize_batch(p, l, 4, 0.3) for p, l in shards]
    results = []
    for order in ([0, 1, 2], [2, 0, 1]):
        ev = StreamingEvaluator(30, top_k=4, threshold=0.3)
        for i in order:
            ev.add_summary(summaries[i])
        results.append(ev.result())
    assert results[0] == results[1]  # bit for bit
    ev = StreamingEvaluator(30, top_k=4, threshold=0.3)
    ev.add(pred, lab)
    assert ev.result() == pytest.approx(results[0], abs=1e-12)


def test_summary_holds_only_top_k_pairs_and_class_counters():
    pred, lab = random_case(13, 50, 30, None, 0.1)
    summary = summarize_batch(pred, lab, 5, 0.5)
    shapes = {key: value.shape for key, value in summary.items()}
    assert shapes == {
        "top_classes": (50, 5), "top_scores": (50, 5), "top_positive": (50, 5),
        "num_labels": (50,), "perr_hits": (50,), "first_positive_rank": (50,),
        "class_positives": (30,), "true_positives": (30,), "false_positives": (30,),
    }
    assert summary["top_scores"].dtype == np.float32  # float32 scores stay float32
    with pytest.raises(ValueError, match="top_classes"):
        StreamingEvaluator(30, top_k=4).add_summary(summary)  # made with top_k 5
    with pytest.raises(ValueError, match="lacks"):
        StreamingEvaluator(30, top_k=5).add_summary({"top_classes": summary["top_classes"]})


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
