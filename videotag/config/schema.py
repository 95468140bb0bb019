"""The schema of a run's configuration: its sections as typed dataclasses.

A config has five sections: `data`, `model`, `train`, `eval` and `export`. The
`model` section's class depends on the model: each registered model declares its
own dataclass (a subclass of `ModelConfig`, in `videotag/models/<name>.py`), so
every key is typed and checked. Each section states the rules its types do not in
a `validate(path)` method, which `videotag.config.engine.build` calls; rules that
join sections are `Config.validate`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Dict, List

from videotag.config import engine
from videotag.config.components import Component
from videotag.config.head import HeadConfig
from videotag.config.inputs import InputConfig
from videotag.config.optimizer import OPTIMIZERS
from videotag.config.selection import EarlyStoppingConfig, check_metric_fits, check_metric_name
from videotag.errors import ConfigError

RECORD_TYPES = ("frame", "video")
RECORD_KINDS = {"frame": "frame-level", "video": "video-level"}
BAD_RECORD_POLICIES = ("error", "skip")
DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "mixed_bfloat16", "mixed_float16")
LR_SCHEDULES = ("exponential", "cosine", "piecewise")


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
        num_classes: tag vocabulary size (3862 for YT8M 2018+; demo: from its labels);
            0 takes it from `label_file` when the config is loaded. A label file
            must define exactly this many classes (its highest id + 1).
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
        segment_labels: read the YT8M 2019 segment ratings (context
            `segment_labels`, `segment_start_times`, `segment_scores`): training
            examples are then the rated segments (the loss only on rated pairs) and
            evaluation scores every segment with the segment metric
            (`videotag.data.segments`, `videotag.evaluation.segments`).
        segment_size: frames per segment (5 in the 2019 release: 5 seconds).
        segment_label_file: the segment classes, one class id per line under an
            `Index` header (the 2019 release's `segment_label_ids.csv`: 1,000 of
            the 3,862 classes); empty: every class is a segment class.
        segment_context: frames on each side of a segment that its scoring window
            adds (0: the model sees the segment's own frames).
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
    segment_labels: bool = False
    segment_size: int = 5
    segment_label_file: str = ""
    segment_context: int = 0

    def validate(self, path: str = "data") -> None:
        """Checks what the types do not (raises ConfigError naming the key)."""
        if self.record_type not in RECORD_TYPES:
            raise ConfigError(f"config key '{path}.record_type' must be 'frame' or 'video'")
        if len(self.feature_names) != len(self.feature_sizes):
            raise ConfigError(f"config keys '{path}.feature_names' and '{path}.feature_sizes' "
                              "differ in length")
        if self.on_bad_record not in BAD_RECORD_POLICIES:
            raise ConfigError(f"config key '{path}.on_bad_record' must be 'error' or 'skip'")
        engine.check_positive(path, self, ("max_frames",))
        engine.check_positive(path, self, ("num_classes",), strict=False)
        demo = not (self.train_data_pattern or self.eval_data_pattern)  # brings its labels
        if self.num_classes == 0 and (self.label_file or not demo):
            from videotag.data.labels import resolve_num_classes

            resolve_num_classes(self)
        buckets = self.length_buckets
        if buckets and (sorted(set(buckets)) != buckets or buckets[0] <= 0):
            raise ConfigError(f"config key '{path}.length_buckets' must be increasing "
                              "positive ints")
        if self.num_categories < 0:
            raise ConfigError(f"config key '{path}.num_categories' must be 0 (none) or positive")
        engine.check_positive(path, self, ("segment_size",))
        engine.check_positive(path, self, ("segment_context",), strict=False)
        if self.segment_labels and self.record_type != "frame":
            raise ConfigError(f"config key '{path}.segment_labels' needs frame-level records "
                              f"({path}.record_type=frame)")


@dataclass
class ModelConfig:
    """Fields shared by every model.

    Each model subclasses this beside its builder, in `videotag/models/<name>.py`,
    with its hyper-parameters as typed fields (and may give it a `validate(path)`);
    a subclass gives the fields below its reference's defaults.

    Class attribute (not a config key):
        record_type: the records the model reads, "frame" (frame-level
            SequenceExamples) or "video" (video-level Examples of mean features);
            `data.record_type` must match it.

    Attributes:
        name: the registered model.
        head: the classifier head(s).
        input: the input normalisation of the frames (of the mean features for a
            video-level model).
        batch_norm_momentum: momentum of every batch norm's moving statistics
            (`moving = momentum * moving + (1 - momentum) * batch`): 0.99 is
            Keras's default, 0.999 the default `decay` of TF-slim's batch norm,
            which the YT8M starter code, LOUPE and NeXtVLAD use.
    """

    record_type: ClassVar[str] = "frame"

    name: str = ""
    head: HeadConfig = field(default_factory=HeadConfig)
    input: InputConfig = field(default_factory=InputConfig)
    batch_norm_momentum: float = 0.99

    def validate(self, path: str = "model") -> None:
        """The momentum must be in [0, 1) (raises ConfigError naming the key)."""
        if not 0.0 <= self.batch_norm_momentum < 1.0:
            raise ConfigError(f"config key '{path}.batch_norm_momentum' must be in [0, 1)")

    def frozen_layers(self) -> Dict[str, List[str]]:
        """Layers the model's own keys keep fixed in training, as {config key: layer
        path patterns} (e.g. a text encoder's `freeze` flag); the trainer freezes
        them as it does `train.freeze`. None here."""
        return {}


@dataclass
class TrainConfig:
    """Optimisation, distribution, adversarial training and checkpoints.

    Attributes:
        batch_size: global batch size (all replicas of all workers together).
        epochs: passes over the training data.
        steps_per_epoch: 0 means one full pass over the training data (then the
            data is read once per epoch); otherwise the data repeats and an epoch
            is this many steps (required with `distribution: multi_worker`).
        optimizer: the optimizer and its parameters, a component: `adam` (the
            default), `adamw` or `rmsprop` (see `videotag.config.optimizer`), e.g.
            `{type: rmsprop, centered: true}`.
        learning_rate: peak learning rate.
        lr_schedule: "exponential" (x `lr_decay` every `lr_decay_examples`
            examples, staircase; the NeXtVLAD schedule), "cosine" (from the peak
            down to `lr_final_ratio` x peak over `cosine_decay_examples`) or
            "piecewise" (`lr_values[i]` from epoch `lr_boundaries[i-1]`, as
            PaddleVideo's PiecewiseDecay stepped once per epoch).
        lr_decay: multiply the learning rate by this ...
        lr_decay_examples: ... every this many training examples (0: constant).
        cosine_decay_examples: length of the cosine decay in examples, counted
            after the warm-up (0: the whole run, which needs `steps_per_epoch`).
        lr_final_ratio: the cosine schedule ends at this fraction of the peak.
        lr_boundaries: "piecewise": the epochs (counted from 0) at which the
            rate steps to the next of `lr_values`, increasing; PaddleVideo's
            Attention-LSTM: [5, 8].
        lr_values: "piecewise": the rates, one more than `lr_boundaries`
            (`learning_rate` is then not used); PaddleVideo's Attention-LSTM:
            [0.00025, 0.000025, 0.0000025].
        lr_warmup_examples: linear warm-up from 0 to the peak over this many
            examples before either schedule (0: none).
        clip_gradient_norm: clip gradients to this global norm (0: off); the norm
            is that of the gradient of the whole global batch.
        clip_gradient_per_variable: clip the gradient of each variable to
            `clip_gradient_norm` on its own (`tf.clip_by_norm`, as the YT8M starter
            code and its descendants do) instead of their global norm.
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
        jit_compile: compile the training step with XLA (off by default: on a CPU
            XLA's code is slower than TensorFlow's kernels; `benchmarks/gpu.sh`
            measures both on a GPU).
        device_prefetch: batches each GPU holds ahead of the step (copied from
            host memory while the step before runs); 0: the step reads its batch
            from host memory. No effect without a GPU.
        seed: seed of weights init and shuffling.
        eval_before_training: also score the untrained model (a baseline figure).
        checkpoint_every_steps: also checkpoint every this many steps (0: only at
            the end of each epoch).
        keep_checkpoints: checkpoints kept in model_dir/checkpoints.
        tensorboard: write TensorBoard logs to model_dir/logs.
        log_every_steps: steps between TensorBoard points of the training losses.
        freeze: layers kept fixed during training, as shell-style patterns over
            layer paths (`fnmatch`: `title_*`, `nextvlad_rgb`, `context_gating/*`);
            a layer whose path matches is frozen with everything inside it (its
            weights are not trained, its batch norms use their moving statistics).
            A pattern that matches no layer is an error.
        init_from: warm start: a model directory, a checkpoint folder or a
            `.keras` file whose weights are loaded wherever a weight's path and
            shape match (`videotag.training.warm_start`); "" starts from random
            weights. A run that resumes its own checkpoints does not use it.
        ema_decay: keep an exponential moving average of the trained weights,
            `average = ema_decay * average + (1 - ema_decay) * weight` after each
            step (0: off); validation, the final model, export and prediction
            then use the averaged weights, and checkpoints hold both.
        eval_every_steps: also score the validation data every this many
            steps (0: after each epoch only).
        keep_best: keep the checkpoint of the best validation so far by this
            metric (higher is better: `gap`, `map`, `hit_at_1`, `perr`,
            `category_top1`, ...) in `checkpoints/best/`, apart from the
            `keep_checkpoints` newest; "" keeps none.
        early_stopping: stop when a validation metric stops improving (see
            `videotag.config.selection.EarlyStoppingConfig`).
        lr_multipliers: per-layer learning rates, `{pattern: multiplier}` over layer
            paths (as `freeze`): the update of every weight of a matching layer is
            scaled by the multiplier (its learning rate times it, whatever the
            schedule); a later pattern overrides an earlier one for the layers both
            match. E.g. `{title_embedding: 0.1, "title_encoder/transformer": 0.1}`
            fine-tunes a pretrained title encoder at a tenth of the rate.
        lock_stale_seconds: the lock of a run on another host whose heartbeat is
            older than this is taken over (runs on the same host are checked by
            their process); the heartbeat is refreshed every tenth of it.
        stop_timeout_seconds: after SIGTERM or SIGINT, the process ends within
            this many seconds, with or without the checkpoint of the current step.
    """

    batch_size: int = 160
    epochs: int = 5
    steps_per_epoch: int = 0
    optimizer: Annotated[Component, OPTIMIZERS] = OPTIMIZERS.field()
    learning_rate: float = 2e-4
    lr_schedule: str = "exponential"
    lr_decay: float = 0.8
    lr_decay_examples: int = 2_000_000
    cosine_decay_examples: int = 0
    lr_final_ratio: float = 0.0
    lr_boundaries: List[int] = field(default_factory=list)
    lr_values: List[float] = field(default_factory=list)
    lr_warmup_examples: int = 0
    clip_gradient_norm: float = 0.0
    clip_gradient_per_variable: bool = False
    weight_decay: float = 0.0
    fgm_alpha: float = 0.0
    fgm_epsilon: float = 1.0
    distribution: str = "none"
    sync_batch_norm: bool = True
    mixed_precision: str = "none"
    jit_compile: bool = False
    device_prefetch: int = 2
    seed: int = 0
    eval_before_training: bool = False
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 3
    tensorboard: bool = True
    log_every_steps: int = 20
    freeze: List[str] = field(default_factory=list)
    init_from: str = ""
    ema_decay: float = 0.0
    eval_every_steps: int = 0
    keep_best: str = ""
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    lr_multipliers: Dict[str, float] = field(default_factory=dict)
    lock_stale_seconds: float = 600.0
    stop_timeout_seconds: float = 25.0

    def validate(self, path: str = "train") -> None:
        """Checks what the types do not (raises ConfigError naming the key)."""
        for pattern, multiplier in self.lr_multipliers.items():
            if multiplier < 0:
                raise ConfigError(f"config key '{path}.lr_multipliers.{pattern}' is {multiplier}; "
                                  "a learning-rate multiplier must be >= 0")
        engine.check_positive(path, self, ("batch_size",))
        engine.check_choice(f"{path}.distribution", self.distribution, DISTRIBUTIONS)
        engine.check_choice(f"{path}.mixed_precision", self.mixed_precision, MIXED_PRECISION)
        engine.check_choice(f"{path}.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        engine.check_positive(path, self, ("epochs", "keep_checkpoints", "log_every_steps",
                                           "lock_stale_seconds", "stop_timeout_seconds"))
        engine.check_positive(path, self, ("steps_per_epoch", "lr_decay_examples",
                                    "cosine_decay_examples", "lr_warmup_examples",
                                    "checkpoint_every_steps", "clip_gradient_norm",
                                    "weight_decay", "fgm_alpha", "fgm_epsilon",
                                    "device_prefetch"), strict=False)
        if self.fgm_alpha > 0 and self.fgm_epsilon <= 0:
            raise ConfigError(f"config key '{path}.fgm_epsilon' must be positive when "
                              f"'{path}.fgm_alpha' turns FGM on")
        if self.distribution == "multi_worker" and not self.steps_per_epoch:
            raise ConfigError(
                f"config key '{path}.steps_per_epoch' must be set with {path}.distribution="
                "multi_worker: the workers read different shards and must take the same "
                "number of steps per epoch"
            )
        if self.lr_schedule == "cosine" and not self.cosine_decay_examples \
                and not self.steps_per_epoch:
            raise ConfigError(
                f"config key '{path}.cosine_decay_examples' must be set for lr_schedule=cosine "
                f"when {path}.steps_per_epoch is 0 (the length of the run is then unknown)"
            )
        if not 0.0 <= self.lr_final_ratio <= 1.0:
            raise ConfigError(f"config key '{path}.lr_final_ratio' must be in [0, 1]")
        self._validate_piecewise(path)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"config key '{path}.ema_decay' must be in [0, 1) (0: off)")
        engine.check_positive(path, self, ("eval_every_steps",), strict=False)
        if self.keep_best:
            check_metric_name(self.keep_best, f"{path}.keep_best")

    def _validate_piecewise(self, path: str) -> None:
        bounds, values = self.lr_boundaries, self.lr_values
        if self.lr_schedule != "piecewise":
            if bounds or values:
                raise ConfigError(f"config keys '{path}.lr_boundaries' and '{path}.lr_values' "
                                  f"need {path}.lr_schedule=piecewise")
            return
        if len(values) != len(bounds) + 1:
            raise ConfigError(f"config key '{path}.lr_values' must hold one rate more than "
                              f"'{path}.lr_boundaries' ({len(values)} and {len(bounds)} given)")
        if any(b <= 0 for b in bounds) or sorted(set(bounds)) != bounds:
            raise ConfigError(f"config key '{path}.lr_boundaries' must be increasing positive "
                              "epochs")
        if any(v <= 0 for v in values):
            raise ConfigError(f"config key '{path}.lr_values' must be positive rates")


@dataclass
class EvalConfig:
    """Evaluation settings.

    Attributes:
        batch_size: videos per evaluation batch.
        top_k: k of GAP@k, mAP and Hit@k (20 for YT8M).
        threshold: score at or above which a tag counts as predicted, for
            precision / recall / F1.
        hit_at: the k of the Hit@k figures reported besides Hit@top_k (any k,
            whatever `top_k`; MultimodalVideoTag reports Hit@1 and Hit@2).
    """

    batch_size: int = 256
    top_k: int = 20
    threshold: float = 0.5
    hit_at: List[int] = field(default_factory=lambda: [1])

    def validate(self, path: str = "eval") -> None:
        """Positive batch size, top_k and Hit@k."""
        engine.check_positive(path, self, ("batch_size", "top_k"))
        if not self.hit_at or any(k <= 0 for k in self.hit_at):
            raise ConfigError(f"config key '{path}.hit_at' must be positive ks, e.g. [1, 2, 5]")


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

    def validate(self, path: str = "") -> None:
        """Checks the rules that join sections (each section checks its own)."""
        d = self.data
        kind = type(self.model).record_type
        if d.record_type != kind:
            from videotag.registry import models_reading  # late: the registry imports models

            others = ", ".join(models_reading(d.record_type)) or "none"
            raise ConfigError(
                f"config key 'data.record_type' is {d.record_type} but {self.model.name} is a "
                f"{RECORD_KINDS[kind]} model: set data.record_type={kind}, or use a "
                f"{RECORD_KINDS[d.record_type]} model ({others})")
        demo = not (d.train_data_pattern or d.eval_data_pattern)  # brings its categories
        if "category" in self.model.head.tasks and d.num_categories <= 0 and not demo:
            raise ConfigError(
                "config key 'model.head.tasks' has 'category' but 'data.num_categories' is 0; "
                "set it to the number of categories"
            )
        if d.segment_labels and list(self.model.head.tasks) != ["tags"]:
            raise ConfigError(
                "config key 'data.segment_labels' trains on segment tags alone: "
                f"'model.head.tasks' must be [tags], not {list(self.model.head.tasks)}"
            )
        t, tasks = self.train, self.model.head.tasks
        if t.keep_best:
            check_metric_fits(t.keep_best, "train.keep_best", tasks, self.eval.hit_at,
                              d.segment_labels)
        if t.early_stopping.patience:
            check_metric_fits(t.early_stopping.metric, "train.early_stopping.metric", tasks,
                              self.eval.hit_at, d.segment_labels)

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict of the config (YAML-serialisable, the form `from_dict` reads)."""
        return engine.to_dict(self)

    def save(self, path) -> None:
        """Writes the config as YAML; `load(path)` reads it back unchanged."""
        engine.save_yaml(self, path)


