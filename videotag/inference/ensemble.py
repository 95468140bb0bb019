"""Ensembles: several trained models as one Keras model that averages their
probabilities.

Members are model directories (their `model.keras`, or a checkpoint) or exported
SavedModels (their `assets.extra/model.keras` and `videotag_config.yaml`: the
serving signatures return the top k only, an average needs every class). They
must read the same records and predict the same classes (`check_members`).

`build_ensemble` makes one functional Keras model with the members' inputs (each
member sees at most its own `data.max_frames` frames) and the usual outputs:

- `tags` (and `category`): the weighted mean of the members' probabilities,
  `sum_i w_i p_i / sum_i w_i` (equal weights by default);
- `embedding`: the members' embeddings concatenated in the order given
  (`embedding="concat"`, the default) or their weighted mean (`"mean"`, for
  members of one embedding size).

Everything that takes a model and its config takes the ensemble: evaluation,
prediction and the SavedModel export (one parse of the records, every member in
one graph), which serves like any single model.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import keras
from keras import ops

from videotag.data import schema
from videotag.data.labels import load_label_names
from videotag.errors import ConfigError, ModelError

EMBEDDING_MODES = ("concat", "mean")
EXTRA_DIR = "assets.extra"


@dataclass
class Member:
    """One model of an ensemble: where it came from, its config and Keras model."""

    source: str
    cfg: object
    model: keras.Model


def load_member(source: str, checkpoint: Optional[str] = None) -> Member:
    """A model directory (with `checkpoint` as for `load_trained`) or an exported
    SavedModel version folder.

    Raises:
        ModelError: neither, or a SavedModel exported without its Keras model.
    """
    from videotag import config as config_lib
    from videotag.training.loading import load_trained

    path = Path(source)
    if (path / "saved_model.pb").is_file():
        keras_file, config_file = path / EXTRA_DIR / "model.keras", \
            path / EXTRA_DIR / "videotag_config.yaml"
        if not keras_file.is_file() or not config_file.is_file():
            raise ModelError(
                f"{source}: this SavedModel has no {EXTRA_DIR}/model.keras and "
                "videotag_config.yaml (exported with --nokeras?): an ensemble averages the "
                "probabilities of every class, which the serving signatures do not return; "
                "export it again with its Keras model, or give its model directory")
        return Member(str(source), config_lib.load(str(config_file)),
                      keras.saving.load_model(keras_file))
    cfg, model = load_trained(str(source), checkpoint)
    return Member(str(source), cfg, model)


def _outputs(model) -> List[str]:
    return list(model.output) if isinstance(model.output, dict) else []


def check_members(members: Sequence[Member]) -> None:
    """The members can be averaged: two or more, the same record format, the
    same tasks, the same classes (count and names) and categories.

    Raises:
        ConfigError: naming the first member that differs and how.
    """
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs two or more models, got {len(members)}")
    first = members[0]
    d0 = first.cfg.data
    names0 = load_label_names(d0.label_file, d0.num_classes)
    tasks0 = sorted(set(_outputs(first.model)) - {"embedding"})
    for member in members[1:]:
        d = member.cfg.data
        where = f"ensemble members {first.source} and {member.source}"
        for key in ("record_type", "feature_names", "feature_sizes", "id_key"):
            if getattr(d, key) != getattr(d0, key):
                raise ConfigError(f"{where} read different records: data.{key} is "
                                  f"{getattr(d0, key)!r} and {getattr(d, key)!r}")
        if d.use_title and d0.use_title and d.title_key != d0.title_key:
            raise ConfigError(f"{where} read titles from different keys (data.title_key)")
        tasks = sorted(set(_outputs(member.model)) - {"embedding"})
        if tasks != tasks0:
            raise ConfigError(f"{where} have different heads: {tasks0} and {tasks}")
        if "tags" in tasks:
            if d.num_classes != d0.num_classes:
                raise ConfigError(f"{where} do not share classes: {d0.num_classes} and "
                                  f"{d.num_classes} classes (data.num_classes)")
            names = load_label_names(d.label_file, d.num_classes)
            differ = [i for i, (a, b) in enumerate(zip(names0, names)) if a != b]
            if differ:
                i = differ[0]
                raise ConfigError(f"{where} do not share classes: class {i} is "
                                  f"{names0[i]!r} and {names[i]!r} ({len(differ)} names "
                                  "differ; data.label_file)")
        if "category" in tasks and d.num_categories != d0.num_categories:
            raise ConfigError(f"{where} have {d0.num_categories} and {d.num_categories} "
                              "categories (data.num_categories)")


@keras.saving.register_keras_serializable(package="videotag")
class WeightedMean(keras.layers.Layer):
    """`sum_i w_i x_i / sum_i w_i` of a list of tensors of one shape.

    Args:
        weights: one non-negative weight per input, not all 0.
    """

    def __init__(self, weights: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.member_weights = [float(w) for w in weights]

    def call(self, inputs):
        total = sum(self.member_weights)
        terms = [ops.multiply(ops.cast(x, "float32"), w / total)
                 for x, w in zip(inputs, self.member_weights)]
        result = terms[0]
        for term in terms[1:]:
            result = ops.add(result, term)
        return result

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "weights": self.member_weights}


@keras.saving.register_keras_serializable(package="videotag")
class FrameLimit(keras.layers.Layer):
    """A member's view of the ensemble's inputs: at most `max_frames` frames.

    Args:
        max_frames: the member's `data.max_frames`.
        features: the frame features to cut.
    """

    def __init__(self, max_frames: int, features: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.max_frames = int(max_frames)
        self.features = list(features)

    def call(self, inputs):
        out = dict(inputs)
        for name in self.features:
            out[name] = inputs[name][:, : self.max_frames]
        out[schema.NUM_FRAMES_KEY] = ops.minimum(inputs[schema.NUM_FRAMES_KEY], self.max_frames)
        return out

    def compute_output_spec(self, inputs):
        out = {}
        for name, value in inputs.items():
            shape = value.shape
            if name in self.features and shape[1] is not None:
                shape = (shape[0], min(shape[1], self.max_frames), *shape[2:])
            out[name] = keras.KerasTensor(shape, dtype=value.dtype)
        return out

    def get_config(self):
        return {**super().get_config(), "max_frames": self.max_frames,
                "features": self.features}


def build_ensemble(members: Sequence[Member], weights: Optional[Sequence[float]] = None,
                   embedding: str = "concat"):
    """(Keras model, config) of the ensemble of `members` (see the module docstring).

    The config is the first member's, with `data.max_frames` the largest of the
    members' and `data.use_title` set when any member reads titles: the records
    are read once, for every member.

    Raises:
        ConfigError: members that cannot be averaged (`check_members`), weights
            that do not fit, an unknown `embedding`, or "mean" over embeddings of
            different sizes.
    """
    check_members(members)
    weights = [1.0] * len(members) if not weights else [float(w) for w in weights]
    if len(weights) != len(members) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"--ensemble_weights needs one non-negative weight per member, not all "
                          f"0 ({len(members)} members, weights {weights})")
    if embedding not in EMBEDDING_MODES:
        raise ConfigError(f"--ensemble_embedding is {embedding!r}; valid: "
                          f"{', '.join(EMBEDDING_MODES)}")
    cfg = copy.deepcopy(members[0].cfg)
    data = cfg.data
    data.max_frames = max(m.cfg.data.max_frames for m in members)
    titled = [m for m in members if m.cfg.data.use_title]
    if titled:
        data.use_title, data.title_key = True, titled[0].cfg.data.title_key
    inputs = {name: keras.Input((None, size), dtype="uint8", name=name)
              for name, size in zip(data.feature_names, data.feature_sizes)}
    inputs[schema.NUM_FRAMES_KEY] = keras.Input((), dtype="int32", name=schema.NUM_FRAMES_KEY)
    if titled:
        inputs[schema.TITLE_KEY] = keras.Input((), dtype="string", name=schema.TITLE_KEY)
    outputs: Dict[str, list] = {}
    for i, member in enumerate(members):
        model = member.model
        # two members of one kind need two names (a member built into an ensemble
        # before carries its prefix already)
        model.name = f"member_{i}_{re.sub(r'^member_[0-9]+_', '', model.name)}"
        names = list(model.input) if isinstance(model.input, dict) else []
        own = {n: inputs[n] for n in names}
        if member.cfg.data.max_frames < data.max_frames:
            features = [n for n in names if n in data.feature_names]
            own = FrameLimit(member.cfg.data.max_frames, features,
                             name=f"member_{i}_frames")(own)
        for key, value in model(own).items():
            outputs.setdefault(key, []).append(value)
    result = {key: WeightedMean(weights, name=key)(values)
              for key, values in outputs.items() if key != "embedding"}
    result["embedding"] = _embedding(outputs["embedding"], weights, embedding)
    return keras.Model(inputs, result, name="ensemble"), cfg


def _embedding(values, weights, mode):
    if mode == "concat":
        return keras.layers.Concatenate(name="embedding", dtype="float32")(values)
    sizes = sorted({int(v.shape[-1]) for v in values})
    if len(sizes) > 1:
        raise ConfigError(f"--ensemble_embedding=mean needs members of one embedding size, "
                          f"got sizes {sizes} (use concat)")
    return WeightedMean(weights, name="embedding")(values)


def load_ensemble(sources: Sequence[str], weights: Optional[Sequence[float]] = None,
                  embedding: str = "concat", checkpoint: Optional[str] = None):
    """(Keras model, config, members) of the ensemble of model directories and
    SavedModels `sources` (`checkpoint` applies to every model directory)."""
    members = [load_member(s, checkpoint) for s in sources]
    model, cfg = build_ensemble(members, weights, embedding)
    return model, cfg, members


def describe(members: Sequence[Member], weights: Optional[Sequence[float]],
             embedding: str) -> Dict:
    """What an exported ensemble's `assets.extra/ensemble.json` holds."""
    weights = list(weights) if weights else [1.0] * len(members)
    return {"members": [{"source": m.source, "model": m.cfg.model.name, "weight": w}
                        for m, w in zip(members, weights)],
            "probabilities": "weighted mean, sum_i w_i p_i / sum_i w_i",
            "embedding": embedding}
