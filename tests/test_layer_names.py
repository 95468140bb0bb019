"""`.keras` files of earlier versions still load: layers renamed since videotag 0.1
under their old names, and layers saved before an argument existed compute what
they did then (the argument's default in `from_config` is the old behaviour)."""

import json
import zipfile

import keras
import numpy as np
import pytest

from videotag.layers import (
    ConcatSEFusion,
    ContextGating,
    DBoF,
    GatedFusion,
    NetFV,
    SampleFrames,
    SEContextGating,
    TemporalRelation,
)


def _model_with(layer):
    x = keras.Input((16,))
    return keras.Model(x, layer(x))


def _rename_in_keras_file(path, old_class, registered_name, out_path):
    """Copies a `.keras` file with its gating layer saved under a 0.1 name."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out_path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["class_name"] in ("SEContextGating", "ContextGating"):
                        layer["class_name"] = old_class
                        layer["registered_name"] = registered_name
                data = json.dumps(config).encode()
            dst.writestr(item, data)


def test_old_gating_names_load(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    # 0.1 saved the SE gate as `ContextGating` and LOUPE's gate as `LinearGating`
    for layer, old_class, old_name, new_type in (
            (SEContextGating(4, name="gate"), "ContextGating", "videotag>ContextGating",
             SEContextGating),
            (ContextGating(name="gate"), "LinearGating", "videotag>LinearGating",
             ContextGating)):
        model = _model_with(layer)
        model.save(tmp_path / "new.keras")
        _rename_in_keras_file(tmp_path / "new.keras", old_class, old_name, tmp_path / "old.keras")
        loaded = keras.saving.load_model(tmp_path / "old.keras")
        assert type(loaded.get_layer("gate")) is new_type
        np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def _strip_in_keras_file(path, class_name, keys, out_path):
    """Copies a `.keras` file with `keys` removed from the config of its `class_name`
    layer: the file an earlier videotag wrote, before those arguments existed."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out_path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["class_name"] == class_name:
                        for key in keys:
                            del layer["config"][key]
                data = json.dumps(config).encode()
            dst.writestr(item, data)


def _frames_model(layer, size=6):
    x = keras.Input((None, size))
    return keras.Model(x, layer(x))


def _vectors_model(layer):
    a, b = keras.Input((16,)), keras.Input((5,))
    return keras.Model([a, b], layer([a, b]))


# each layer with the behaviour it had before its new argument (the argument's name,
# the value it had), and how to call it
OLD_BEHAVIOURS = [
    (lambda: ContextGating(batch_norm=False, name="old"), "batch_norm", False, "vector"),
    (lambda: SEContextGating(4, excite_bias=True, name="old"), "excite_bias", True, "vector"),
    (lambda: ConcatSEFusion(8, 2, 0.0, excite_bias=True, name="old"), "excite_bias", True,
     "vectors"),
    (lambda: GatedFusion(8, 2, 0.0, excite_bias=True, name="old"), "excite_bias", True,
     "vectors"),
    (lambda: NetFV(3, intra_normalize_second=True, name="old"), "intra_normalize_second", True,
     "frames"),
    (lambda: DBoF(4, activation="relu6", name="old"), "activation", "relu6", "frames"),
    (lambda: TemporalRelation(segments=3, frame_size=4, bottleneck=4, hidden_size=5,
                              input_relu=False, seed=1, name="old"), "input_relu", False,
     "frames"),
]


@pytest.mark.parametrize("index", range(len(OLD_BEHAVIOURS)))
def test_files_saved_before_an_argument_existed_load_as_they_were(index, tmp_path):
    factory, key, old_value, kind = OLD_BEHAVIOURS[index]
    layer = factory()
    rng = np.random.default_rng(index)
    if kind == "vector":
        model, x = _model_with(layer), rng.normal(size=(4, 16)).astype("float32")
    elif kind == "vectors":
        model = _vectors_model(layer)
        x = [rng.normal(size=(4, 16)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")]
    else:
        model, x = _frames_model(layer), rng.normal(size=(2, 7, 6)).astype("float32")
    model.save(tmp_path / "new.keras")
    _strip_in_keras_file(tmp_path / "new.keras", type(layer).__name__, [key],
                         tmp_path / "old.keras")
    loaded = keras.saving.load_model(tmp_path / "old.keras")
    assert getattr(loaded.get_layer("old"), key) == old_value
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)


def test_frame_sampling_saved_before_its_mode_samples_by_segments():
    layer = SampleFrames(3, name="old")
    config = {k: v for k, v in layer.get_config().items() if k != "mode"}
    assert SampleFrames.from_config(config).mode == "segments"
    assert SampleFrames(3).mode == "uniform"
