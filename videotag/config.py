"""Typed configuration: dataclasses with YAML files and `key=value` overrides.

A config has five sections: `data`, `model`, `train`, `eval` and `export`. The
`model` section's class depends on the model: each registered model declares its
own dataclass (a subclass of `ModelConfig`), so every key is typed and checked.

Unknown keys and values of the wrong type raise `ConfigError` naming the key's
dotted path, e.g. `model.cluster_size`.

Example:
    cfg = videotag.config.load("nextvlad", ["train.batch_size=32"])
    model = videotag.build_model(cfg)
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from videotag.errors import ConfigError

# The YAML configs ship inside the package (package data), so an installed wheel has them.
CONFIG_DIR = resources.files("videotag") / "configs"


@dataclass
class DataConfig:
    """Where the records are and how to read them.

    Attributes:
        train_data_pattern: glob of training shards; empty means the demo data.
        eval_data_pattern: glob of validation shards; empty means the demo data.
        record_type: "frame" (SequenceExample) or "video" (Example, mean features).
        id_key: context key of the video id ("id"; the 2017 release uses "video_id").
        feature_names: frame feature lists, in model input order.
        feature_sizes: bytes per frame of each feature (1024 rgb, 128 audio).
        max_frames: frames used per video; longer videos are truncated.
        num_classes: tag vocabulary size (3862 for YT8M 2018+; demo: from its labels).
        label_file: class names (YT8M vocabulary.csv, or one name per line).
        shuffle_buffer: records held for shuffling during training.
        num_parallel_reads: shards read at once (interleave cycle length).
        on_bad_record: "error" stops at the first bad record; "skip" drops and counts.
        pad_to_max_frames: pad every batch to max_frames instead of its longest video.
        length_buckets: frame-count boundaries, e.g. [32, 64, 128]: training and
            evaluation batches then hold videos of similar length, so less time goes
            into padding (empty: off). Metrics do not depend on the order of videos.
        use_title: parse the context `title` (UTF-8 text) and feed it to the model
            as the string input `title` (an absent title reads as ""; text that is
            not valid UTF-8 makes the record bad).
        title_key: context key of the title.
        num_categories: size of the `category` target (0: no category). When set,
            every record must hold one `category` id in [0, num_categories).
        category_key: context key of the category id.
        category_file: category names (one per line, or id,name), optional.
    """

    train_data_pattern: str = ""
    eval_data_pattern: str = ""
    record_type: str = "frame"
    id_key: str = "id"
    feature_names: List[str] = field(default_factory=lambda: ["rgb", "audio"])
    feature_sizes: List[int] = field(default_factory=lambda: [1024, 128])
    max_frames: int = 300
    num_classes: int = 3862
    label_file: str = ""
    shuffle_buffer: int = 2048
    num_parallel_reads: int = 4
    on_bad_record: str = "error"
    pad_to_max_frames: bool = False
    length_buckets: List[int] = field(default_factory=list)
    use_title: bool = False
    title_key: str = "title"
    num_categories: int = 0
    category_key: str = "category"
    category_file: str = ""


HEAD_TYPES = ("logistic", "moe", "hmc")
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "mixed_bfloat16", "mixed_float16")
LR_SCHEDULES = ("exponential", "cosine")
TASKS = ("tags", "category")


@dataclass
class HeadConfig:
    """Classifier head.

    Attributes:
        type: the `tags` head: "logistic", "moe" (mixture of experts, YT8M
            style) or "hmc" (seed 000: global and local branches averaged).
        num_mixtures: experts per class for "moe".
        l2_penalty: L2 regularisation of the head's weights.
        tasks: the outputs to train: "tags" (multi-label, sigmoid) and/or
            "category" (multi-class softmax over data.num_categories).
        tags_weight: loss weight of `tags`.
        category_weight: loss weight of `category`.
        hmc_hidden_size: "hmc": units of the first two global levels (the third
            and the local branches have half).
        hmc_local_levels: "hmc": the global levels (1-3) that feed a local branch
            (seed 000: [3]).
        hmc_local_weight: "hmc": weight of the local branches' mean probability;
            the global branch gets 1 - weight (seed 000: 0.5, the average).
        hmc_dropout: "hmc": dropout rate after each hidden level.
    """

    type: str = "logistic"
    num_mixtures: int = 2
    l2_penalty: float = 1e-8
    tasks: List[str] = field(default_factory=lambda: ["tags"])
    tags_weight: float = 1.0
    category_weight: float = 1.0
    hmc_hidden_size: int = 1024
    hmc_local_levels: List[int] = field(default_factory=lambda: [3])
    hmc_local_weight: float = 0.5
    hmc_dropout: float = 0.0


TOKENIZERS = ("auto", "word", "char")


@dataclass
class TextConfig:
    """Title tokenisation and text encoder of models that read titles.

    Tokenisation runs inside the model (an exported model takes raw UTF-8 titles).

    Attributes:
        tokenizer: "word" (lowercase, split on whitespace and punctuation), "char"
            (one token per character: Chinese) or "auto" (words, and every CJK
            character a token of its own: mixed titles).
        max_length: tokens kept per title (longer titles are truncated).
        vocab_file: one token per line (token id = line index + 2; 0 is padding,
            1 out-of-vocabulary). Empty: built from the training titles when
            training starts and saved as `vocab.txt` in the model directory.
        vocab_min_count: a token needs this many occurrences to enter the vocabulary.
        vocab_max_size: at most this many tokens (the most frequent).
        embedding_dim: size of the token embeddings.
        pretrained_embeddings: optional word2vec text file ("count dim" header, then
            "token v1 ... v_dim") to initialise the embeddings of its tokens.
        train_embeddings: fine-tune the embeddings.
        encoder: "textcnn" (Kim 2014) or "bilstm".
        encoder_params: the encoder's hyper-parameters (see videotag.layers.text).
    """

    tokenizer: str = "auto"
    max_length: int = 32
    vocab_file: str = ""
    vocab_min_count: int = 2
    vocab_max_size: int = 20000
    embedding_dim: int = 64
    pretrained_embeddings: str = ""
    train_embeddings: bool = True
    encoder: str = "textcnn"
    encoder_params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Fields shared by every model; each model subclasses this."""

    name: str = ""
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class TrainConfig:
    """Optimisation, distribution, adversarial training and checkpoints.

    Attributes:
        batch_size: global batch size (all replicas of all workers together).
        epochs: passes over the training data.
        steps_per_epoch: 0 means one full pass over the training data (then the
            data is read once per epoch); otherwise the data repeats and an epoch
            is this many steps (required with `distribution: multi_worker`).
        learning_rate: peak learning rate (Adam).
        lr_schedule: "exponential" (x `lr_decay` every `lr_decay_examples`
            examples, staircase; the NeXtVLAD schedule) or "cosine" (from the peak
            down to `lr_final_ratio` x peak over `cosine_decay_examples`).
        lr_decay: multiply the learning rate by this ...
        lr_decay_examples: ... every this many training examples (0: constant).
        cosine_decay_examples: length of the cosine decay in examples, counted
            after the warm-up (0: the whole run, which needs `steps_per_epoch`).
        lr_final_ratio: the cosine schedule ends at this fraction of the peak.
        lr_warmup_examples: linear warm-up from 0 to the peak over this many
            examples before either schedule (0: none).
        clip_gradient_norm: clip gradients to this global norm (0: off); the norm
            is that of the gradient of the whole global batch.
        weight_decay: L2 penalty `weight_decay * sum(w ** 2)` on every trainable
            matrix and tensor (kernels, embeddings, VLAD centres; not biases or
            batch-norm scales), added to the model's own regularisation losses.
        fgm_alpha: weight of the FGM adversarial loss (Goodfellow et al. 2015,
            Miyato et al. 2017): the model trains on `clean + fgm_alpha *
            adversarial` loss; 0 turns FGM off.
        fgm_epsilon: L2 norm, per example and per perturbed tensor, of the
            adversarial perturbation of the dequantized frames (rgb, audio) and
            of the title word embeddings.
        distribution: "none" (one device), "mirrored" (every GPU of this
            machine, or every logical CPU device when there is no GPU) or
            "multi_worker" (every worker of the cluster in the TF_CONFIG
            environment variable).
        sync_batch_norm: with several replicas, batch-norm statistics over the
            global batch (the model then trains the same on 1 or N replicas);
            false: per replica, which `jit_compile` with several replicas needs.
        mixed_precision: "none" (float32), "mixed_bfloat16" or "mixed_float16"
            (with dynamic loss scaling); weights and outputs stay float32.
        jit_compile: compile the training step with XLA.
        seed: seed of weights init and shuffling.
        eval_before_training: also score the untrained model (a baseline figure).
        checkpoint_every_steps: also checkpoint every this many steps (0: only at
            the end of each epoch).
        keep_checkpoints: checkpoints kept in model_dir/checkpoints.
        tensorboard: write TensorBoard logs to model_dir/logs.
        log_every_steps: steps between TensorBoard points of the training losses.
    """

    batch_size: int = 160
    epochs: int = 5
    steps_per_epoch: int = 0
    learning_rate: float = 2e-4
    lr_schedule: str = "exponential"
    lr_decay: float = 0.8
    lr_decay_examples: int = 2_000_000
    cosine_decay_examples: int = 0
    lr_final_ratio: float = 0.0
    lr_warmup_examples: int = 0
    clip_gradient_norm: float = 0.0
    weight_decay: float = 0.0
    fgm_alpha: float = 0.0
    fgm_epsilon: float = 1.0
    distribution: str = "none"
    sync_batch_norm: bool = True
    mixed_precision: str = "none"
    jit_compile: bool = False
    seed: int = 0
    eval_before_training: bool = False
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 3
    tensorboard: bool = True
    log_every_steps: int = 20


@dataclass
class EvalConfig:
    """Evaluation settings.

    Attributes:
        batch_size: videos per evaluation batch.
        top_k: k of GAP@k, mAP and Hit@k (20 for YT8M).
        threshold: score at or above which a tag counts as predicted, for
            precision / recall / F1.
    """

    batch_size: int = 256
    top_k: int = 20
    threshold: float = 0.5


@dataclass
class ExportConfig:
    """Serving settings: top_k classes returned per video."""

    top_k: int = 20


@dataclass
class Config:
    """The whole configuration of a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict of the config (YAML-serialisable)."""
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the config as YAML; `load(path)` reads it back unchanged."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


# --- loading -----------------------------------------------------------------


def config_names() -> List[str]:
    """Names of the configs that ship with the package ("nextvlad", "nextvlad_demo", ...)."""
    return sorted(p.name[: -len(".yaml")] for p in CONFIG_DIR.iterdir()
                  if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str):
    """Maps a config name ("NEXTVLAD", "nextvlad_demo") or a file path to a YAML file.

    A name is looked up among the configs packaged with videotag (`config_names()`).
    Returns a `pathlib.Path` or, for a packaged config, an `importlib.resources`
    Traversable (both have `read_text()` and `name`).
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {name_or_path}")
        return path
    candidate = CONFIG_DIR / f"{name_or_path.lower()}.yaml"
    if not candidate.is_file():
        raise ConfigError(
            f"no config named '{name_or_path}' (looked for {candidate.name} among the "
            f"packaged configs; available: {', '.join(config_names())})"
        )
    return candidate


def load(
    name_or_path: Optional[str] = None,
    overrides: Sequence[str] | Dict[str, Any] | None = None,
    model_name: Optional[str] = None,
) -> Config:
    """Builds a Config from defaults, a YAML file and overrides.

    Args:
        name_or_path: a YAML path, or a config name such as "nextvlad" or
            "nextvlad_demo" that maps to the packaged `videotag/configs/<name>.yaml`.
            None: dataclass defaults only.
        overrides: `["train.batch_size=32", ...]` (values parsed as YAML) or a
            nested dict, applied after the file.
        model_name: the model to configure when the file does not name one.

    Returns:
        A validated `Config`.

    Raises:
        ConfigError: unknown key, wrong type or unknown model, naming the dotted key.
    """
    raw: Dict[str, Any] = {}
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        raw = loaded
    for key, value in _iter_overrides(overrides):
        _set_dotted(raw, key, value)
    return from_dict(raw, model_name=model_name)


def from_dict(raw: Dict[str, Any], model_name: Optional[str] = None) -> Config:
    """Validates a nested dict (as read from YAML) into a Config."""
    from videotag import registry  # late import: registry imports models

    if not isinstance(raw, dict):
        raise ConfigError("config must be a mapping")
    model_raw = raw.get("model") or {}
    if not isinstance(model_raw, dict):
        raise ConfigError("config key 'model' expects a mapping")
    name = model_raw.get("name") or model_name
    if not name:
        raise ConfigError("config key 'model.name' is not set (e.g. NEXTVLAD)")
    if model_name and model_raw.get("name") and model_raw["name"].upper() != model_name.upper():
        raise ConfigError(
            f"config key 'model.name' is {model_raw['name']} but the model asked for "
            f"is {model_name}"
        )
    model_cls = registry.model_config_class(str(name))
    model_raw = dict(model_raw, name=str(name).upper())
    sections = {
        "data": DataConfig,
        "train": TrainConfig,
        "eval": EvalConfig,
        "export": ExportConfig,
    }
    unknown = set(raw) - set(sections) - {"model"}
    if unknown:
        raise ConfigError(
            f"unknown config key '{sorted(unknown)[0]}' (valid sections: data, model, "
            "train, eval, export)"
        )
    values = {k: _build(cls, raw.get(k) or {}, k) for k, cls in sections.items()}
    values["model"] = _build(model_cls, model_raw, "model")
    cfg = Config(**values)
    _check_values(cfg)
    return cfg


def _iter_overrides(overrides):
    if not overrides:
        return
    if isinstance(overrides, dict):
        for key, value in _flatten(overrides):
            yield key, value
        return
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        yield key.strip(), value


def _flatten(d, prefix=""):
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _set_dotted(raw: Dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{'.'.join(parts[: i + 1])}' is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls, raw: Any, path: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"config key '{path}' expects a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(
                f"unknown config key '{path}.{key}' (valid keys of '{path}': "
                f"{', '.join(sorted(names))})"
            )
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}") for k, v in raw.items()}
    return cls(**kwargs)


def _coerce(hint, value, path):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value or {}, path)
    if origin in (list, List):
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{path}' expects a list, got {value!r}")
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{path}' expects a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any:
        return value
    type_name = getattr(hint, "__name__", str(hint))
    raise ConfigError(
        f"config key '{path}' expects {type_name}, got {type(value).__name__} {value!r}"
    )


def _check_values(cfg: Config) -> None:
    d = cfg.data
    if d.record_type not in ("frame", "video"):
        raise ConfigError("config key 'data.record_type' must be 'frame' or 'video'")
    if len(d.feature_names) != len(d.feature_sizes):
        raise ConfigError(
            "config keys 'data.feature_names' and 'data.feature_sizes' differ in length"
        )
    if d.on_bad_record not in ("error", "skip"):
        raise ConfigError("config key 'data.on_bad_record' must be 'error' or 'skip'")
    for key in ("max_frames", "num_classes"):
        if getattr(d, key) <= 0:
            raise ConfigError(f"config key 'data.{key}' must be positive")
    if d.length_buckets and (
        sorted(set(d.length_buckets)) != d.length_buckets or d.length_buckets[0] <= 0
    ):
        raise ConfigError("config key 'data.length_buckets' must be increasing positive ints")
    _check_train(cfg.train)
    head = cfg.model.head
    if head.type not in HEAD_TYPES:
        raise ConfigError(
            f"config key 'model.head.type' is '{head.type}'; valid: {', '.join(HEAD_TYPES)}"
        )
    if not head.tasks or any(t not in TASKS for t in head.tasks) or len(set(head.tasks)) != len(
            head.tasks):
        raise ConfigError(
            f"config key 'model.head.tasks' is {head.tasks}; give one or both of "
            f"{', '.join(TASKS)}"
        )
    if d.num_categories < 0:
        raise ConfigError("config key 'data.num_categories' must be 0 (none) or positive")
    # the demo data (no data patterns) brings its own category count
    demo = not (d.train_data_pattern or d.eval_data_pattern)
    if "category" in head.tasks and d.num_categories <= 0 and not demo:
        raise ConfigError(
            "config key 'model.head.tasks' has 'category' but 'data.num_categories' is 0; "
            "set it to the number of categories"
        )
    if head.type == "hmc":
        if head.hmc_hidden_size < 2:
            raise ConfigError("config key 'model.head.hmc_hidden_size' must be at least 2")
        if not head.hmc_local_levels or any(x not in (1, 2, 3) for x in head.hmc_local_levels):
            raise ConfigError(
                f"config key 'model.head.hmc_local_levels' is {head.hmc_local_levels}; give "
                "one or more of the levels 1, 2, 3")
        if not 0.0 <= head.hmc_local_weight <= 1.0:
            raise ConfigError("config key 'model.head.hmc_local_weight' must be in [0, 1]")
    text = getattr(cfg.model, "text", None)
    if isinstance(text, TextConfig):
        if text.tokenizer not in TOKENIZERS:
            raise ConfigError(
                f"config key 'model.text.tokenizer' is '{text.tokenizer}'; valid: "
                f"{', '.join(TOKENIZERS)}")
        for key in ("max_length", "embedding_dim", "vocab_max_size", "vocab_min_count"):
            if getattr(text, key) <= 0:
                raise ConfigError(f"config key 'model.text.{key}' must be positive")


def _check_train(t: TrainConfig) -> None:
    if t.batch_size <= 0:
        raise ConfigError("config key 'train.batch_size' must be positive")
    for key, valid in (("distribution", DISTRIBUTIONS), ("mixed_precision", MIXED_PRECISION),
                       ("lr_schedule", LR_SCHEDULES)):
        if getattr(t, key) not in valid:
            raise ConfigError(
                f"config key 'train.{key}' is '{getattr(t, key)}'; valid: {', '.join(valid)}"
            )
    for key in ("epochs", "keep_checkpoints", "log_every_steps"):
        if getattr(t, key) <= 0:
            raise ConfigError(f"config key 'train.{key}' must be positive")
    for key in ("steps_per_epoch", "lr_decay_examples", "cosine_decay_examples",
                "lr_warmup_examples", "checkpoint_every_steps", "clip_gradient_norm",
                "weight_decay", "fgm_alpha", "fgm_epsilon"):
        if getattr(t, key) < 0:
            raise ConfigError(f"config key 'train.{key}' must not be negative")
    if t.fgm_alpha > 0 and t.fgm_epsilon <= 0:
        raise ConfigError("config key 'train.fgm_epsilon' must be positive when "
                          "'train.fgm_alpha' turns FGM on")
    if t.distribution == "multi_worker" and not t.steps_per_epoch:
        raise ConfigError(
            "config key 'train.steps_per_epoch' must be set with train.distribution="
            "multi_worker: the workers read different shards and must take the same "
            "number of steps per epoch"
        )
    if t.lr_schedule == "cosine" and not t.cosine_decay_examples and not t.steps_per_epoch:
        raise ConfigError(
            "config key 'train.cosine_decay_examples' must be set for lr_schedule=cosine "
            "when train.steps_per_epoch is 0 (the length of the run is then unknown)"
        )
    if not 0.0 <= t.lr_final_ratio <= 1.0:
        raise ConfigError("config key 'train.lr_final_ratio' must be in [0, 1]")
