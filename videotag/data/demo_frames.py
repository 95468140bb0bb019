"""The demo dataset's frames: class prototypes, shots, distractors, noise, lengths.

How a video's frames are made (all deterministic given the random generator):
- ~40 everyday classes (`videotag/data/demo_vocabulary.csv`), Zipf-like class frequencies
  (index 0 most common, as in YT8M), 1-4 labels per video (mostly 1-2); labels of
  the same family (vehicles, music, animals, ...) tend to occur together.
- every class has a few prototype vectors per modality; classes of a family share
  part of them, so they are easy to confuse. Some classes are mostly audible
  (music, rain), some mostly visible (games, make-up), the rest both.
- a video is a sequence of shots; a shot shows a prototype of one of the video's
  labels, or is a distractor: a background shot, or a shot of a class the video is
  NOT labelled with. Every frame adds noise, every video a constant offset.
- lengths: mostly 10-100 frames, a few 1-3 frames, ~1.5% over 300 frames.

`videotag.data.demo` writes them into records; `videotag.data.demo_titles` adds the
titles and categories.
"""

import numpy as np

from videotag.data import schema

RGB_SIZE, AUDIO_SIZE = 1024, 128

# Families share a prototype component (confusable classes) and co-occur as labels.
FAMILIES = {
    "vehicles": ["Vehicle", "Car", "Motorcycle", "Train", "Airplane", "Tractor"],
    "music": ["Music", "Concert", "Guitar", "Piano", "Singing", "Drum", "Violin",
              "Dance"],
    "animals": ["Animal", "Dog", "Cat", "Bird", "Horse"],
    "food": ["Cooking", "Food", "Cake"],
    "sports": ["Football", "Basketball", "Skateboarding", "Swimming"],
    "style": ["Fashion", "Makeup", "Hairstyle"],
    "art": ["Cartoon", "Drawing", "Painting"],
    "outdoors": ["Fishing", "Gardening", "Beach", "Camping"],
    "weather": ["Rain", "Thunderstorm"],
    "tech": ["Game", "Smartphone"],
}
_AUDIO_HEAVY = {"Music", "Concert", "Guitar", "Piano", "Singing", "Drum", "Violin",
                "Rain", "Thunderstorm"}
_VISUAL_HEAVY = {"Game", "Cartoon", "Smartphone", "Fashion", "Drawing", "Makeup",
                 "Painting", "Hairstyle", "Cake"}
# (rgb, audio) strength of a class's prototypes, by the modality it is heard/seen in.
_STRENGTH = {"audio": (0.3, 1.0), "visual": (1.0, 0.2), "both": (0.75, 0.6)}

# Generator parameters (tuned so a linear probe on mean-pooled features is far above
# the label prior but far from perfect; see tests/test_writer_demo.py).
_ZIPF = 1.0
_NUM_LABELS_P = (0.45, 0.30, 0.15, 0.10)  # P(1..4 labels)
_FAMILY_BOOST = 8.0  # extra weight of same-family classes for the 2nd.. label
_PROTOTYPES = 3  # per class and modality
_BACKGROUNDS = 8  # shared background prototypes
_FAMILY_SHARE = 0.5  # variance share of the family component in a prototype
_PROTO_STD = {"rgb": 0.45, "audio": 0.5}
_NOISE_STD = {"rgb": 0.6, "audio": 0.6}
_OFFSET_STD = 0.15  # per-video constant offset (camera, microphone)
_SHOT_BREAK = 0.25  # per-frame probability that a new shot starts
_BACKGROUND_RATE = (0.05, 0.3)  # per-video share of background shots: uniform range
_DISTRACTOR_P = 0.5  # share of videos with shots of classes they are not labelled
_DISTRACTOR_RATE = (0.05, 0.25)  # their share of such shots: uniform range
_LABEL_CONCENTRATION = 3.0  # Dirichlet weights of a video's labels among its shots
_VERY_SHORT, _LONG = 0.06, 0.015  # shares of 1-3 frame and 301-360 frame videos
_AUDIO_SHORTER = 0.03  # share of videos whose audio track is 1-3 frames shorter


class World:
    """Class structure shared by the train and validation splits.

    Attributes:
        num_classes: number of classes (the vocabulary's length).
        family: [classes] family index of each class.
        prior: [classes] Zipf-like probability of each class as a video's main label.
        strength: modality -> [classes] amplitude of the class's prototypes.
        table: modality -> [classes * 3 + 8, size] float32 prototypes (3 per class,
            then the 8 shared backgrounds).
    """

    def __init__(self, names: list[str], rng: np.random.Generator):
        n = len(names)
        self.num_classes = n
        family_of = {x: fam for fam, members in FAMILIES.items() for x in members}
        fams = [family_of.get(name, f"own:{name}") for name in names]
        self.family = np.array([sorted(set(fams)).index(f) for f in fams])
        prior = 1.0 / np.arange(1, n + 1) ** _ZIPF
        self.prior = prior / prior.sum()
        kinds = ["audio" if x in _AUDIO_HEAVY else "visual" if x in _VISUAL_HEAVY
                 else "both" for x in names]
        strength = np.array([_STRENGTH[k] for k in kinds])
        self.strength = {"rgb": strength[:, 0], "audio": strength[:, 1]}
        self.table = {}  # modality -> [classes * K + backgrounds, size] prototypes
        for modality, size in (("rgb", RGB_SIZE), ("audio", AUDIO_SIZE)):
            fam_vec = rng.standard_normal((self.family.max() + 1, 1, size))
            own = rng.standard_normal((n, _PROTOTYPES, size))
            protos = (np.sqrt(_FAMILY_SHARE) * fam_vec[self.family]
                      + np.sqrt(1 - _FAMILY_SHARE) * own)
            background = rng.standard_normal((_BACKGROUNDS, size))
            table = np.concatenate([protos.reshape(n * _PROTOTYPES, size), background])
            self.table[modality] = (table * _PROTO_STD[modality]).astype(np.float32)

    def sample_labels(self, rng: np.random.Generator) -> tuple[list[int], list[int], int]:
        """One video's labels, its 1-2 distractor classes (not among the labels) and
        its main label (the first drawn)."""
        n = 1 + int(np.searchsorted(np.cumsum(_NUM_LABELS_P), rng.random()))
        n = min(n, len(_NUM_LABELS_P), self.num_classes)
        labels = [self.draw(self.prior, labels=[], rng=rng)]
        same = self.family == self.family[labels[0]]
        boosted = self.prior * (1.0 + _FAMILY_BOOST * same)
        while len(labels) < n:
            labels.append(self.draw(boosted, labels, rng))
        distractors = []
        for _ in range(min(1 + int(rng.random() < 0.4), self.num_classes - n)):
            distractors.append(self.draw(self.prior, labels + distractors, rng))
        return sorted(labels), distractors, labels[0]

    @staticmethod
    def draw(weights: np.ndarray, labels: list[int], rng: np.random.Generator) -> int:
        """One class drawn with probability proportional to `weights`, never one of
        `labels` (one random number of `rng`)."""
        w = weights.copy()
        w[labels] = 0.0
        cdf = np.cumsum(w)
        return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"),
                       len(w) - 1))


def video_lengths(num: int, rng: np.random.Generator) -> np.ndarray:
    """Frame counts: mostly 10-100, a few 1-3 and a few 301-360 (always >= 1 each)."""
    lengths = np.clip(np.round(rng.gamma(2.0, 19.0, num)) + 4, 4, 300).astype(np.int64)
    order = rng.permutation(num)
    n_short = max(1, round(_VERY_SHORT * num))
    n_long = max(1, round(_LONG * num)) if num > n_short else 0
    lengths[order[:n_short]] = rng.integers(1, 4, n_short)
    lengths[order[n_short:n_short + n_long]] = rng.integers(301, 361, n_long)
    return lengths


def chunk_frames(world: World, labels: list, distractors: list, lengths: np.ndarray,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Quantized frames of a chunk of videos, concatenated: modality -> [T, size].

    Args:
        world: the class structure.
        labels: per video, its label ids (1-4).
        distractors: per video, its distractor class ids (0-2).
        lengths: [videos] frame counts; T is their sum.
        rng: the random generator (the same state gives the same frames).

    Returns:
        `rgb` uint8 [T, 1024] and `audio` uint8 [T, 128], video after video, and
        `content` int16 [T]: the class each frame shows (-1: background), which the
        segment ratings come from (`videotag.data.demo_segments`).
    """
    num = len(lengths)
    vid = np.repeat(np.arange(num), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    new_shot = rng.random(len(vid)) < _SHOT_BREAK
    new_shot[starts] = True
    shot_of_frame = np.cumsum(new_shot) - 1
    shot_vid = vid[new_shot]
    num_shots = len(shot_vid)

    # Per-video mixture: background share, distractor share, label weights.
    bg_rate = rng.uniform(*_BACKGROUND_RATE, num)
    dis_rate = np.where(rng.random(num) < _DISTRACTOR_P,
                        rng.uniform(*_DISTRACTOR_RATE, num), 0.0)
    label_pad, dis_pad = np.zeros((num, 4), np.int64), np.zeros((num, 2), np.int64)
    cum_w = np.ones((num, 4))  # the last label's bound stays 1: no rounding overflow
    n_dis = np.array([len(d) for d in distractors])
    for v, (labs, dis) in enumerate(zip(labels, distractors)):
        label_pad[v, :len(labs)], dis_pad[v, :len(dis)] = labs, dis
        weights = rng.dirichlet(np.full(len(labs), _LABEL_CONCENTRATION))
        cum_w[v, :len(labs) - 1] = np.cumsum(weights)[:-1]
    dis_rate[n_dis == 0] = 0.0

    u = rng.random(num_shots)
    is_bg = u < bg_rate[shot_vid]
    is_dis = ~is_bg & (u < bg_rate[shot_vid] + dis_rate[shot_vid])
    slot = (rng.random(num_shots)[:, None] >= cum_w[shot_vid]).sum(1)
    cls = label_pad[shot_vid, slot]
    pick = (rng.random(num_shots) * np.maximum(n_dis[shot_vid], 1)).astype(np.int64)
    cls = np.where(is_dis, dis_pad[shot_vid, pick], cls)
    row = cls * _PROTOTYPES + rng.integers(0, _PROTOTYPES, num_shots)
    row = np.where(is_bg, world.num_classes * _PROTOTYPES
                   + rng.integers(0, _BACKGROUNDS, num_shots), row)
    amplitude = rng.uniform(0.6, 1.2, num_shots).astype(np.float32)

    out = {}
    for modality, size in (("rgb", RGB_SIZE), ("audio", AUDIO_SIZE)):
        scale = np.where(is_bg, 1.0, world.strength[modality][cls]) * amplitude
        x = world.table[modality][row[shot_of_frame]]
        x *= scale[shot_of_frame, None].astype(np.float32)
        x += rng.standard_normal((num, size), dtype=np.float32)[vid] * _OFFSET_STD
        x += rng.standard_normal(x.shape, dtype=np.float32) * _NOISE_STD[modality]
        out[modality] = schema.quantize(x)
    out["content"] = np.where(is_bg, -1, cls)[shot_of_frame].astype(np.int16)
    return out


def audio_lengths(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Audio frame counts: equal to rgb, except a few tracks 1-3 frames shorter."""
    cut = rng.integers(1, 4, len(lengths))
    shorter = (rng.random(len(lengths)) < _AUDIO_SHORTER) & (lengths > 1)
    return np.where(shorter, np.maximum(lengths - cut, 1), lengths)
