"""Which records a run reads: the user's shards, or the built-in demo data."""

from __future__ import annotations

import sys

from videotag.config import Config
from videotag.errors import ConfigError


def uses_demo_data(cfg: Config) -> bool:
    """True when the config names no data at all (then the demo data is used)."""
    return not (cfg.data.train_data_pattern or cfg.data.eval_data_pattern)


def resolve_data(cfg: Config, verbose: bool = True) -> Config:
    """Fills the data section with the demo dataset when it names no data, and checks
    that the label files define the configured class counts.

    The demo data is generated on first use (a few seconds) and reused; for
    video-level models (`data.record_type: video`) its video-level form
    (`videotag.data.demo_video`). Its class count comes from its label file and
    replaces `data.num_classes`; its segment classes are those of the demo unless
    `data.segment_label_file` is set (so a model trained on whole videos is scored
    on the same segment classes as one trained on segments); when the model is
    trained on categories (`model.head.tasks` has `category`) and
    `data.num_categories` is 0, the demo's category count is set.

    Raises:
        DataError: `data.label_file` (or `data.category_file`) is missing or defines
            another number of classes than `data.num_classes` (`data.num_categories`).
    """
    from videotag.data.labels import check_label_files

    if not uses_demo_data(cfg):
        check_label_files(cfg.data)
        return cfg
    from videotag.data.demo import ensure_demo_data

    demo = ensure_demo_data(verbose=verbose)
    if cfg.data.record_type == "video":
        from videotag.data.demo_video import FEATURE_NAMES, FEATURE_SIZES, ensure_video_demo_data

        if list(cfg.data.feature_names) != FEATURE_NAMES:
            raise ConfigError(
                f"config key 'data.feature_names' is {cfg.data.feature_names} but the "
                f"video-level demo data has {FEATURE_NAMES} (set data.feature_names and "
                f"data.feature_sizes to {FEATURE_NAMES} and {FEATURE_SIZES})")
        demo = ensure_video_demo_data(demo, verbose=verbose)
    cfg.data.train_data_pattern = demo.train_pattern
    cfg.data.eval_data_pattern = demo.eval_pattern
    cfg.data.label_file = demo.label_file
    cfg.data.num_classes = demo.num_classes
    if not cfg.data.segment_label_file:
        cfg.data.segment_label_file = demo.segment_label_file
    if "category" in cfg.model.head.tasks and not cfg.data.num_categories:
        cfg.data.num_categories = demo.num_categories
    if verbose:
        print(
            f"using the demo data: {demo.num_train} training and {demo.num_eval} validation "
            f"videos, {demo.num_classes} classes ({demo.root})",
            file=sys.stderr,
        )
    return cfg
