"""Components chosen by name in a config: a registered `type` and its typed parameters.

Frame aggregators, fusions, text encoders and models are components: a `Registry`
maps each name to a builder and to the dataclass of its parameters. In YAML a
component is written as a mapping of its type and parameters, or as its name alone:

    fusion: {type: gated, hidden_size: 1024}   # gated, hidden_size 1024, other defaults
    fusion: gated                              # gated with its defaults
    fusion: {hidden_size: 1024}                # the registry's default type

and a config dataclass declares the field with the registry as its reader (see
`videotag.config.engine`):

    fusion: Annotated[Component, FUSIONS] = FUSIONS.field()

The parameters are built by the engine, so each key is checked (an unknown key is
named with its dotted path and the valid keys are listed), each value typed, the
defaults of the parameter dataclass filled in, and its `validate(path)` run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar

from videotag.config import engine
from videotag.errors import ConfigError

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Component:
    """A registered component as a config holds it.

    Attributes:
        type: its registered name (upper case for registries of upper-case names).
        params: an instance of its parameter dataclass.
    """

    type: str
    params: Any

    def to_config(self) -> Dict[str, Any]:
        """The YAML form, `{type: NAME, <param>: value, ...}`."""
        return {"type": self.type, **engine.to_dict(self.params)}


class Registry:
    """Components of one kind by name, each with a builder and a parameter dataclass.

    Args:
        kind: what the components are, for messages ("fusion", "text encoder").
        default: the type of a component written without one (None: required).
        upper: names are upper case ("NEXTVLAD"); otherwise lower case ("gated").
            Names are matched in either case and stored in this one.
    """

    def __init__(self, kind: str, default: Optional[str] = None, upper: bool = False):
        self.kind = kind
        self.upper = upper
        self.default = self.normalize(default) if default else None
        self._entries: Dict[str, Tuple[Callable, type]] = {}

    def normalize(self, name: str) -> str:
        """`name` in the registry's case."""
        return str(name).upper() if self.upper else str(name).lower()

    def register(self, name: str, params_cls: type) -> Callable[[F], F]:
        """Decorator registering `builder(params, *args, **kwargs)` under `name`.

        Args:
            name: the component's name.
            params_cls: the dataclass of its parameters; its field defaults are
                the component's defaults.

        Raises:
            ValueError: `name` is registered twice, or `params_cls` is no dataclass.
        """
        key = self.normalize(name)
        if not dataclasses.is_dataclass(params_cls):
            raise ValueError(f"{self.kind} {key}: parameters must be a dataclass")

        def wrap(builder: F) -> F:
            if key in self._entries:
                raise ValueError(f"{self.kind} {key} is registered twice")
            self._entries[key] = (builder, params_cls)
            return builder

        return wrap

    def names(self) -> List[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def _entry(self, name: str, path: str) -> Tuple[Callable, type]:
        key = self.normalize(name)
        if key not in self._entries:
            where = f"config key '{path}' names an " if path else "an "
            raise ConfigError(f"{where}unknown {self.kind} '{name}' "
                              f"(valid: {', '.join(self.names())})")
        return self._entries[key]

    def params_class(self, name: str, path: str = "") -> type:
        """The parameter dataclass of `name`.

        Raises:
            ConfigError: `name` is not registered, listing the registered names.
        """
        return self._entry(name, path)[1]

    def builder(self, name: str, path: str = "") -> Callable:
        """The builder of `name` (raises like `params_class`)."""
        return self._entry(name, path)[0]

    def read(self, value: Any, path: str = "") -> Component:
        """The component that a config value describes, its parameters checked.

        Args:
            value: a name; a mapping with `type` (optional when the registry has a
                default) and parameters; None (the default type with its
                defaults); or a `Component` (returned as it is).
            path: the value's dotted key, for messages.

        Raises:
            ConfigError: unknown type (the message lists the registered names),
                unknown parameter (lists the valid ones), a value of the wrong
                type or one its parameter dataclass rejects, each naming its key.
        """
        if isinstance(value, Component):
            return value
        if value is None:
            value = {}
        if isinstance(value, str):
            name, params, type_key = value, {}, path
        elif isinstance(value, Mapping):
            params = dict(value)
            name = params.pop("type", self.default)
            type_key = engine.join(path, "type")
            if name is None:
                raise ConfigError(f"config key '{type_key}' is not set (valid: "
                                  f"{', '.join(self.names())})")
        else:
            raise ConfigError(f"config key '{path}' expects a {self.kind} name or a mapping "
                              f"with its type and parameters, got {value!r}")
        params_cls = self.params_class(str(name), type_key)
        key = self.normalize(name)
        return Component(key, engine.build(params_cls, params, path, owner=f"{self.kind} {key}"))

    def from_attributes(self, name: str, source: Any, path: str = "") -> Component:
        """`name` with the parameters taken from the attributes of `source` that bear
        their names (a model whose own config fields are its pooling's parameters)."""
        fields = dataclasses.fields(self.params_class(name, path))
        return self.read({"type": name, **{f.name: getattr(source, f.name) for f in fields}},
                         path)

    def build(self, component: Component, *args, **kwargs):
        """Calls the builder of `component.type` with its parameters first."""
        return self.builder(component.type)(component.params, *args, **kwargs)

    def field(self, name: Optional[str] = None) -> Any:
        """A dataclass field whose default is `name` (default: the registry's
        default type) with its default parameters."""
        return dataclasses.field(default_factory=lambda: self.read(name or self.default))


def merge_params(raw: Dict[str, Any], key: str, params_key: str) -> Dict[str, Any]:
    """For `upgrade_config` methods: reads the form of videotag 0.1, a component's
    name in `raw[key]` and its parameters beside it in `raw[params_key]`, as the
    component `raw[key] = {type: name, **params}`.

    Returns:
        A new mapping (`raw` itself when it holds no `params_key`, or when the
        values are not of the old form: the engine then names the unknown key).
    """
    if params_key not in raw:
        return raw
    params, component = raw[params_key], raw.get(key)
    if not isinstance(params, (Mapping, type(None))) or \
            not isinstance(component, (str, Mapping, type(None))):
        return raw
    raw = {k: v for k, v in raw.items() if k != params_key}
    if isinstance(component, str):
        component = {"type": component}
    raw[key] = {**(component or {}), **(params or {})}
    return raw
