"""Reading a run's `Config`: the packaged configs by name, YAML files, overrides, dicts.

Example:
    cfg = videotag.config.load("nextvlad", ["train.batch_size=32"])
    model = videotag.build_model(cfg)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

from videotag.config import engine
from videotag.config.schema import Config, DataConfig, EvalConfig, ExportConfig, TrainConfig
from videotag.errors import ConfigError

# The YAML configs ship inside the package (package data), so an installed wheel has them.
CONFIG_DIR = resources.files("videotag") / "configs"

# The sections besides `model`, whose class depends on the model.
SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig,
            "export": ExportConfig}


def config_names() -> List[str]:
    """Names of the configs that ship with the package ("nextvlad", "nextvlad_demo", ...)."""
    return sorted(p.name[: -len(".yaml")] for p in CONFIG_DIR.iterdir()
                  if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str):
    """Maps a config name ("NEXTVLAD", "nextvlad_demo") or a file path to a YAML file.

    A name is looked up among the configs packaged with videotag (`config_names()`).
    Returns a `pathlib.Path`, the path itself for a file on another file system of
    TensorFlow (`gs://...`, `ram://...`), or, for a packaged config, an
    `importlib.resources` Traversable.

    Raises:
        ConfigError: no such file, or no packaged config of that name (the message
            lists the packaged ones).
    """
    if "://" in str(name_or_path):  # a file on another file system of TensorFlow
        import tensorflow as tf

        if not tf.io.gfile.exists(str(name_or_path)):
            raise ConfigError(f"config file not found: {name_or_path}")
        return str(name_or_path)
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
    overrides: engine.Overrides = None,
    model_name: Optional[str] = None,
) -> Config:
    """Builds a Config from defaults, a YAML file and overrides.

    Args:
        name_or_path: a YAML path, or a config name such as "nextvlad" or
            "nextvlad_demo" that maps to the packaged `videotag/configs/<name>.yaml`.
            None: dataclass defaults only.
        overrides: `["train.batch_size=32", ...]` (values parsed as YAML) or a
            nested dict, applied after the file (see
            `videotag.config.engine.parse_overrides`).
        model_name: the model to configure when the file does not name one.

    Returns:
        A validated `Config`.

    Raises:
        ConfigError: unknown key, wrong type or unknown model, naming the dotted key.
    """
    raw: Dict[str, Any] = {}
    if name_or_path is not None:
        raw = engine.read_yaml(resolve_config_path(name_or_path))
    engine.apply_overrides(raw, overrides)
    return from_dict(raw, model_name=model_name)


def from_dict(raw: Dict[str, Any], model_name: Optional[str] = None) -> Config:
    """Validates a nested dict (as read from YAML) into a Config.

    Args:
        raw: the sections `data`, `model`, `train`, `eval`, `export` (each optional).
        model_name: the model to configure when `model.name` is not set; when both
            are set they must agree.

    Raises:
        ConfigError: as `load`.
    """
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
    unknown = set(raw) - set(SECTIONS) - {"model"}
    if unknown:
        raise ConfigError(
            f"unknown config key '{sorted(unknown)[0]}' (valid sections: data, model, "
            "train, eval, export)"
        )
    values = {key: engine.build(cls, raw.get(key), key) for key, cls in SECTIONS.items()}
    values["model"] = engine.build(model_cls, dict(model_raw, name=str(name).upper()), "model")
    cfg = Config(**values)
    cfg.validate()
    return cfg
