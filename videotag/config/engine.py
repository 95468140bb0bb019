"""The configuration engine: typed dataclasses from YAML and dotted `key=value` overrides.

It knows nothing of videotag's sections; any dataclass tree can be read with it:

    raw = read_yaml("run.yaml")
    apply_overrides(raw, ["train.batch_size=32", "model.head.type=moe"])
    cfg = build(MyConfig, raw)

Rules:
- every key of the mapping must be a field of the dataclass; values are checked
  against the field's type hint (`bool`, `int`, `float`, `str`, `Any`, `List[T]`,
  `Dict[str, T]` and nested dataclasses). An int is accepted for a float, a
  float without fraction for an int, a string such as "1e-3" for a float (YAML
  1.1 reads it as a string);
- a field typed `Annotated[T, reader]`, where `reader` has a method
  `read(value, path) -> T`, is read by that reader (components chosen by name,
  see `videotag.config.components`);
- a dataclass may define a classmethod `upgrade_config(raw, path) -> raw` that
  rewrites keys of earlier versions before the keys are checked, and a method
  `validate(path)` for the rules types alone do not state; `build` calls both;
- every error is a `ConfigError` naming the dotted key, e.g. `model.head.type`
  or `data.feature_sizes[1]`.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Dict, Iterator, Mapping, Sequence, Tuple, Union

import yaml

from videotag.errors import ConfigError

Overrides = Union[Sequence[str], Mapping[str, Any], None]


def join(path: str, key: str) -> str:
    """The dotted key of `key` under `path` ("" is the top level)."""
    return f"{path}.{key}" if path else str(key)


def build(cls, raw: Any, path: str = "", owner: str = ""):
    """Builds the dataclass `cls` from a mapping, checking every key and type.

    Args:
        cls: a dataclass type.
        raw: a mapping of its field names to values (as read from YAML); None reads
            as an empty mapping, so every field keeps its default.
        path: the dotted key of `raw` in the whole config, for messages ("" for the
            top level).
        owner: what the keys belong to, for the message about an unknown key (e.g.
            "fusion gated"); default: the dotted key.

    Returns:
        An instance of `cls`, validated by its `validate(path)` when it has one.

    Raises:
        ConfigError: `raw` is not a mapping, a key is unknown (the message lists
            the valid ones), a value has the wrong type, or `validate` fails.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config key '{path}' expects a mapping, got {raw!r}")
    upgrade = getattr(cls, "upgrade_config", None)
    if upgrade is not None:
        raw = upgrade(dict(raw), path)
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            where = owner or (f"'{path}'" if path else "the config")
            raise ConfigError(
                f"unknown config key '{join(path, key)}' (valid keys of {where}: "
                f"{', '.join(sorted(names))})"
            )
    obj = cls(**{k: coerce(hints[k], v, join(path, k)) for k, v in raw.items()})
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def coerce(hint, value: Any, path: str):
    """`value` checked (and where lossless, converted) against the type hint `hint`.

    Raises:
        ConfigError: naming `path` and the expected type.
    """
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        inner, *extras = typing.get_args(hint)
        for extra in extras:
            if hasattr(extra, "read"):
                return extra.read(value, path)
        return coerce(inner, value, path)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    if origin in (list, typing.List):
        (item,) = typing.get_args(hint) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{path}' expects a list, got {value!r}")
        return [coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):
        _, item = typing.get_args(hint) or (str, Any)
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{path}' expects a mapping, got {value!r}")
        return {k: coerce(item, v, join(path, k)) for k, v in value.items()}
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


def check_choice(path: str, value: Any, valid: Sequence) -> None:
    """For `validate` methods: raises ConfigError naming `path` when `value` is not
    one of `valid` (listed in the message)."""
    if value not in valid:
        raise ConfigError(f"config key '{path}' is '{value}'; valid: {', '.join(map(str, valid))}")


def check_positive(path: str, obj: Any, keys: Sequence[str], strict: bool = True) -> None:
    """For `validate` methods: raises ConfigError naming `path.key` for the first of
    `keys` whose attribute of `obj` is not positive (`strict`) or is negative (not
    `strict`)."""
    for key in keys:
        value = getattr(obj, key)
        if value <= 0 if strict else value < 0:
            rule = "must be positive" if strict else "must not be negative"
            raise ConfigError(f"config key '{join(path, key)}' {rule}")


def parse_overrides(overrides: Overrides) -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) pairs of overrides.

    Args:
        overrides: `["train.batch_size=32", ...]` (each value parsed as YAML, so
            `[rgb]` is a list and `1e-3` a float; text that is not YAML stays a
            string; an empty value is "") or a nested mapping
            (`{"train": {"batch_size": 32}}`), or None.

    Raises:
        ConfigError: an item without "=".
    """
    if not overrides:
        return
    if isinstance(overrides, Mapping):
        yield from flatten(overrides)
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


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, leaf value) pairs of a nested mapping, depth first."""
    for key, value in tree.items():
        path = join(prefix, key)
        if isinstance(value, Mapping):
            yield from flatten(value, path)
        else:
            yield path, value


def set_dotted(tree: Dict[str, Any], key: str, value: Any) -> None:
    """Sets `tree[a][b][c] = value` for the key "a.b.c", making missing sections.

    Raises:
        ConfigError: a section on the way holds a value that is not a mapping.
    """
    parts = key.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{'.'.join(parts[: i + 1])}' holds {child!r}, "
                              "not a section of keys")
        node = child
    node[parts[-1]] = value


def apply_overrides(tree: Dict[str, Any], overrides: Overrides) -> Dict[str, Any]:
    """Applies `overrides` (see `parse_overrides`) to `tree` in place and returns it."""
    for key, value in parse_overrides(overrides):
        set_dotted(tree, key, value)
    return tree


def read_yaml(source) -> Dict[str, Any]:
    """The top-level mapping of a YAML file (empty for an empty file).

    Args:
        source: a path (on any file system of TensorFlow), or anything with
            `read_text()` such as an `importlib.resources` Traversable.

    Raises:
        ConfigError: the text is not YAML or not a mapping, naming the file.
    """
    if isinstance(source, (str, os.PathLike)):  # on any file system of TensorFlow
        import tensorflow as tf

        with tf.io.gfile.GFile(os.fspath(source), "rb") as f:
            text = f.read().decode("utf-8")
    else:
        text = source.read_text(encoding="utf-8")
    return parse_yaml(text, source)


def parse_yaml(text: str, source: Any = "<text>") -> Dict[str, Any]:
    """The top-level mapping of YAML `text` read from `source` (named in errors).

    Raises:
        ConfigError: the text is not YAML or not a mapping, naming `source`.
    """
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return loaded


def to_dict(obj: Any) -> Any:
    """Plain YAML-serialisable data of a built config: `build(type(obj), to_dict(obj))`
    gives `obj` back. Objects with a `to_config()` method give its result."""
    if hasattr(obj, "to_config"):
        return obj.to_config()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def dump_yaml(obj: Any) -> str:
    """`to_dict(obj)` as YAML text, keys in field order."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def save_yaml(obj: Any, path: str | os.PathLike) -> None:
    """Writes `to_dict(obj)` as YAML, keys in field order (UTF-8), on any file system
    of TensorFlow; the file appears only when complete (`videotag.files`)."""
    from videotag import files

    files.write_text(os.fspath(path), dump_yaml(obj), what="config file")
