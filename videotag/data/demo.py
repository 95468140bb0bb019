"""The built-in demo dataset: synthetic YT8M frame-level records that can be learned.

`ensure_demo_data()` generates the dataset on first use (into `data/demo_generated`,
which git ignores) and reuses it afterwards; `tools/train.py` trains on it when no data
is given, so a new user sees a model learn within minutes on a laptop CPU.

How the videos are made (all deterministic given the seed):
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
- titles (context `title`) name some of the video's labels by keywords, in English
  or (30% of videos) in Chinese, among filler words, rare noise words and at times
  a keyword of a class the video is not labelled with; 4% of titles are empty. A
  title names the video's main label (the first drawn) with probability 0.8 and
  each other label with 0.45, so it adds information the frames lack (confusable
  classes of a family) without giving every label away.
- categories (context `category`, 8 of them, `CATEGORIES`): the family of the
  video's first-drawn label, replaced by a random category for 10% of videos.
Titles and categories come from random streams of their own: the frames are the
same as without them.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from videotag.data import schema
from videotag.data.labels import count_classes, load_label_names
from videotag.data.writer import RecordWriter, frame_example
from videotag.errors import DataError

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = str(_REPO / "data" / "demo_generated")
# package data: an installed wheel has it too
VOCABULARY = str(resources.files("videotag") / "data" / "demo_vocabulary.csv")
MANIFEST = "demo.json"
# Bump whenever the generator's output changes, so old demo data is regenerated.
FORMAT_VERSION = 3

DEFAULT_NUM_TRAIN = 4000
DEFAULT_NUM_EVAL = 1000
RGB_SIZE, AUDIO_SIZE = 1024, 128

# Families share a prototype component (confusable classes) and co-occur as labels.
_FAMILIES = {
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
_CHUNK = 128  # videos generated per vectorized step

# Categories: one per family or pair of families (family -> category index).
CATEGORIES = ["Autos & Vehicles", "Music & Dance", "Pets & Animals", "Food & Cooking",
              "Sports", "Beauty & Fashion", "Art, Games & Tech", "Outdoors & Nature"]
_CATEGORY_OF_FAMILY = {"vehicles": 0, "music": 1, "animals": 2, "food": 3, "sports": 4,
                       "style": 5, "art": 6, "tech": 6, "outdoors": 7, "weather": 7}
_CATEGORY_NOISE = 0.10  # share of videos whose category is drawn at random

# Title keywords per class: English words, and Chinese words (tokenised by character).
_KEYWORDS = {
    "Game": ("gameplay gaming speedrun", "游戏 通关"),
    "Vehicle": ("vehicle ride wheels", "车辆 驾驶"),
    "Music": ("music song melody", "音乐 歌曲"),
    "Car": ("car drift sedan", "汽车 轿车"),
    "Concert": ("concert live stage", "演唱会 现场"),
    "Dance": ("dance choreography dancer", "舞蹈 跳舞"),
    "Cooking": ("cooking recipe kitchen", "做饭 厨房"),
    "Animal": ("animal wildlife zoo", "动物 野生"),
    "Football": ("football goal soccer", "足球 进球"),
    "Guitar": ("guitar strum riff", "吉他 弹唱"),
    "Food": ("food tasty snack", "美食 小吃"),
    "Dog": ("dog puppy doggo", "狗狗 小狗"),
    "Cartoon": ("cartoon animation anime", "动画 卡通"),
    "Smartphone": ("smartphone phone unboxing", "手机 开箱"),
    "Fashion": ("fashion outfit style", "时尚 穿搭"),
    "Piano": ("piano keys sonata", "钢琴 琴键"),
    "Cat": ("cat kitten meow", "猫咪 小猫"),
    "Motorcycle": ("motorcycle motorbike biker", "摩托 机车"),
    "Basketball": ("basketball dunk hoops", "篮球 扣篮"),
    "Drawing": ("drawing sketch pencil", "素描 画画"),
    "Fishing": ("fishing fish bait", "钓鱼 鱼竿"),
    "Singing": ("singing singer vocals", "唱歌 歌手"),
    "Drum": ("drum drummer beat", "鼓手 打鼓"),
    "Train": ("train railway station", "火车 铁路"),
    "Airplane": ("airplane flight airport", "飞机 航班"),
    "Gardening": ("gardening garden plants", "园艺 种花"),
    "Makeup": ("makeup lipstick eyeliner", "化妆 口红"),
    "Cake": ("cake baking dessert", "蛋糕 烘焙"),
    "Bird": ("bird parrot birds", "鸟类 鹦鹉"),
    "Beach": ("beach sea waves", "海滩 大海"),
    "Skateboarding": ("skateboarding skate kickflip", "滑板"),
    "Horse": ("horse riding pony", "骑马 马术"),
    "Painting": ("painting paint canvas", "油画 绘画"),
    "Camping": ("camping tent campfire", "露营 帐篷"),
    "Hairstyle": ("hairstyle haircut braid", "发型 剪发"),
    "Rain": ("rain rainy drizzle", "下雨 雨天"),
    "Swimming": ("swimming pool swim", "游泳 泳池"),
    "Thunderstorm": ("thunderstorm thunder lightning", "雷雨 闪电"),
    "Tractor": ("tractor farm harvest", "拖拉机 农场"),
    "Violin": ("violin violinist fiddle", "小提琴 琴弦"),
}
_FILLER = ("my the best video today new vlog watch amazing funny with and first time "
           "part episode daily highlights compilation look this".split(),
           "今天 我的 视频 超级 好看 一起 分享 第一次 日常 合集 来了".split())
_MENTION_P = (0.8, 0.45)  # probability that the title names the main label, another label
_WRONG_P = 0.2  # probability of a keyword of a class the video is not labelled with
_NOISE_WORD_P = 0.3  # probability of a rare made-up word
_EMPTY_TITLE_P = 0.04
_CHINESE_P = 0.3


@dataclasses.dataclass(frozen=True)
class DemoData:
    """Where the demo dataset lives and what it holds.

    Every record has a `title` and a `category` in [0, num_categories).
    """

    root: str
    train_pattern: str
    eval_pattern: str
    label_file: str
    num_classes: int
    num_train: int
    num_eval: int
    num_categories: int = len(CATEGORIES)


def read_vocabulary(path: str = VOCABULARY) -> list[str]:
    """Class names by index from a YT8M-style vocabulary csv (`Index,Name,...`).

    Raises:
        DataError: the file is missing or malformed.
    """
    return load_label_names(path, count_classes(path))


def _demo_data(root: str, num_classes: int, num_train: int, num_eval: int,
               num_categories: int = len(CATEGORIES)) -> DemoData:
    return DemoData(root, os.path.join(root, "train*.tfrecord"),
                    os.path.join(root, "validate*.tfrecord"),
                    os.path.join(root, "vocabulary.csv"), num_classes, num_train,
                    num_eval, num_categories)


class _World:
    """Class structure shared by the train and validation splits."""

    def __init__(self, names: list[str], rng: np.random.Generator):
        n = len(names)
        self.num_classes = n
        family_of = {x: fam for fam, members in _FAMILIES.items() for x in members}
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
        labels = [self._draw(self.prior, labels=[], rng=rng)]
        same = self.family == self.family[labels[0]]
        boosted = self.prior * (1.0 + _FAMILY_BOOST * same)
        while len(labels) < n:
            labels.append(self._draw(boosted, labels, rng))
        distractors = []
        for _ in range(min(1 + int(rng.random() < 0.4), self.num_classes - n)):
            distractors.append(self._draw(self.prior, labels + distractors, rng))
        return sorted(labels), distractors, labels[0]

    @staticmethod
    def _draw(weights: np.ndarray, labels: list[int], rng: np.random.Generator) -> int:
        w = weights.copy()
        w[labels] = 0.0
        cdf = np.cumsum(w)
        return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"),
                       len(w) - 1))


def _lengths(num: int, rng: np.random.Generator) -> np.ndarray:
    """Frame counts: mostly 10-100, a few 1-3 and a few 301-360 (always >= 1 each)."""
    lengths = np.clip(np.round(rng.gamma(2.0, 19.0, num)) + 4, 4, 300).astype(np.int64)
    order = rng.permutation(num)
    n_short = max(1, round(_VERY_SHORT * num))
    n_long = max(1, round(_LONG * num)) if num > n_short else 0
    lengths[order[:n_short]] = rng.integers(1, 4, n_short)
    lengths[order[n_short:n_short + n_long]] = rng.integers(301, 361, n_long)
    return lengths


def _frames(world: _World, labels: list, distractors: list, lengths: np.ndarray,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Quantized frames of a chunk of videos, concatenated: modality -> [T, size]."""
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
    return out


def _audio_lengths(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Audio frame counts: equal to rgb, except a few tracks 1-3 frames shorter."""
    cut = rng.integers(1, 4, len(lengths))
    shorter = (rng.random(len(lengths)) < _AUDIO_SHORTER) & (lengths > 1)
    return np.where(shorter, np.maximum(lengths - cut, 1), lengths)


class _Titles:
    """Titles and categories of videos, from their labels (see the module docstring)."""

    def __init__(self, world: _World, names: list[str]):
        self.world = world
        missing = sorted(set(names) - set(_KEYWORDS))
        if missing:
            raise DataError(f"demo vocabulary classes without title keywords: {missing}")
        self.keywords = [[_KEYWORDS[n][lang].split() for n in names] for lang in (0, 1)]
        families = {x: fam for fam, members in _FAMILIES.items() for x in members}
        self.category = np.array([_CATEGORY_OF_FAMILY[families[n]] for n in names])

    def title(self, labels: list[int], distractors: list[int], main: int,
              rng: np.random.Generator) -> str:
        if rng.random() < _EMPTY_TITLE_P:
            return ""
        lang = int(rng.random() < _CHINESE_P)
        words = [str(rng.choice(self.keywords[lang][c])) for c in labels
                 if rng.random() < _MENTION_P[0 if c == main else 1]]
        if rng.random() < _WRONG_P:
            wrong = distractors if distractors and rng.random() < 0.5 else None
            c = int(rng.choice(wrong)) if wrong else self.world._draw(
                self.world.prior, labels, rng)
            words.append(str(rng.choice(self.keywords[lang][c])))
        words += [str(w) for w in rng.choice(_FILLER[lang], int(rng.integers(1, 4)))]
        if rng.random() < _NOISE_WORD_P:
            words.append("".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 5)))
        rng.shuffle(words)
        if lang:
            return "".join(words) + str(rng.choice(["", "！", "～", "【高清】"]))
        words = [w.capitalize() if rng.random() < 0.3 else w for w in words]
        return " ".join(words) + str(rng.choice(["", "!", " |", "...", " #shorts"]))

    def category_of(self, main_label: int, rng: np.random.Generator) -> int:
        if rng.random() < _CATEGORY_NOISE:
            return int(rng.integers(0, len(CATEGORIES)))
        return int(self.category[main_label])


def _write_split(world: _World, split: str, num: int, paths: list[str],
                 rng: np.random.Generator, titles: _Titles | None = None,
                 text_rng: np.random.Generator | None = None) -> None:
    lengths = _lengths(num, rng)
    audio_lengths = _audio_lengths(lengths, rng)
    with RecordWriter(paths) as writer:
        for first in range(0, num, _CHUNK):
            last = min(first + _CHUNK, num)
            sampled = [world.sample_labels(rng) for _ in range(first, last)]
            frames = _frames(world, [s[0] for s in sampled], [s[1] for s in sampled],
                             lengths[first:last], rng)
            start = 0
            for i, (labels, distractors, main) in enumerate(sampled, first):
                rgb = frames["rgb"][start:start + lengths[i]]
                audio = frames["audio"][start:start + audio_lengths[i]]
                title = category = None
                if titles is not None:  # a random stream of their own: same frames
                    title = titles.title(labels, distractors, main, text_rng)
                    category = titles.category_of(main, text_rng)
                writer.write(frame_example(f"demo-{split}-{i:06d}", labels,
                                           {"rgb": rgb, "audio": audio}, title=title,
                                           category=category))
                start += lengths[i]


def _manifest(num_train: int, num_eval: int, seed: int, num_shards: int) -> dict:
    with open(VOCABULARY, "rb") as f:
        vocabulary_sha256 = hashlib.sha256(f.read()).hexdigest()
    return {"format_version": FORMAT_VERSION, "num_train": num_train,
            "num_eval": num_eval, "seed": seed, "num_shards": num_shards,
            "vocabulary_sha256": vocabulary_sha256}


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def generate(root: str, num_train: int = DEFAULT_NUM_TRAIN,
             num_eval: int = DEFAULT_NUM_EVAL, seed: int = 0,
             num_shards: int = 4) -> DemoData:
    """Writes the demo dataset into `root` (always; existing files are replaced).

    Writes `train0000.tfrecord`.., `validate0000.tfrecord`.., `vocabulary.csv` and,
    last, the manifest `demo.json`. The same arguments give byte-identical files.

    Args:
        root: output folder (created if needed).
        num_train: number of training videos.
        num_eval: number of validation videos.
        seed: random seed.
        num_shards: number of shards per split.

    Returns:
        The `DemoData` describing the files.
    """
    _check_sizes(num_train=num_train, num_eval=num_eval, num_shards=num_shards)
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    names = read_vocabulary(VOCABULARY)
    # spawn(5)[:3] equals spawn(3): the frames are those of the data without titles
    world_seq, train_seq, eval_seq, train_text, eval_text = (
        np.random.SeedSequence(seed).spawn(5))
    world = _World(names, np.random.default_rng(world_seq))
    titles = _Titles(world, names)
    for split, num, seq, text_seq in (("train", num_train, train_seq, train_text),
                                      ("validate", num_eval, eval_seq, eval_text)):
        paths = [os.path.join(root, f"{split}{i:04d}.tfrecord")
                 for i in range(num_shards)]
        _write_split(world, split, num, paths, np.random.default_rng(seq), titles,
                     np.random.default_rng(text_seq))
    shutil.copyfile(VOCABULARY, os.path.join(root, "vocabulary.csv"))
    manifest = dict(_manifest(num_train, num_eval, seed, num_shards),
                    num_classes=len(names), num_categories=len(CATEGORIES))
    with open(os.path.join(root, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return _demo_data(root, len(names), num_train, num_eval)


def _reusable(root: str, expected: dict) -> DemoData | None:
    """The existing dataset in `root` if its manifest matches `expected`, else None."""
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(
            manifest.get(k) != v for k, v in expected.items()):
        return None
    shards = [os.path.join(root, f"{split}{i:04d}.tfrecord")
              for split in ("train", "validate") for i in range(expected["num_shards"])]
    shards.append(os.path.join(root, "vocabulary.csv"))
    if not all(os.path.isfile(p) for p in shards):
        return None
    return _demo_data(root, int(manifest["num_classes"]), expected["num_train"],
                      expected["num_eval"], int(manifest.get("num_categories", len(CATEGORIES))))


def _remove_stale(root: str) -> None:
    """Deletes leftovers (`<root>.tmp-<pid>`, `<root>.old-<pid>`) of dead processes."""
    parent, base = os.path.split(root)
    for entry in os.listdir(parent):
        tag, _, pid = entry[len(base):].partition("-")
        if not (entry.startswith(base) and tag in (".tmp", ".old") and pid.isdigit()):
            continue
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # a live process (maybe generating right now)
            except ProcessLookupError:
                pass
            except PermissionError:  # alive, owned by another user
                continue
        shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def ensure_demo_data(root: str | None = None, num_train: int = DEFAULT_NUM_TRAIN,
                     num_eval: int = DEFAULT_NUM_EVAL, seed: int = 0,
                     num_shards: int = 4, verbose: bool = True) -> DemoData:
    """Returns the demo dataset, generating it first if it is missing or outdated.

    The manifest `<root>/demo.json` records the arguments and `FORMAT_VERSION`; if it
    matches, the files are reused as they are. Otherwise the dataset is generated into
    a temporary sibling folder that replaces `root` only when complete, so a killed
    run never leaves a half dataset behind that would be reused.

    Args:
        root: dataset folder; default `DEFAULT_ROOT` (`<repo>/data/demo_generated`).
        num_train: number of training videos.
        num_eval: number of validation videos.
        seed: random seed.
        num_shards: number of shards per split.
        verbose: print progress to stderr while generating.

    Returns:
        The `DemoData`.

    Raises:
        DataError: the folder cannot be written.
    """
    _check_sizes(num_train=num_train, num_eval=num_eval, num_shards=num_shards)
    root = os.path.abspath(os.fspath(root or DEFAULT_ROOT))
    expected = _manifest(num_train, num_eval, seed, num_shards)
    found = _reusable(root, expected)
    if found is not None:
        return found

    temp, old = f"{root}.tmp-{os.getpid()}", f"{root}.old-{os.getpid()}"
    started = time.perf_counter()
    if verbose:
        print(f"generating demo data ({num_train + num_eval} videos) into {root} ...",
              end="", file=sys.stderr, flush=True)
    try:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        _remove_stale(root)
        data = generate(temp, num_train, num_eval, seed, num_shards)
        if os.path.exists(root):
            os.rename(root, old)
        try:
            os.rename(temp, root)
        except OSError:
            # Another process finished first: use its data if it is what we need.
            found = _reusable(root, expected)
            if found is None:
                raise
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(temp, ignore_errors=True)
        raise DataError(f"cannot write the demo data into {root}: {e}") from e
    if verbose:
        print(f" done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return found or _demo_data(root, data.num_classes, num_train, num_eval)
