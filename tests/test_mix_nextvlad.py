"""MIX_NEXTVLAD against the NeXtVLAD authors' code (linrongc/youtube-8m): its
parameter count, its forward pass and its distillation loss written in NumPy from
nextvlad.py (`MixNeXtVladModel`, `NeXtVLAD`), video_level_models.py
(`LogisticModel`) and train.py; its members are NEXTVLAD models; it trains under
mixed precision and FGM and shows its loss terms."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from videotag.data import schema
from videotag.training.losses import loss_terms

C, SLOTS = 5, 20
TINY = {"data.num_classes": C, "data.feature_sizes": "[16, 8]", "data.max_frames": SLOTS,
        "model.mix_number": 3, "model.cluster_size": 4, "model.groups": 2,
        "model.hidden_size": 8, "model.gating_reduction": 2, "model.dropout": 0.0,
        # the paper configs rescale rgb by YT8M's PCA eigenvalues, which need a file
        "model.input.normalization": "none", "train.batch_size": 4}


MIX_KEYS = ("model.mix_number",)


def _config(name="mix_nextvlad", **more):
    values = {k: v for k, v in {**TINY, **more}.items()
              if name == "mix_nextvlad" or k not in MIX_KEYS}
    return videotag.config.load(name, [f"{k}={v}" for k, v in values.items()])


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --- the parameter count, from the authors' code --------------------------------------

def _nextvlad_parameters(feature_size, cluster_size, groups, expansion):
    """Variables of nextvlad.py `NeXtVLAD.forward` (slim.batch_norm: beta, gamma and the
    two moving statistics), and the size of its output."""
    expanded = expansion * feature_size
    group_size = expanded // groups
    count = feature_size * expanded + expanded  # fully_connected: the expansion
    count += expanded * groups + groups  # fully_connected: the group attention
    count += expanded * groups * cluster_size  # cluster_weights
    count += 4 * groups * cluster_size  # cluster_bn
    count += group_size * cluster_size  # cluster_weights2
    count += 4 * cluster_size * group_size  # vlad_bn
    return count, cluster_size * group_size


def authors_parameter_count(classes, cluster_size, groups, expansion, hidden, reduction,
                            mix_number, sizes=(1024, 128)):
    """Variables of `MixNeXtVladModel.create_model` with `LogisticModel` members."""
    video, video_dim = _nextvlad_parameters(sizes[0], cluster_size, groups, expansion)
    audio, audio_dim = _nextvlad_parameters(sizes[1], cluster_size // 2, groups // 2,
                                            expansion)
    member = video + audio
    member += (video_dim + audio_dim) * hidden + 4 * hidden  # hidden1_weights, hidden1_bn
    member += hidden * (hidden // reduction) + 4 * (hidden // reduction)  # gating_weights_1, bn
    member += (hidden // reduction) * hidden  # gating_weights_2 (no bias)
    member += hidden * classes + classes  # LogisticModel: fully_connected
    width = sum(sizes)
    gate = 4 * width + width * mix_number + mix_number  # mix_weights_bn, mix_weights
    return mix_number * member + gate


def test_parameter_count_is_the_authors():
    # the eigenvalues of the input rescaling are constants, not weights
    cfg = videotag.config.load("mix_nextvlad", ["model.input.normalization=none"])
    m = cfg.model
    # scripts/train_mix_nextvlad_final_submission.sh
    assert (m.mix_number, m.cluster_size, m.groups, m.expansion, m.hidden_size,
            m.gating_reduction, m.dropout, m.cl_temperature, m.cl_lambda) == (
        3, 112, 8, 2, 2048, 16, 0.5, 3.0, 9.0)
    want = authors_parameter_count(3862, 112, 8, 2, 2048, 16, 3)
    assert want == 236_150_889
    with keras.StatelessScope(initialize_variables=False):  # shapes only, no weights
        model = videotag.build_model(cfg)
    keras.backend.clear_session()
    assert sum(math.prod(w.shape) for w in model.weights) == want
    del model


# --- the forward pass -----------------------------------------------------------------

def _randomize(model, seed=0):
    """Random weights everywhere (positive variances), so that nothing is an identity."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in model.weights:
        shape = tuple(weight.shape)
        if weight.path.endswith("moving_variance"):
            values.append(rng.uniform(0.5, 2.0, shape))
        else:
            values.append(rng.normal(0, 0.5, shape))
    model.set_weights([v.astype(np.float32) for v in values])


def _batch(lengths, steps=9, seed=1):
    rng = np.random.default_rng(seed)
    return {"rgb": rng.integers(0, 256, (len(lengths), steps, 16), dtype=np.uint8),
            "audio": rng.integers(0, 256, (len(lengths), steps, 8), dtype=np.uint8),
            "num_frames": np.asarray(lengths, np.int32)}


def _bn(layer, x):
    """slim.batch_norm at inference (epsilon 0.001, slim's default)."""
    mean, var = _np(layer.moving_mean), _np(layer.moving_variance)
    return (x - mean) / np.sqrt(var + 0.001) * _np(layer.gamma) + _np(layer.beta)


def test_forward_is_the_authors_mixture_of_nextvlad_members():
    cfg = _config()
    keras.utils.set_random_seed(0)
    model = videotag.build_model(cfg)
    _randomize(model)
    lengths = [9, 4, 1]
    batch = _batch(lengths)
    out = {k: _np(v) for k, v in model(batch, training=False).items()}
    vectors = keras.Model(model.input, [model.get_layer(f"member{i}_context_gating").output
                                        for i in range(3)])
    h = [_np(v) for v in vectors(batch, training=False)]

    # MixNeXtVladModel: the mean over the 300 (here SLOTS) zero-padded frame slots of the
    # dequantized rgb and audio side by side, batch norm, dense, softmax
    x = np.zeros((3, SLOTS, 24), np.float32)
    for b, n in enumerate(lengths):
        x[b, :n] = schema.dequantize(np.concatenate(
            [batch["rgb"][b, :n], batch["audio"][b, :n]], axis=-1))
    gate = model.get_layer("mixture_weights")
    mean = _bn(gate.bn, x.mean(axis=1))
    weights = _softmax(mean @ _np(gate.dense.kernel) + _np(gate.dense.bias))
    # each member's LogisticModel logits, mixed in logit space
    logits = np.stack([h[i] @ _np(model.get_layer(f"member{i}_logits").kernel)
                       + _np(model.get_layer(f"member{i}_logits").bias) for i in range(3)], 1)
    mix_logit = np.sum(weights[:, :, None] * logits, axis=1)
    np.testing.assert_allclose(out["member_logits"], logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["mixture_logits"], mix_logit, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["tags"], _sigmoid(mix_logit), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out["embedding"], np.concatenate([weights[:, i:i + 1] * h[i] for i in range(3)], -1),
        rtol=1e-5, atol=1e-6)
    assert np.all(weights.std(axis=0) > 1e-3)  # the videos get their own weights

    # frames after num_frames (other padding) change nothing
    longer = _batch(lengths, steps=14, seed=1)
    longer["rgb"][:, :9], longer["audio"][:, :9] = batch["rgb"], batch["audio"]
    again = model(longer, training=False)
    for key in out:
        np.testing.assert_allclose(_np(again[key]), out[key], rtol=1e-5, atol=1e-5)

    # every member is a NEXTVLAD model: copied into one, its weights give its scores
    single = videotag.build_model(_config("nextvlad"))
    for i in range(3):
        for layer in single.layers:
            if not layer.weights:
                continue
            source = f"member{i}_logits" if layer.name == "tags" else f"member{i}_{layer.name}"
            layer.set_weights(model.get_layer(source).get_weights())
        got = single(batch, training=False)
        np.testing.assert_allclose(_np(got["embedding"]), h[i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(_np(got["tags"]), _sigmoid(logits[:, i]), rtol=1e-5,
                                   atol=1e-6)


# --- the loss ----------------------------------------------------------------------------

def _authors_losses(labels, member_logits, mix_logit, temperature, cl_lambda):
    """train.py's label loss (CrossEntropyLoss of the prediction and of every
    aux_prediction, summed over classes, averaged over videos) and nextvlad.py's
    regularization_loss."""
    def cross_entropy(p):
        eps = 1e-8
        loss = labels * np.log(p + eps) + (1 - labels) * np.log(1 - p + eps)
        return np.mean(np.sum(-loss, axis=1))

    label_loss = cross_entropy(_sigmoid(mix_logit))
    for m in range(member_logits.shape[1]):
        label_loss += cross_entropy(_sigmoid(member_logits[:, m]))
    rank_pred = _softmax(mix_logit / temperature)[:, None]
    aux_rank_preds = _softmax(member_logits / temperature)
    eps = 1e-8
    kl = np.sum(rank_pred * (np.log(rank_pred + eps) - np.log(aux_rank_preds + eps)), -1)
    return label_loss, cl_lambda * np.mean(np.sum(kl, axis=-1))


@pytest.mark.parametrize("tags_loss", ["sum", "mean"])
def test_distillation_loss_is_the_authors(tags_loss):
    classes = 40
    cfg = _config(**{"data.num_classes": classes, "model.head.tags_loss": tags_loss})
    assert (cfg.model.cl_temperature, cfg.model.cl_lambda) == (3.0, 9.0)
    rng = np.random.default_rng(0)
    member_logits = rng.normal(0, 1.5, (6, 3, classes)).astype(np.float32)
    weights = _softmax(rng.normal(size=(6, 3)))
    mix_logit = np.sum(weights[:, :, None] * member_logits, axis=1).astype(np.float32)
    labels = (rng.random((6, classes)) < 0.1).astype(np.float32)
    outputs = {"tags": tf.constant(_sigmoid(mix_logit)),
               "member_logits": tf.constant(member_logits),
               "mixture_logits": tf.constant(mix_logit)}
    terms = {k: _np(v) for k, v in loss_terms(cfg, outputs, {"tags": tf.constant(labels)}).items()}
    assert set(terms) == {"tags", "members", "distillation"}
    label_loss, regularization = _authors_losses(labels, member_logits, mix_logit, 3.0, 9.0)
    # summed over the classes (the paper config), the authors' terms; averaged, the
    # same terms over the classes: the ratio of distillation to label losses is theirs
    scale = 1 if tags_loss == "sum" else classes
    assert terms["distillation"].mean() * scale == pytest.approx(regularization, rel=1e-5)
    assert (terms["tags"] + terms["members"]).mean() * scale == pytest.approx(label_loss,
                                                                              rel=1e-5)
    assert regularization > 0.01


def test_mixture_config_is_checked():
    with pytest.raises(videotag.errors.ConfigError, match="model.head.type"):
        _config(**{"model.head.type": "moe"})
    with pytest.raises(videotag.errors.ConfigError, match="model.cl_temperature"):
        _config(**{"model.cl_temperature": 0})
    with pytest.raises(videotag.errors.ConfigError, match="model.head.tasks"):
        _config(**{"model.head.tasks": "[category]", "data.num_categories": 3})


# --- training -----------------------------------------------------------------------------

def test_trains_under_mixed_precision_and_fgm_and_reports_its_terms():
    from videotag.training.step import TrainStep
    from videotag.training.trainer import build_for_training

    cfg = _config(**{"train.mixed_precision": "mixed_float16", "train.learning_rate": 0.01,
                     "train.fgm_alpha": 0.5, "train.fgm_epsilon": 2.0, "model.mix_number": 2})
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    model, optimizer = build_for_training(cfg, strategy)
    assert model.get_layer("member0_hidden").compute_dtype == "float16"
    step = TrainStep(cfg, model, optimizer, strategy)
    assert step.terms == ["tags", "members", "distillation"]
    assert step.split is not None  # FGM
    inputs = {k: tf.constant(v) for k, v in _batch([9, 4, 1, 6], seed=3).items()}
    labels = np.zeros((4, C), np.float32)
    labels[[0, 1, 2, 3], [0, 1, 1, 4]] = 1
    before = [w.numpy().copy() for w in model.trainable_weights]
    # 8 steps: with the cross-entropy summed over the classes (the paper config) the
    # first float16 gradients overflow until the dynamic loss scale has come down
    values = [{k: float(v) for k, v in step((inputs, {"tags": tf.constant(labels)})).items()}
              for _ in range(8)]
    for v in values:
        # (a float16 gradient may overflow: the step is skipped and the loss scale halved)
        assert all(math.isfinite(x) for k, x in v.items() if k != "grad_norm"), v
        assert v["distillation_loss"] > 0 and v["members_loss"] > v["tags_loss"] > 0
        # the logged terms are the clean pass's; the frames moved along the loss
        # gradient give a larger loss
        assert v["clean_loss"] == pytest.approx(
            v["tags_loss"] + v["members_loss"] + v["distillation_loss"], rel=1e-5)
        assert v["adversarial_loss"] > v["clean_loss"]
        # the objective: clean + alpha * adversarial + the (float32) regularisation
        regularization = v["loss"] - v["clean_loss"] - 0.5 * v["adversarial_loss"]
        assert -1e-5 < regularization < 1e-3
    assert values[-1]["clean_loss"] < values[0]["clean_loss"]
    moved = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(moved)


def test_progress_line_shows_the_terms(capsys):
    from videotag.training.logs import EpochProgress

    clock = itertools.count(0.0, 30.0)
    log = EpochProgress(verbose=True, batch_size=8, epochs=2, mode="lines",
                        clock=lambda: next(clock), terms=["tags", "members", "distillation"])
    log.epoch_begin(0, None)
    log.step(1, {"loss": 0.5, "tags": 0.1, "members": 0.3, "distillation": 0.02})
    line = capsys.readouterr().err.splitlines()[0]
    assert line.startswith("epoch 1 step 1, loss 0.5000, tags 0.1000, members 0.3000, "
                           "distillation 0.0200, ")

