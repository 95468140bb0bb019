"""Class names from a label file.

Accepted formats:
- the YT8M `vocabulary.csv` (a header with `Index` and `Name` columns, any others);
- one name per line (line i is class i), as in many label lists;
- `id<TAB>name` or `id,name` lines without a header.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import List

from videotag.errors import DataError


def load_label_names(path: str, num_classes: int) -> List[str]:
    """Returns `num_classes` names; classes missing from the file get their id as name.

    Raises:
        DataError: the file is missing, or names a class id outside [0, num_classes).
    """
    names = [str(i) for i in range(num_classes)]
    if not path:
        return names
    file = Path(path)
    if not file.is_file():
        raise DataError(f"label file not found: {path}")
    lines = file.read_text(encoding="utf-8").splitlines()
    if not lines:
        return names
    header = [h.strip().lower() for h in next(csv.reader([lines[0]]))]
    if "index" in header and "name" in header:
        i_col, n_col = header.index("index"), header.index("name")
        rows = [(r[i_col], r[n_col]) for r in csv.reader(lines[1:]) if len(r) > max(i_col, n_col)]
    elif all(("\t" in l or "," in l) and l.replace("\t", ",").split(",", 1)[0].strip().isdigit()
             for l in lines if l.strip()):
        rows = [tuple(l.replace("\t", ",").split(",", 1)) for l in lines if l.strip()]
    else:
        rows = [(str(i), l) for i, l in enumerate(lines)]
    for lineno, (index, name) in enumerate(rows, start=1):
        try:
            i = int(index)
        except ValueError:
            raise DataError(f"{path}: line {lineno}: class id '{index}' is not an integer") from None
        if not 0 <= i < num_classes:
            raise DataError(
                f"{path}: line {lineno}: class id {i} is outside [0, {num_classes}) "
                "(check data.num_classes)"
            )
        names[i] = name.strip()
    return names


def count_classes(path: str) -> int:
    """Number of classes a label file defines (highest id + 1)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"label file not found: {path}")
    lines = file.read_text(encoding="utf-8").splitlines()
    header = [h.strip().lower() for h in next(csv.reader(lines[:1]), [])]
    if "index" in header:
        col = header.index("index")
        try:
            return 1 + max(int(r[col]) for r in csv.reader(lines[1:]) if r)
        except ValueError:
            raise DataError(f"{path}: column 'Index' must hold integer class ids") from None
    return len([line for line in lines if line.strip()])
