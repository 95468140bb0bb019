"""Config: defaults, YAML, overrides, errors naming the dotted key, round trip."""

import pytest

import videotag
from videotag.config import load
from videotag.errors import ConfigError


def test_nextvlad_yaml_is_the_paper_config():
    cfg = load("NEXTVLAD")
    assert cfg.model.name == "NEXTVLAD"
    assert cfg.data.num_classes == 3862
    assert (cfg.train.batch_size, cfg.train.learning_rate, cfg.train.lr_decay,
            cfg.train.lr_decay_examples) == (160, 2e-4, 0.8, 2_000_000)
    assert cfg.model.head.type == "logistic"


def test_overrides_are_typed():
    cfg = load("nextvlad", ["train.batch_size=32", "model.head.type=moe",
                            "data.feature_names=[rgb]", "data.feature_sizes=[1024]",
                            "train.learning_rate=1e-3"])
    assert cfg.train.batch_size == 32 and cfg.model.head.type == "moe"
    assert cfg.data.feature_names == ["rgb"] and cfg.train.learning_rate == 1e-3
    cfg = load("nextvlad", {"train": {"epochs": 2}})
    assert cfg.train.epochs == 2


@pytest.mark.parametrize("override,message", [
    ("model.clusters=3", "unknown config key 'model.clusters'"),
    ("data.nope=1", "unknown config key 'data.nope'"),
    ("train.batch_size=abc", "config key 'train.batch_size' expects int, got str"),
    ("model.head.l2_penalty=[1]", "config key 'model.head.l2_penalty' expects float"),
    ("data.feature_sizes=[1024, x]", r"config key 'data.feature_sizes\[1\]' expects int"),
    ("model.head.type=svm", "valid: logistic, moe"),
    ("nosection.a=1", "unknown config key 'nosection'"),
    ("train.batch_size", "not of the form key=value"),
])
def test_bad_config_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load("nextvlad", [override])


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown model 'NOPE'.*NEXTVLAD"):
        load(None, ["model.name=NOPE"])
    with pytest.raises(ConfigError, match="no config named"):
        load("does_not_exist")


def test_round_trip(tmp_path):
    cfg = load("nextvlad", ["train.epochs=3", "data.label_file=x.csv"])
    cfg.save(tmp_path / "c.yaml")
    again = load(str(tmp_path / "c.yaml"))
    assert again == cfg


def test_public_api():
    assert "NEXTVLAD" in videotag.list_models()
    cfg = videotag.config.load("nextvlad", ["data.num_classes=5", "model.hidden_size=16",
                                            "model.cluster_size=4"])
    model = videotag.build_model(cfg)
    assert set(model.output) == {"tags", "embedding"}
