"""The demo dataset's segment ratings, from what the generator knows each frame shows.

The 2019 YT8M release rates 5-second segments of a video for its labels: a rated
segment shows the class (1) or does not (0). The demo rates likewise: for each of a
video's labels that is a segment class, up to `RATED_PER_LABEL` of its segments drawn
at random: positive when any of the segment's frames shows the class
(`chunk_frames`'s `content`: as a rater would see it there, however briefly),
negative when none does. Segments lie within the frames a model reads
(`MAX_FRAMES`).

The segment classes are every demo class but the four broad ones (Vehicle, Music,
Animal, Food), as the 2019 release rates 1,000 of its 3,862 classes.
"""

import numpy as np

SEGMENT_SIZE = 5
MAX_FRAMES = 300  # data.max_frames by default: ratings past it could not be read
RATED_PER_LABEL = 5
BROAD = ("Vehicle", "Music", "Animal", "Food")
SEGMENT_LABEL_FILE = "segment_label_ids.csv"


def segment_classes(names: list[str]) -> list[int]:
    """The demo's segment classes: every class but the broad ones."""
    return [i for i, name in enumerate(names) if name not in BROAD]


def write_segment_label_file(path: str, classes: list[int]) -> None:
    """Writes the classes in the 2019 release's format: `Index`, then one id a line."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("Index\n" + "".join(f"{c}\n" for c in classes))


def segment_ratings(content: np.ndarray, labels: list[int], classes: set[int],
                    rng: np.random.Generator) -> tuple[list[int], list[int], list[float]]:
    """One video's ratings as the record's three lists (labels, start times, scores).

    Args:
        content: int [n] the class each frame of the video shows (-1: background);
            n is the video's length (its shorter feature).
        labels: the video's labels.
        classes: the segment classes.
        rng: the random generator of the ratings.

    Returns:
        (segment_labels, segment_start_times, segment_scores), by label, then start.
    """
    n = min(len(content), MAX_FRAMES)
    starts = np.arange(0, n, SEGMENT_SIZE)
    out = ([], [], [])
    for label in labels:
        if label not in classes:
            continue
        positive = np.array([np.any(content[s:min(s + SEGMENT_SIZE, n)] == label)
                             for s in starts])
        chosen = np.sort(rng.permutation(len(starts))[:RATED_PER_LABEL])
        for i in chosen:
            out[0].append(int(label))
            out[1].append(int(starts[i]))
            out[2].append(1.0 if positive[i] else 0.0)
    return out
