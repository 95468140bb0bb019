"""Label files: the YT8M vocabulary.csv, one name per line, and id/name lines; the class
count they define against data.num_classes (0: taken from the label file)."""

import pytest

import videotag
from videotag.data.labels import count_classes, load_label_names
from videotag.data.sources import resolve_data
from videotag.errors import DataError


def test_yt8m_vocabulary_csv_with_extra_columns(tmp_path):
    path = tmp_path / "vocabulary.csv"
    path.write_text("Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl\n"
                    '0,100,/m/1,Game,x\n3,50,/m/2,"Car, red",y\n1,70,/m/3,Music,z\n')
    assert count_classes(str(path)) == 4
    # a class the file skips (2) is named by its id
    assert load_label_names(str(path), 4) == ["Game", "Music", "2", "Car, red"]


def test_plain_and_id_name_lines(tmp_path):
    plain = tmp_path / "labels.txt"
    plain.write_text("cat\ndog\n")
    assert load_label_names(str(plain), 2) == ["cat", "dog"]
    assert count_classes(str(plain)) == 2
    ids = tmp_path / "ids.txt"
    ids.write_text("1\tdog\n0\tcat\n2,bird\n")
    assert load_label_names(str(ids), 3) == ["cat", "dog", "bird"]
    assert load_label_names("", 2) == ["0", "1"]


def test_label_file_errors(tmp_path):
    with pytest.raises(DataError, match="label file not found"):
        load_label_names(str(tmp_path / "missing.csv"), 3)
    bad = tmp_path / "v.csv"
    bad.write_text("Index,Name\nx,Game\n")
    with pytest.raises(DataError, match="line 2: class id 'x' is not an integer"):
        count_classes(str(bad))


def test_a_label_file_must_define_num_classes(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("Index,Name\n0,Game\n4,Car\n")
    for wrong in (3, 6):
        with pytest.raises(DataError) as info:
            load_label_names(str(path), wrong)
        assert str(info.value) == (
            f"the label file {path} defines 5 classes (ids 0-4) but data.num_classes is "
            f"{wrong}: set data.num_classes=5, or 0 to take it from the label file, or give "
            "the label file of this data")


def test_num_classes_0_is_taken_from_the_label_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\nbird\n")
    data = [f"data.label_file={path}", "data.train_data_pattern=x*.tfrecord"]
    assert videotag.config.load("nextvlad", data + ["data.num_classes=0"]).data.num_classes == 3
    cfg = videotag.config.load("nextvlad", data + ["data.num_classes=4"])
    with pytest.raises(DataError, match="defines 3 classes .* but data.num_classes is 4"):
        resolve_data(cfg, verbose=False)  # what a training run checks first
    cfg = videotag.config.load("nextvlad", data + ["data.num_classes=3",
                                                  "data.num_categories=2",
                                                  f"data.category_file={path}"])
    with pytest.raises(DataError, match="defines 3 classes .* but data.num_categories is 2: "
                                        "set data.num_categories=3, or give"):
        resolve_data(cfg, verbose=False)
