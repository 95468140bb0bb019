"""The demo dataset's titles and categories, drawn from each video's labels.

- titles (context `title`) name some of the video's labels by keywords, in English
  or (30% of videos) in Chinese, among filler words, rare noise words and at times
  a keyword of a class the video is not labelled with; 4% of titles are empty. A
  title names the video's main label (the first drawn) with probability 0.8 and
  each other label with 0.45, so it adds information the frames lack (confusable
  classes of a family) without giving every label away.
- categories (context `category`, 8 of them, `CATEGORIES`): the family of the
  video's first-drawn label, replaced by a random category for 10% of videos.

They use a random generator of their own, so the frames
(`videotag.data.demo_frames`) are the same as without them.
"""

import numpy as np

from videotag.data.demo_frames import FAMILIES, World
from videotag.errors import DataError

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


class Titles:
    """Titles and categories of videos, from their labels (see the module docstring).

    Args:
        world: the class structure of the frames (its prior draws the wrong keywords).
        names: class names by index; each must have title keywords and a family.

    Raises:
        DataError: a class has no title keywords.
    """

    def __init__(self, world: World, names: list[str]):
        self.world = world
        missing = sorted(set(names) - set(_KEYWORDS))
        if missing:
            raise DataError(f"demo vocabulary classes without title keywords: {missing}")
        self.keywords = [[_KEYWORDS[n][lang].split() for n in names] for lang in (0, 1)]
        families = {x: fam for fam, members in FAMILIES.items() for x in members}
        self.category = np.array([_CATEGORY_OF_FAMILY[families[n]] for n in names])

    def title(self, labels: list[int], distractors: list[int], main: int,
              rng: np.random.Generator) -> str:
        """The title of a video with these labels, distractor classes and main label."""
        if rng.random() < _EMPTY_TITLE_P:
            return ""
        lang = int(rng.random() < _CHINESE_P)
        words = [str(rng.choice(self.keywords[lang][c])) for c in labels
                 if rng.random() < _MENTION_P[0 if c == main else 1]]
        if rng.random() < _WRONG_P:
            wrong = distractors if distractors and rng.random() < 0.5 else None
            c = int(rng.choice(wrong)) if wrong else self.world.draw(
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
        """The category index in [0, len(CATEGORIES)) of a video with this main label."""
        if rng.random() < _CATEGORY_NOISE:
            return int(rng.integers(0, len(CATEGORIES)))
        return int(self.category[main_label])
