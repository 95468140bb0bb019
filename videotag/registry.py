"""Model registry: `@register_model("NAME", ConfigClass)`, `build_model`, `list_models`.

Adding a model is one file in `videotag/models/` that registers itself, one import
line in `videotag/models/__init__.py` and one YAML in `configs/`.
"""

from __future__ import annotations

from typing import Callable, Dict, List, NamedTuple, Type

from videotag.errors import ConfigError


class _Entry(NamedTuple):
    builder: Callable
    config_cls: Type


_MODELS: Dict[str, _Entry] = {}


def register_model(name: str, config_cls: Type) -> Callable:
    """Decorator registering `builder(cfg) -> keras.Model` under `name`.

    Args:
        name: upper-case model name, e.g. "NEXTVLAD".
        config_cls: the model's `ModelConfig` subclass (its typed `model:` section).
    """
    key = name.upper()

    def wrap(builder: Callable) -> Callable:
        if key in _MODELS:
            raise ValueError(f"model {key} is registered twice")
        _MODELS[key] = _Entry(builder, config_cls)
        return builder

    return wrap


def _entry(name: str) -> _Entry:
    _import_models()
    key = str(name).upper()
    if key not in _MODELS:
        raise ConfigError(
            f"unknown model '{name}' (valid models: {', '.join(list_models())})"
        )
    return _MODELS[key]


def model_config_class(name: str) -> Type:
    """The `ModelConfig` subclass of a registered model."""
    return _entry(name).config_cls


def build_model(cfg):
    """Builds the Keras model that `cfg.model.name` names, from the whole config."""
    return _entry(cfg.model.name).builder(cfg)


def list_models() -> List[str]:
    """Names of all registered models, sorted."""
    _import_models()
    return sorted(_MODELS)


def _import_models() -> None:
    import videotag.models  # noqa: F401  (registers every model on import)
