"""Export details: versions, top-k bounded by the class count, .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import random_batch, tiny_config
from videotag.errors import ModelError
from videotag.export import export_saved_model


@pytest.mark.parametrize("head", ["logistic", "moe"])
def test_keras_file_round_trip_gives_the_same_outputs(tmp_path, head):
    cfg = tiny_config(**{"model.head.type": head})
    model = videotag.build_model(cfg)
    batch = random_batch(cfg, batch=3, frames=5)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    for key in ("tags", "embedding"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(batch)[key]),
                                   keras.ops.convert_to_numpy(again(batch)[key]), rtol=1e-6)


def test_versions_count_up_and_top_k_is_bounded(tmp_path):
    cfg = tiny_config()  # 10 classes: top 20 is cut to 10
    model = videotag.build_model(cfg)
    first = export_saved_model(model, cfg, str(tmp_path))
    second = export_saved_model(model, cfg, str(tmp_path))
    assert (first, second) == (f"{tmp_path}/nextvlad/1", f"{tmp_path}/nextvlad/2")
    assert sorted(p.name for p in (tmp_path / "nextvlad").iterdir()) == ["1", "2"]
    with pytest.raises(ModelError, match="exists already"):
        export_saved_model(model, cfg, str(tmp_path), version=2)
    loaded = tf.saved_model.load(str(second))
    batch = random_batch(cfg, batch=2, frames=4)
    out = loaded.signatures["predict_dense"](
        rgb=tf.constant(batch["rgb"]), audio=tf.constant(batch["audio"]),
        num_frames=tf.constant(batch["num_frames"]))
    assert out["class_indexes"].shape == (2, 10)
    # all classes, sorted by score: the same as the Keras model's sorted probabilities
    want = np.sort(keras.ops.convert_to_numpy(model(batch)["tags"]), axis=1)[:, ::-1]
    np.testing.assert_allclose(out["predictions"].numpy(), want, rtol=1e-5, atol=1e-6)
    assert out["class_names"].numpy()[0, 0].decode() == str(int(out["class_indexes"][0, 0]))
