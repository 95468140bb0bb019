"""The configuration engine and the components chosen by name, on dataclasses of their own."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Dict, List

import pytest

from videotag.config import engine
from videotag.config.components import Component, Registry, merge_params
from videotag.errors import ConfigError

SHAPES = Registry("shape", default="square")


@dataclass
class SquareParams:
    side: float = 1.0


@dataclass
class CircleParams:
    radius: float = 2.0
    filled: bool = True

    def validate(self, path: str) -> None:
        engine.check_positive(path, self, ("radius",))


SHAPES.register("square", SquareParams)(lambda p, scale: (p.side * scale) ** 2)
SHAPES.register("circle", CircleParams)(lambda p, scale: 3 * (p.radius * scale) ** 2)


@dataclass
class Inner:
    size: int = 3
    names: List[str] = field(default_factory=lambda: ["a"])
    seen: List[str] = field(default_factory=list)

    def validate(self, path: str) -> None:
        self.seen.append(path)  # records the dotted key the engine passes
        if self.size > 10:
            raise ConfigError(f"config key '{path}.size' must be at most 10")


@dataclass
class Outer:
    rate: float = 0.5
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    table: Dict[str, int] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)
    shape: Annotated[Component, SHAPES] = SHAPES.field()
    layers: Dict[str, Annotated[Component, SHAPES]] = field(default_factory=dict)

    @classmethod
    def upgrade_config(cls, raw, path):
        return merge_params(raw, "shape", "shape_params")


def test_build_types_values_and_fills_defaults():
    obj = engine.build(Outer, {"rate": 1, "inner": {"names": ["x", "y"]}, "table": {"k": 2.0},
                               "extra": {"anything": [1, "b"]}})
    assert obj == Outer(rate=1.0, inner=Inner(3, ["x", "y"], ["inner"]), table={"k": 2},
                        extra={"anything": [1, "b"]}, shape=Component("square", SquareParams()))
    assert isinstance(obj.rate, float) and isinstance(obj.table["k"], int)
    assert engine.build(Outer, {"rate": "1e-3"}).rate == 1e-3  # YAML 1.1 reads 1e-3 as str
    assert engine.build(Outer, None) == Outer()  # absent sections keep their defaults


@pytest.mark.parametrize("raw, message", [
    ({"rate": "fast"}, "config key 'top.rate' expects float, got str 'fast'"),
    ({"flag": 1}, "config key 'top.flag' expects bool, got int 1"),
    ({"inner": {"size": 2.5}}, "config key 'top.inner.size' expects int, got float 2.5"),
    ({"inner": {"names": ["a", 3]}}, r"config key 'top.inner.names\[1\]' expects str"),
    ({"inner": {"names": "a"}}, "config key 'top.inner.names' expects a list, got 'a'"),
    ({"inner": 4}, "config key 'top.inner' expects a mapping, got 4"),
    ({"table": {"k": "v"}}, "config key 'top.table.k' expects int, got str 'v'"),
    ({"inner": {"colour": 1}},
     r"unknown config key 'top.inner.colour' \(valid keys of 'top.inner': names, seen, size\)"),
    ({"inner": {"size": 11}}, "config key 'top.inner.size' must be at most 10"),
])
def test_errors_name_the_dotted_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        engine.build(Outer, raw, "top")


def test_unknown_key_at_the_top_level_lists_the_fields():
    with pytest.raises(ConfigError, match=r"unknown config key 'nope' \(valid keys of the "
                                          "config: extra, flag, inner, layers, rate, shape"):
        engine.build(Outer, {"nope": 1})
    with pytest.raises(ConfigError, match=r"valid keys of the shape settings: extra, flag"):
        engine.build(Outer, {"nope": 1}, owner="the shape settings")


def test_overrides_are_parsed_as_yaml_and_set_by_dotted_key():
    pairs = list(engine.parse_overrides(["a.b=3", "a.c=[x, 1]", "d=1e-3", "e=", "f=: {",
                                         " g.h = true"]))
    assert pairs == [("a.b", 3), ("a.c", ["x", 1]), ("d", "1e-3"), ("e", ""), ("f", ": {"),
                     ("g.h", True)]
    assert list(engine.parse_overrides({"a": {"b": 1, "c": {"d": 2}}, "e": 3})) == [
        ("a.b", 1), ("a.c.d", 2), ("e", 3)]
    assert list(engine.parse_overrides(None)) == []
    with pytest.raises(ConfigError, match="override 'a.b' is not of the form key=value"):
        list(engine.parse_overrides(["a.b"]))

    tree = {"a": {"b": 1}, "s": 5}
    engine.apply_overrides(tree, ["a.c.d=2", "a.b=7", "x=y"])
    assert tree == {"a": {"b": 7, "c": {"d": 2}}, "s": 5, "x": "y"}
    with pytest.raises(ConfigError, match="config key 's' holds 5, not a section of keys"):
        engine.set_dotted(tree, "s.t", 1)


def test_overrides_then_build():
    raw = engine.apply_overrides({"inner": {"size": 1}}, ["inner.size=4", "shape.radius=3",
                                                          "shape.type=circle"])
    obj = engine.build(Outer, raw)
    assert obj.inner.size == 4 and obj.shape == Component("circle", CircleParams(3.0))


def test_read_yaml(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("inner:\n  size: 4\n")
    assert engine.read_yaml(good) == {"inner": {"size": 4}}
    assert engine.read_yaml(str(good)) == {"inner": {"size": 4}}
    (tmp_path / "empty.yaml").write_text("")
    assert engine.read_yaml(tmp_path / "empty.yaml") == {}
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        engine.read_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping at the top level"):
        engine.read_yaml(tmp_path / "list.yaml")


def test_save_and_read_back_gives_the_same_object(tmp_path):
    obj = engine.build(Outer, {"rate": 2.0, "shape": "circle",
                               "layers": {"a": {"type": "circle", "radius": 5}, "b": None}})
    assert engine.to_dict(obj)["shape"] == {"type": "circle", "radius": 2.0, "filled": True}
    engine.save_yaml(obj, tmp_path / "o.yaml")
    again = engine.build(Outer, engine.read_yaml(tmp_path / "o.yaml"))
    again.inner.seen.clear()
    obj.inner.seen.clear()
    assert again == obj


# --- components --------------------------------------------------------------


def test_component_forms_and_defaults():
    assert SHAPES.read("circle", "s") == Component("circle", CircleParams(2.0, True))
    assert SHAPES.read("CIRCLE", "s").type == "circle"  # names match in either case
    assert SHAPES.read({"type": "circle", "filled": False}, "s") == Component(
        "circle", CircleParams(2.0, False))
    assert SHAPES.read({"side": 4}, "s") == Component("square", SquareParams(4.0))  # default
    assert SHAPES.read(None, "s") == Component("square", SquareParams())
    same = Component("circle", CircleParams())
    assert SHAPES.read(same, "s") is same
    assert SHAPES.build(SHAPES.read({"type": "circle", "radius": 1}), scale=2) == 12
    assert SHAPES.names() == ["circle", "square"]
    assert SHAPES.params_class("circle") is CircleParams


def test_unknown_type_lists_the_valid_names():
    with pytest.raises(ConfigError, match=r"config key 's' names an unknown shape 'hexagon' "
                                          r"\(valid: circle, square\)"):
        SHAPES.read("hexagon", "s")
    with pytest.raises(ConfigError, match=r"config key 's.type' names an unknown shape 'hex'"):
        SHAPES.read({"type": "hex"}, "s")
    with pytest.raises(ConfigError, match=r"config key 'layers.a.type' names an unknown shape"):
        engine.build(Outer, {"layers": {"a": {"type": "hex"}}})
    with pytest.raises(ConfigError, match=r"config key 's.type' is not set \(valid: a\)"):
        required = Registry("thing")
        required.register("a", SquareParams)(lambda p: p)
        required.read({"side": 1}, "s")


def test_unknown_or_mistyped_parameter_names_the_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'shape.side' \(valid keys of "
                                          r"shape circle: filled, radius\)"):
        engine.build(Outer, {"shape": {"type": "circle", "side": 2}})
    with pytest.raises(ConfigError, match="config key 'shape.radius' expects float, got str"):
        engine.build(Outer, {"shape": {"type": "circle", "radius": "big"}})
    with pytest.raises(ConfigError, match="config key 'shape.radius' must be positive"):
        engine.build(Outer, {"shape": {"type": "circle", "radius": 0}})
    with pytest.raises(ConfigError, match="config key 'shape' expects a shape name or a mapping "
                                          "with its type and parameters, got 3"):
        engine.build(Outer, {"shape": 3})


def test_from_attributes_reads_the_parameters_of_an_object():
    @dataclass
    class Model:
        radius: float = 0.5
        filled: bool = False
        depth: int = 3  # not a parameter of circle

    assert SHAPES.from_attributes("circle", Model(), "model") == Component(
        "circle", CircleParams(0.5, False))
    with pytest.raises(ConfigError, match="config key 'model.radius' must be positive"):
        SHAPES.from_attributes("circle", Model(radius=-1.0), "model")


def test_registering_twice_or_without_a_dataclass_fails():
    with pytest.raises(ValueError, match="shape circle is registered twice"):
        SHAPES.register("Circle", CircleParams)(lambda p: p)
    with pytest.raises(ValueError, match="parameters must be a dataclass"):
        SHAPES.register("blob", dict)


def test_the_earlier_form_with_a_params_key_reads_as_the_component():
    old = engine.build(Outer, {"shape": "circle", "shape_params": {"radius": 4}})
    assert old.shape == Component("circle", CircleParams(4.0))
    assert engine.build(Outer, {"shape_params": {"side": 3}}).shape == Component(
        "square", SquareParams(3.0))
    mixed = engine.build(Outer, {"shape": {"type": "circle", "radius": 1}, "shape_params": {
        "filled": False}})
    assert mixed.shape == Component("circle", CircleParams(1.0, False))
    with pytest.raises(ConfigError, match="unknown config key 'shape_params'"):
        engine.build(Outer, {"shape_params": 5})  # not the earlier form: named as unknown
    assert merge_params({"a": 1}, "shape", "shape_params") == {"a": 1}


def test_params_of_a_component_are_a_fresh_copy_per_config():
    a, b = engine.build(Outer, {}), engine.build(Outer, {})
    a.shape.params.side = 9.0
    assert b.shape.params.side == 1.0
    assert dataclasses.is_dataclass(a.shape.params)
