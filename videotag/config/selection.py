"""Checkpoint selection keys: the validation metric that `train.keep_best` and
`train.early_stopping` follow, and the `train.early_stopping` section.

Every metric they take is higher-is-better (mode max): the tag metrics of
`videotag.evaluation.StreamingEvaluator` (`gap`, `map`, `hit_at_1`, `perr`, ...,
and `hit_at_<k>` for each k of `eval.hit_at`), for a model with a `category`
head, `category_top1` and `category_top5`, and for a run on rated segments
(`data.segment_labels`), whose validation is the segment metric, `segment_map`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from videotag.config import engine
from videotag.errors import ConfigError

TAG_METRICS = ("gap", "map", "map_all_classes", "hit_at_1", "hit_at_k", "perr",
               "precision_micro", "recall_micro", "f1_micro",
               "precision_macro", "recall_macro", "f1_macro")
CATEGORY_METRICS = ("category_top1", "category_top5")
SEGMENT_METRICS = ("segment_map",)  # validation of a run on rated segments
_HIT_AT = re.compile(r"^hit_at_(\d+)$")


@dataclass
class EarlyStoppingConfig:
    """Stop training when a validation metric stops improving.

    Attributes:
        metric: the validation metric followed (higher is better).
        patience: stop after this many validations in a row without an
            improvement (0: early stopping off). Validations run after every
            epoch and every `train.eval_every_steps` steps.
        min_delta: an improvement must exceed the best value so far by more
            than this.
    """

    metric: str = "gap"
    patience: int = 0
    min_delta: float = 0.0

    def validate(self, path: str = "train.early_stopping") -> None:
        """Patience and min_delta not negative, a known metric name."""
        engine.check_positive(path, self, ("patience", "min_delta"), strict=False)
        check_metric_name(self.metric, engine.join(path, "metric"))


def check_metric_name(name: str, path: str) -> None:
    """Raises ConfigError naming `path` when `name` is no selection metric."""
    if name in TAG_METRICS + CATEGORY_METRICS + SEGMENT_METRICS or _HIT_AT.match(name):
        return
    raise ConfigError(f"config key '{path}' is '{name}'; valid: "
                      f"{', '.join(TAG_METRICS + CATEGORY_METRICS + SEGMENT_METRICS)}, "
                      "hit_at_<k>")


def check_metric_fits(name: str, path: str, tasks, hit_at, segments: bool = False) -> None:
    """The metric `name` is one the run's validation gives: a run on rated segments
    (`segments`) gives `segment_map` alone; otherwise a tag metric needs the `tags`
    head (and `hit_at_<k>` a k in `eval.hit_at`), a category metric the `category`
    head.

    Raises:
        ConfigError: naming `path` and what is missing.
    """
    if segments != (name in SEGMENT_METRICS):
        raise ConfigError(
            f"config key '{path}' is '{name}' but " +
            ("a run on rated segments (data.segment_labels) is validated by segment_map"
             if segments else "segment_map is the validation of a run on rated segments "
             "(data.segment_labels)"))
    if segments:
        return
    match = _HIT_AT.match(name)
    if name in CATEGORY_METRICS:
        if "category" not in tasks:
            raise ConfigError(f"config key '{path}' is '{name}' but the model has no category "
                              "head (model.head.tasks)")
        return
    if "tags" not in tasks:
        raise ConfigError(f"config key '{path}' is '{name}' but the model has no tags head "
                          "(model.head.tasks)")
    if match and int(match.group(1)) != 1 and int(match.group(1)) not in hit_at:
        raise ConfigError(f"config key '{path}' is '{name}' but eval.hit_at is {list(hit_at)} "
                          f"(add {match.group(1)} to it)")
