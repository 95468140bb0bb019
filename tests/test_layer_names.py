"""Layers renamed since videotag 0.1 still load from `.keras` files under their old names."""

import json
import zipfile

import keras
import numpy as np

from videotag.layers import ContextGating, SEContextGating


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
