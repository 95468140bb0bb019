"""TRN against the authors' TRN-pytorch (zhoubolei/TRN-pytorch, commit 060509c):
TRNmodule.py `RelationModuleMultiScale` (per scale `fc_fusion` = ReLU, Linear(scale
x img_feature_dim, 256), ReLU, Linear(256, num_class), summed over the relations and
scales) behind models.py `TSN` (dropout on the backbone features, then `new_fc`,
Linear(feature_dim, img_feature_dim)), and dataset.py `_get_test_indices` (the
middle frame of each segment). PyTorch's Linear weight is [out, in].

The reference draws the relations of each scale below n at random, in evaluation too;
the model takes a fixed, evenly spaced set in inference, and the NumPy side sums the
same relations. Its `num_class` outputs are logits; for YT8M's multi-label classes
they go through a sigmoid.
"""

import itertools

import numpy as np

import videotag
from tests.reference_numpy import (
    as_np,
    assert_close,
    counts,
    middle_positions,
    padded_batch,
    paper_model,
    randomized_model,
    relu,
    run_padded,
    sigmoid,
)

CLASSES = 5
LENGTHS = [7, 3, 1, 5]


def inference_relations(num_frames, scale, subsample):
    """The relations (frame tuples) of a scale the model sums in inference: all of the
    largest scale's one, else `subsample` evenly spaced ones of
    `itertools.combinations` (the reference: a random choice of that many)."""
    relations = list(itertools.combinations(range(num_frames), scale))
    if scale == num_frames:
        return relations[:1]
    count = min(subsample, len(relations))
    return [relations[int((j + 0.5) * len(relations) / count)] for j in range(count)]


def fc_fusion(x, p, index):
    """`fc_fusion_scales[index]`: ReLU, Linear, ReLU, Linear; also the bottleneck."""
    hidden = relu(relu(x) @ p[f"fc_fusion_scales.{index}.1.weight"].T
                  + p[f"fc_fusion_scales.{index}.1.bias"])
    return hidden, hidden @ p[f"fc_fusion_scales.{index}.3.weight"].T \
        + p[f"fc_fusion_scales.{index}.3.bias"]


def tsn_trn(frames, p, cfg):
    """`TSN.forward` (consensus TRNmultiscale) for one video's frames [n, D] (rgb and
    audio concatenated), on the frames `_get_test_indices` takes: (the per-scale sums
    of the bottleneck, concatenated; the probabilities)."""
    m = cfg.model
    x = frames[middle_positions(len(frames), m.segments)]  # dropout: evaluation
    base_out = x @ p["new_fc.weight"].T + p["new_fc.bias"]  # [num_segments, 256]
    scales = list(range(m.segments, 1, -1))
    act_all, bottlenecks = 0.0, []
    for scale_id, scale in enumerate(scales):
        pooled = 0.0
        for relation in inference_relations(m.segments, scale, m.subsample):
            hidden, act_relation = fc_fusion(base_out[list(relation)].reshape(-1), p, scale_id)
            act_all = act_all + act_relation
            pooled = pooled + hidden
        bottlenecks.append(pooled)
    return np.concatenate(bottlenecks), sigmoid(act_all)


def reference_parameters(model, cfg):
    """The reference's parameters from the Keras weights. Its per-scale last Linear is
    a block of the head's kernel; the head's one bias b is split over the 7 scales as
    b_k = b / (number of relations summed) so that the summed biases are b."""
    m = cfg.model
    trn = model.get_layer("frames_trn")
    p = {"new_fc.weight": as_np(trn.project.kernel).T, "new_fc.bias": as_np(trn.project.bias)}
    head = model.get_layer("tags").dense
    kernel, bias = as_np(head.kernel), as_np(head.bias)
    relations = sum(trn.counts.values())
    for index, g in enumerate(trn.g):
        p[f"fc_fusion_scales.{index}.1.weight"] = as_np(g.kernel).T
        p[f"fc_fusion_scales.{index}.1.bias"] = as_np(g.bias)
        block = kernel[index * m.bottleneck:(index + 1) * m.bottleneck]
        p[f"fc_fusion_scales.{index}.3.weight"] = block.T
        p[f"fc_fusion_scales.{index}.3.bias"] = bias / relations
    return p


def reference_count(feature_dim, segments, img_feature_dim, bottleneck, num_class):
    """Parameters of `new_fc` and `RelationModuleMultiScale`, module by module."""
    total = feature_dim * img_feature_dim + img_feature_dim  # new_fc: weight, bias
    for scale in range(segments, 1, -1):  # fc_fusion_scales
        total += scale * img_feature_dim * bottleneck + bottleneck  # .1: Linear
        total += bottleneck * num_class + num_class  # .3: Linear to the classes
    return total


def bias_difference(segments, num_class):
    """The reference's per-scale class biases are one bias here: (scales - 1) x C fewer."""
    return -(segments - 2) * num_class


def test_computes_the_reference_function():
    cfg = videotag.config.load("trn", [f"data.num_classes={CLASSES}", "model.segments=5",
                                       "model.frame_size=6", "model.bottleneck=4"])
    model = randomized_model(cfg)
    got, per_video = run_padded(model, cfg, LENGTHS)
    p = reference_parameters(model, cfg)
    for i, frames in enumerate(per_video):
        vector, probabilities = tsn_trn(np.concatenate(frames, axis=1), p, cfg)
        assert_close(got["embedding"][i], vector, f"video {i}: per-scale sums")
        assert_close(got["tags"][i], probabilities, f"video {i}: probabilities")
    m = cfg.model
    want = reference_count(1152, m.segments, m.frame_size, m.bottleneck, CLASSES)
    assert sum(v.size for v in p.values()) == want
    assert counts(model) == (want + bias_difference(m.segments, CLASSES), 0)


def test_paper_parameters_are_the_references():
    cfg, model = paper_model("TRN")
    m = cfg.model
    assert (m.segments, m.subsample, m.frame_size, m.bottleneck, m.hidden_size, m.dropout,
            m.input_relu) == (8, 3, 256, 256, 0, 0.8, True)
    want = reference_count(1152, m.segments, m.frame_size, m.bottleneck, 3862)
    assert counts(model) == (want + bias_difference(m.segments, 3862), 0)
    assert bias_difference(m.segments, 3862) == -23_172  # the figure the YAML states


def test_dropout_drops_the_frames_in_training_only():
    # 3 segments of 3-frame videos and every relation of each scale: the training
    # draws are the inference frames and relations, so only the dropout differs
    for rate in (0.0, 0.8):
        cfg = videotag.config.load("trn", [
            f"data.num_classes={CLASSES}", "model.segments=3", "model.subsample=3",
            "model.frame_size=6", "model.bottleneck=4", f"model.dropout={rate}"])
        model = videotag.build_model(cfg)
        batch = padded_batch(cfg, [3, 3], seed=3)
        inference = as_np(model(batch, training=False)["embedding"])
        training = as_np(model(batch, training=True)["embedding"])
        if rate:
            assert np.abs(training - inference).max() > 1e-3
        else:
            np.testing.assert_allclose(training, inference, rtol=1e-6, atol=1e-6)
