"""Model registry: `@register_model("NAME", ConfigClass)`, `build_model`, `list_models`.

Adding a model is one file in `videotag/models/` that registers itself, one import
line in `videotag/models/__init__.py` and one YAML in `videotag/configs/`. Models
are components (`videotag.config.components`) whose parameters are their
`ModelConfig` subclass, the `model:` section of a config.
"""

from __future__ import annotations

from typing import Callable, List, Type

from videotag.config.components import Registry

MODELS = Registry("model", upper=True)


def register_model(name: str, config_cls: Type) -> Callable:
    """Decorator registering `builder(cfg) -> keras.Model` under `name`.

    Args:
        name: upper-case model name, e.g. "NEXTVLAD".
        config_cls: the model's `ModelConfig` subclass (its typed `model:` section).

    Raises:
        ValueError: `name` is registered twice.
    """
    return MODELS.register(name, config_cls)


def model_config_class(name: str) -> Type:
    """The `ModelConfig` subclass of a registered model.

    Raises:
        ConfigError: unknown model, listing the registered ones.
    """
    _import_models()
    return MODELS.params_class(name, "model.name")


def build_model(cfg):
    """Builds the Keras model that `cfg.model.name` names, from the whole config
    (its batch norms with `model.batch_norm_momentum`)."""
    from videotag.models.interface import set_batch_norm_momentum

    _import_models()
    model = MODELS.builder(cfg.model.name, "model.name")(cfg)
    return set_batch_norm_momentum(model, getattr(cfg.model, "batch_norm_momentum", None))


def list_models() -> List[str]:
    """Names of all registered models, sorted."""
    _import_models()
    return MODELS.names()


def models_reading(record_type: str) -> List[str]:
    """Names of the registered models that read `record_type` records ("frame" or
    "video": their `ModelConfig.record_type`), sorted."""
    return [name for name in list_models()
            if MODELS.params_class(name, "model.name").record_type == record_type]


def _import_models() -> None:
    import videotag.models  # noqa: F401  (registers every model on import)
