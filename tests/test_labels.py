"""Label files: the YT8M vocabulary.csv, one name per line, and id/name lines."""

import pytest

from videotag.data.labels import count_classes, load_label_names
from videotag.errors import DataError


def test_yt8m_vocabulary_csv_with_extra_columns(tmp_path):
    path = tmp_path / "vocabulary.csv"
    path.write_text("Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl\n"
                    '0,100,/m/1,Game,x\n2,50,/m/2,"Car, red",y\n1,70,/m/3,Music,z\n')
    assert count_classes(str(path)) == 3
    assert load_label_names(str(path), 4) == ["Game", "Music", "Car, red", "3"]


def test_plain_and_id_name_lines(tmp_path):
    plain = tmp_path / "labels.txt"
    plain.write_text("cat\ndog\n")
    assert load_label_names(str(plain), 2) == ["cat", "dog"]
    assert count_classes(str(plain)) == 2
    ids = tmp_path / "ids.txt"
    ids.write_text("1\tdog\n0\tcat\n")
    assert load_label_names(str(ids), 3) == ["cat", "dog", "2"]
    assert load_label_names("", 2) == ["0", "1"]


def test_label_file_errors(tmp_path):
    with pytest.raises(DataError, match="label file not found"):
        load_label_names(str(tmp_path / "missing.csv"), 3)
    bad = tmp_path / "v.csv"
    bad.write_text("Index,Name\n5,Game\n")
    with pytest.raises(DataError, match=r"line 1: class id 5 is outside \[0, 3\)"):
        load_label_names(str(bad), 3)
    bad.write_text("Index,Name\nx,Game\n")
    with pytest.raises(DataError, match="must hold integer class ids"):
        count_classes(str(bad))
