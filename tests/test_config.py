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
                                            "model.cluster_size=4",
                                            "model.input.normalization=none"])
    model = videotag.build_model(cfg)
    assert set(model.output) == {"tags", "embedding"}


# Each section's own rules (its `validate` method) and the rule that joins sections.
@pytest.mark.parametrize("overrides, message", [
    (["data.record_type=clip"], "config key 'data.record_type' must be 'frame' or 'video'"),
    (["data.feature_sizes=[1024]"],
     "config keys 'data.feature_names' and 'data.feature_sizes' differ in length"),
    (["data.on_bad_record=ignore"], "config key 'data.on_bad_record' must be 'error' or 'skip'"),
    (["data.max_frames=0"], "config key 'data.max_frames' must be positive"),
    (["data.num_classes=-1"], "config key 'data.num_classes' must not be negative"),
    (["data.num_classes=0", "data.train_data_pattern=x*.tfrecord"],
     "config key 'data.num_classes' is 0, which takes the class count from data.label_file, "
     "but data.label_file is not set"),
    (["data.length_buckets=[64, 32]"],
     "config key 'data.length_buckets' must be increasing positive ints"),
    (["data.num_categories=-1"], r"config key 'data.num_categories' must be 0 \(none\)"),
    (["train.batch_size=0"], "config key 'train.batch_size' must be positive"),
    (["train.distribution=tpu"],
     "config key 'train.distribution' is 'tpu'; valid: none, mirrored, multi_worker"),
    (["train.mixed_precision=fp8"], "config key 'train.mixed_precision' is 'fp8'; valid: none"),
    (["train.lr_schedule=step"], "config key 'train.lr_schedule' is 'step'; valid: exponential"),
    (["train.epochs=0"], "config key 'train.epochs' must be positive"),
    (["train.weight_decay=-0.1"], "config key 'train.weight_decay' must not be negative"),
    (["train.fgm_alpha=0.5", "train.fgm_epsilon=0"],
     "config key 'train.fgm_epsilon' must be positive when 'train.fgm_alpha' turns FGM on"),
    (["train.distribution=multi_worker"],
     "config key 'train.steps_per_epoch' must be set with train.distribution=multi_worker"),
    (["train.lr_schedule=cosine"],
     "config key 'train.cosine_decay_examples' must be set for lr_schedule=cosine"),
    (["train.lr_final_ratio=2"], r"config key 'train.lr_final_ratio' must be in \[0, 1\]"),
    (["model.head.tasks=[tags, tags]"],
     r"config key 'model.head.tasks' is \['tags', 'tags'\]; give one or both of tags, category"),
    (["model.head.type=hmc", "model.head.hmc_hidden_size=1"],
     "config key 'model.head.hmc_hidden_size' must be at least 2"),
    (["model.head.type=hmc", "model.head.hmc_local_levels=[4]"],
     r"config key 'model.head.hmc_local_levels' is \[4\]; give one or more of the levels 1, 2, 3"),
    (["model.head.type=hmc", "model.head.hmc_local_weight=1.5"],
     r"config key 'model.head.hmc_local_weight' must be in \[0, 1\]"),
    (["model.head.tasks=[tags, category]", "data.train_data_pattern=x*.tfrecord"],
     "config key 'model.head.tasks' has 'category' but 'data.num_categories' is 0"),
    (["model.head.tags_loss=max"], "config key 'model.head.tags_loss' is 'max'; valid: mean, sum"),
    (["model.input.normalization=pca"],
     "config key 'model.input.normalization' is 'pca'; valid: none, l2, eigenvalues"),
    (["model.input.normalization=l2", "model.input.eigenvalues_file=e.npy"],
     "config key 'model.input.eigenvalues_file' is set but 'model.input.normalization' is 'l2'"),
    (["model.batch_norm_momentum=1"], r"config key 'model.batch_norm_momentum' must be in \[0, 1\)"),
])
def test_each_rule_names_its_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load("nextvlad", overrides)


def test_hmc_rules_apply_to_the_hmc_head_only():
    cfg = load("nextvlad", ["model.head.hmc_local_levels=[4]"])  # logistic: not read
    assert cfg.model.head.hmc_local_levels == [4]
    # the demo data brings its categories, so the category task needs no count there
    assert load("nextvlad_demo", ["model.head.tasks=[tags, category]"]).data.num_categories == 0


@pytest.mark.parametrize("override, message", [
    ("model.text.tokenizer=bytes", "config key 'model.text.tokenizer' is 'bytes'; valid: auto"),
    ("model.text.max_length=0", "config key 'model.text.max_length' must be positive"),
    ("model.text.vocab_min_count=0", "config key 'model.text.vocab_min_count' must be positive"),
    ("model.fusion.hidden_size=x", "config key 'model.fusion.hidden_size' expects int"),
    ("model.aggregators.rgb.groups=0", "config key 'model.aggregators.rgb.groups' must be "
                                       "positive"),
    ("model.aggregators.audio={type: TRN, segments: 1}",
     "config key 'model.aggregators.audio.segments' must be at least 2"),
])
def test_multimodal_rules_name_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load("multimodal_demo", [override])


def test_multimodal_config_of_version_0_1_loads_as_the_present_form(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(
        "model:\n  name: MULTIMODAL\n"
        "  aggregators: {rgb: {type: NETVLAD, cluster_size: 8}}\n"
        "  text: {encoder: bilstm, encoder_params: {units: 16}}\n"
        "  fusion: gated\n  fusion_params: {hidden_size: 32, dropout: 0.1}\n"
        "data: {use_title: true}\n")
    new = tmp_path / "new.yaml"
    new.write_text(
        "model:\n  name: MULTIMODAL\n"
        "  aggregators: {rgb: {type: NETVLAD, cluster_size: 8}}\n"
        "  text: {encoder: {type: bilstm, units: 16}}\n"
        "  fusion: {type: gated, hidden_size: 32, dropout: 0.1}\n"
        "data: {use_title: true}\n")
    cfg = load(str(old))
    assert cfg == load(str(new))
    assert (cfg.model.fusion.type, cfg.model.fusion.params.hidden_size,
            cfg.model.fusion.params.gating_reduction) == ("gated", 32, 8)
    assert (cfg.model.text.encoder.type, cfg.model.text.encoder.params.units,
            cfg.model.text.encoder.params.pooling) == ("bilstm", 16, "mean")
    assert cfg.model.aggregators["rgb"].params.input_bn is True
    # saved in the present form, read back unchanged
    cfg.save(tmp_path / "saved.yaml")
    assert "fusion_params" not in (tmp_path / "saved.yaml").read_text()
    assert load(str(tmp_path / "saved.yaml")) == cfg


def test_switching_a_component_type_keeps_or_resets_its_parameters():
    kept = load("multimodal_demo", ["model.fusion.type=gated"]).model.fusion
    assert (kept.type, kept.params.hidden_size) == ("gated", 512)
    fresh = load("multimodal_demo", ["model.fusion=text_guided"]).model.fusion
    assert (fresh.type, fresh.params.attention_units) == ("text_guided", 128)
    with pytest.raises(ConfigError, match="'model.fusion.attention_units'.*valid keys of fusion "
                                          "gated"):
        load("multimodal_demo", ["model.fusion={type: text_guided, attention_units: 8}",
                                 "model.fusion.type=gated"])
    with pytest.raises(ConfigError, match="config key 'model.fusion' holds 'gated', not a section"):
        load("multimodal_demo", ["model.fusion=gated", "model.fusion.hidden_size=8"])


@pytest.mark.parametrize("overrides, message", [
    (["feature_names=[rgb]"], "config keys 'extraction.feature_names' and "
                              "'extraction.feature_sizes' must be non-empty"),
    (["feature_names=[rgb, depth]"], "config key 'extraction.feature_names' is"),
    (["sampling=random"], "config key 'extraction.sampling' is 'random'; valid: fps, uniform"),
    (["missing_audio=skip"], "config key 'extraction.missing_audio' is 'skip'; valid: silence"),
    (["fps=0"], "config key 'extraction.fps' must be positive"),
    (["prefetch=0"], "config key 'extraction.prefetch' must be positive"),
    (["feature_sizes=[1024, 0]"], "config key 'extraction.feature_sizes' must hold positive"),
    (["image_size=-1"], "config key 'extraction.image_size' must not be negative"),
    (["pca={depth: dir}"], "config key 'extraction.pca.depth': not one of the features"),
    (["pca={rgb: 3}"], "config key 'extraction.pca.rgb' expects str, got int"),
    (["colour=1"], "unknown config key 'extraction.colour'"),
])
def test_extraction_rules_name_their_key(overrides, message):
    from videotag.extraction import config as extraction_config

    with pytest.raises(ConfigError, match=message):
        extraction_config.load(None, overrides)


def test_extraction_settings_round_trip(tmp_path):
    from videotag.extraction import config as extraction_config

    cfg = extraction_config.load(None, ["sampling=uniform", "pca={rgb: pca/rgb}"])
    cfg.save(tmp_path / "extraction.yaml")
    assert extraction_config.load(str(tmp_path / "extraction.yaml")) == cfg
