"""Typed configuration: dataclasses read from YAML files and `key=value` overrides.

- `videotag.config.engine`: the engine (any dataclass tree from YAML, dotted
  overrides, errors naming the dotted key), used by the run config and by
  `videotag.extraction.config`;
- `videotag.config.components`: components chosen by name with typed parameters
  (frame aggregators, fusions, text encoders, models);
- `videotag.config.schema`, `videotag.config.head` and `videotag.config.inputs`: the
  sections of a run (`model.head`, `model.input`); each model's own section lives
  beside the model, in `videotag/models/<name>.py`;
- `videotag.config.loading`: `load` (packaged config names, YAML files,
  overrides) and `from_dict`.

Unknown keys and values of the wrong type raise `ConfigError` naming the key's
dotted path, e.g. `model.cluster_size`.

Example:
    cfg = videotag.config.load("nextvlad", ["train.batch_size=32"])
    model = videotag.build_model(cfg)
"""

from videotag.config import engine
from videotag.config.components import Component, Registry
from videotag.config.head import HEAD_TYPES, TASKS, HeadConfig
from videotag.config.inputs import NORMALIZATIONS, InputConfig
from videotag.config.loading import CONFIG_DIR, config_names, from_dict, load, resolve_config_path
from videotag.config.schema import (
    DISTRIBUTIONS,
    LR_SCHEDULES,
    MIXED_PRECISION,
    Config,
    DataConfig,
    EvalConfig,
    ExportConfig,
    ModelConfig,
    TrainConfig,
)

__all__ = [
    "CONFIG_DIR",
    "DISTRIBUTIONS",
    "HEAD_TYPES",
    "LR_SCHEDULES",
    "MIXED_PRECISION",
    "NORMALIZATIONS",
    "TASKS",
    "Component",
    "Config",
    "DataConfig",
    "EvalConfig",
    "ExportConfig",
    "HeadConfig",
    "InputConfig",
    "ModelConfig",
    "Registry",
    "TrainConfig",
    "config_names",
    "engine",
    "from_dict",
    "load",
    "resolve_config_path",
]
