"""Tiny configs of every registered model, for the tests over the model zoo.

Every registered model needs an entry in `TINY_OVERRIDES`: the tests over
`videotag.list_models()` fail for a model without one (a paper-size model would
make the suite crawl). The overrides keep each model small (a few clusters, units
and frames) and turn dropout off so that training-mode outputs can be compared.
"""

from __future__ import annotations

import numpy as np

import videotag

NUM_CLASSES = 10
FEATURE_SIZES = (16, 8)  # rgb, audio bytes per frame: small to keep the tests fast

TINY_OVERRIDES = {
    "ATTENTION_CLUSTER": {"model.num_clusters": 3, "model.fc_sizes": "[16, 12]",
                          "model.dropout": 0.0, "model.sample_frames": 5},
    "ATTENTION_LSTM": {"model.embedding_size": 8, "model.lstm_size": 8,
                       "model.fc_sizes": "[16, 12]", "model.dropout": 0.0},
    "DBOF": {"model.cluster_size": 16, "model.hidden_size": 16, "model.sample_frames": 5},
    "LSTM": {"model.units": 8, "model.num_layers": 2},
    "NETFV": {"model.cluster_size": 4, "model.hidden_size": 16, "model.sample_frames": 5},
    "NETRVLAD": {"model.cluster_size": 4, "model.hidden_size": 16, "model.sample_frames": 5},
    "NETVLAD": {"model.cluster_size": 4, "model.hidden_size": 16, "model.sample_frames": 5},
    # the paper config rescales rgb by YT8M's PCA eigenvalues, which need a file
    "NEXTVLAD": {"model.cluster_size": 8, "model.groups": 4, "model.hidden_size": 16,
                 "model.dropout": 0.0, "model.input.normalization": "none"},
    "SOFTDBOF": {"model.cluster_size": 16, "model.hidden_size": 16, "model.sample_frames": 5},
    "TRN": {"model.segments": 4, "model.frame_size": 8, "model.bottleneck": 8,
            "model.dropout": 0.0},
    "LOGISTIC": {},
    "MOE": {"model.head.num_mixtures": 2},
    # members are NeXtVLADs: the same eigenvalue input as NEXTVLAD's paper config
    "MIX_NEXTVLAD": {"model.mix_number": 2, "model.cluster_size": 4, "model.groups": 2,
                     "model.hidden_size": 8, "model.gating_reduction": 2, "model.dropout": 0.0,
                     "model.input.normalization": "none"},
    # no vocabulary file: every title token is out of vocabulary (the model warns);
    # the vocabulary step itself is covered by tests/test_multimodal.py
    "MULTIMODAL": {
        "model.aggregators": "{rgb: {type: NEXTVLAD, cluster_size: 4, groups: 2}, "
                             "audio: {type: NETVLAD, cluster_size: 4}}",
        "model.text.embedding_dim": 8, "model.text.max_length": 8,
        "model.text.encoder": "{type: textcnn, filters: 4, windows: [2, 3]}",
        "model.fusion": "{type: concat_se, hidden_size: 16, dropout: 0.0}",
    },
}

# Every model the zoo tests cover: the registered ones and those expected soon.
ZOO = sorted(set(videotag.list_models()) | set(TINY_OVERRIDES))
# The models of frames (padding, masks); the video-level models read one vector per video.
FRAME_ZOO = [name for name in ZOO if name not in videotag.registry.models_reading("video")]


def check_registered(name):
    """Skips `name` when it is not registered in this build; fails when it has no tiny config."""
    import pytest

    if name not in videotag.list_models():
        pytest.skip(f"{name} is not registered in this build")
    if TINY_OVERRIDES.get(name) is None:
        pytest.fail(f"model {name} has no tiny test config: add its small sizes to "
                    "TINY_OVERRIDES in tests/tiny_models.py")


def tiny_model_config(name, **overrides):
    """The tiny config of the registered model `name`, with extra `key=value` overrides."""
    check_registered(name)
    base = {
        "data.num_classes": NUM_CLASSES,
        "data.feature_sizes": f"[{FEATURE_SIZES[0]}, {FEATURE_SIZES[1]}]",
        "data.max_frames": 20,
        "train.batch_size": 4,
        "train.learning_rate": 0.01,
        "eval.batch_size": 8,
        **TINY_OVERRIDES[name],
        **overrides,
    }
    return videotag.config.load(name.lower(), [f"{k}={v}" for k, v in base.items()])


def tiny_batch(cfg, num_frames, frames=None, seed=0):
    """Model inputs: random uint8 frames, `num_frames`, and titles when the model reads
    them; for a video-level model, random mean features of len(num_frames) videos."""
    rng = np.random.default_rng(seed)
    num_frames = np.asarray(num_frames, np.int32)
    if cfg.data.record_type == "video":
        return {n: rng.uniform(-2, 2, (len(num_frames), s)).astype(np.float32)
                for n, s in zip(cfg.data.feature_names, cfg.data.feature_sizes)}
    steps = frames or int(num_frames.max())
    batch = {n: rng.integers(0, 256, (len(num_frames), steps, s), dtype=np.uint8)
             for n, s in zip(cfg.data.feature_names, cfg.data.feature_sizes)}
    batch["num_frames"] = num_frames
    if cfg.data.use_title:
        words = ["cat", "dog", "猫", "music", "goal", "cake"]
        batch["title"] = np.array([" ".join(rng.choice(words, 3)) for _ in num_frames], object)
    return batch


# Small hyper-parameters of every registered aggregator (MULTIMODAL's building blocks).
TINY_AGGREGATOR_PARAMS = {
    "ATTENTION_CLUSTER": {"num_clusters": 3},
    "ATTENTION_LSTM": {"embedding_size": 6, "lstm_size": 5, "dropout": 0.0},
    "DBOF": {"cluster_size": 16, "sample_frames": 4},
    "LSTM": {"units": 6, "num_layers": 2},
    "NETFV": {"cluster_size": 4},
    "NETRVLAD": {"cluster_size": 4},
    "NETVLAD": {"cluster_size": 4},
    "NEXTVLAD": {"cluster_size": 4, "groups": 2},
    "SOFTDBOF": {"cluster_size": 16, "max_pool": True},
    "TRN": {"segments": 3, "frame_size": 6, "bottleneck": 6, "hidden_size": 5},
}
