"""Class names from a label file, and the class count it defines.

Accepted formats:
- the YT8M `vocabulary.csv` (a header with `Index` and `Name` columns, any others);
- one name per line (line i is class i), as in many label lists;
- `id<TAB>name` or `id,name` lines without a header.

A label file defines `label_file_size` classes: the highest class id + 1 (for one
name per line, the number of lines). It must match the count the config gives
(`data.num_classes`, or `data.num_categories` for `data.category_file`); with
`data.num_classes: 0` the count is taken from the label file (`resolve_num_classes`).
Files are read through `tf.io.gfile`, so they may live on any file system.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, List, Tuple

import tensorflow as tf

from videotag.errors import ConfigError, DataError

if TYPE_CHECKING:
    from videotag.config import DataConfig


def _read_lines(path: str) -> List[str]:
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise DataError(f"label file not found: {path}")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_label_file(path: str) -> List[Tuple[int, str]]:
    """The (class id, name) pairs of a label file, in file order.

    Raises:
        DataError: the file is missing, or a class id is not a non-negative integer.
    """
    lines = _read_lines(path)
    if not lines:
        return []
    header = [h.strip().lower() for h in next(csv.reader([lines[0]]))]
    if "index" in header and "name" in header:
        i_col, n_col = header.index("index"), header.index("name")
        rows = [(r[i_col], r[n_col]) for r in csv.reader(lines[1:]) if len(r) > max(i_col, n_col)]
        first = 2
    elif "index" in header:
        raise DataError(f"{path}: a header with an 'Index' column needs a 'Name' column")
    elif all(("\t" in l or "," in l) and l.replace("\t", ",").split(",", 1)[0].strip().isdigit()
             for l in lines if l.strip()):
        rows = [tuple(l.replace("\t", ",").split(",", 1)) for l in lines if l.strip()]
        first = 1
    else:
        rows = [(str(i), l) for i, l in enumerate(lines)]
        first = 1
    pairs = []
    for lineno, (index, name) in enumerate(rows, start=first):
        try:
            i = int(index)
        except ValueError:
            raise DataError(f"{path}: line {lineno}: class id '{index}' is not an integer "
                            "(column 'Index' must hold integer class ids)") from None
        if i < 0:
            raise DataError(f"{path}: line {lineno}: class id {i} is negative")
        pairs.append((i, name.strip()))
    return pairs


def label_file_size(path: str) -> int:
    """The number of classes a label file defines: its highest class id + 1."""
    return 1 + max((i for i, _ in read_label_file(path)), default=-1)


def count_classes(path: str) -> int:
    """Number of classes a label file defines (`label_file_size`)."""
    return label_file_size(path)


def load_label_names(path: str, num_classes: int, key: str = "data.num_classes") -> List[str]:
    """The `num_classes` names of a label file (a class it skips is named by its id);
    without a file, every class is named by its id.

    Args:
        path: the label file ("" for none).
        num_classes: the class count of the config.
        key: the config key of that count, for messages.

    Raises:
        DataError: the file is missing, unreadable, or defines another number of
            classes than `num_classes`.
    """
    names = [str(i) for i in range(num_classes)]
    if not path:
        return names
    pairs = read_label_file(path)
    size = 1 + max((i for i, _ in pairs), default=-1)
    if size != num_classes:
        raise DataError(size_mismatch(path, size, num_classes, key))
    for i, name in pairs:
        names[i] = name
    return names


def size_mismatch(path: str, size: int, num_classes: int, key: str = "data.num_classes") -> str:
    """The message for a label file of `size` classes where the config says `num_classes`."""
    hint = (f"set {key}={size}" + (", or 0 to take it from the label file"
                                   if key == "data.num_classes" else ""))
    return (f"the label file {path} defines {size} classes (ids 0-{size - 1}) but {key} is "
            f"{num_classes}: {hint}, or give the label file of this data")


def resolve_num_classes(data: "DataConfig") -> None:
    """Sets `data.num_classes` from `data.label_file` when it is 0 (not set).

    Raises:
        ConfigError: `num_classes` is 0 and there is no label file to take it from.
        DataError: the label file cannot be read, or defines no class.
    """
    if data.num_classes:
        return
    if not data.label_file:
        raise ConfigError("config key 'data.num_classes' is 0, which takes the class count "
                          "from data.label_file, but data.label_file is not set: set one of them")
    size = label_file_size(data.label_file)
    if size == 0:
        raise DataError(f"the label file {data.label_file} names no class")
    data.num_classes = size


def check_label_files(data: "DataConfig") -> None:
    """Checks that `data.label_file` and `data.category_file`, when set, define
    `data.num_classes` and `data.num_categories` classes (see `load_label_names`)."""
    resolve_num_classes(data)
    load_label_names(data.label_file, data.num_classes)
    if data.category_file and data.num_categories:
        load_label_names(data.category_file, data.num_categories, "data.num_categories")
