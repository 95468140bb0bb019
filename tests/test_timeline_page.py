"""The timeline page in a real headless Chromium (Debian's chromium and chromium-driver,
driven through WebDriver): its elements from the timeline file, a click on a tag
seeking the video to the tag's segments, the playing segment's tags lit up while the
video plays, a page without a server or the network, and a screenshot."""

import json
import shutil
import time

import numpy as np
import pytest

# found on the PATH, as .ci/run looks for them before installing them
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _tag(cid, name, p):
    return {"id": cid, "name": name, "probability": p}


# the clip: 12 s; Guitar in 0-5, Drum and Singing in 5-10, Guitar again in 10-12
CLIP = {"id": "clip", "duration": 12,
        "tags": [_tag(9, "Guitar", 0.91), _tag(22, "Drum", 0.7)],
        "segments": [
            {"start": 0, "end": 5, "tags": [_tag(9, "Guitar", 0.9), _tag(22, "Drum", 0.2)]},
            {"start": 5, "end": 10, "tags": [_tag(22, "Drum", 0.8), _tag(21, "Singing", 0.5),
                                              _tag(9, "Guitar", 0.05)]},
            {"start": 10, "end": 12, "tags": [_tag(9, "Guitar", 0.6)]}]}
OTHER = {"id": "no file", "duration": 10, "tags": [_tag(3, "Car", 0.5)],
         "segments": [{"start": 0, "end": 5, "tags": [_tag(3, "Car", 0.4)]},
                      {"start": 5, "end": 10, "tags": [_tag(17, "Motorcycle", 0.7)]}]}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("timeline")
    from videotag.extraction.synthetic import write_video
    from videotag.inference.timeline_page import write_timeline_page

    (root / "videos").mkdir()
    write_video(root / "videos" / "clip.webm", seconds=12.0, width=64, height=48, fps=10)
    timeline = root / "timeline.jsonl"
    timeline.write_text("".join(json.dumps(e) + "\n" for e in (CLIP, OTHER)))
    html = root / "site" / "page.html"
    html.parent.mkdir()
    # what `videotag timeline` runs (tests/test_segment_outputs.py runs the command)
    assert write_timeline_page(str(timeline), str(html), [str(root / "videos")]) == (2, 1)
    return root, html


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM and CHROMEDRIVER, ("chromium or chromedriver is not on the PATH: "
                                       "apt-get install chromium chromium-driver (.ci/run "
                                       "installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1000,800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _wait(condition, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_page_needs_no_server_and_no_network(page):
    _, html = page
    text = html.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "<script src" not in text and "<link" not in text
    data = json.loads(text.split('type="application/json">')[1].split("</script>")[0])
    assert [v["id"] for v in data["videos"]] == ["clip", "no file"]
    assert data["videos"][0]["src"] == "../videos/clip.webm"  # relative to the page
    assert "src" not in data["videos"][1]


def test_elements_clicks_seek_and_playing_lights_the_tags(page, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _, html = page
    browser.get(html.as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "section.video")
    assert [c.get_attribute("data-id") for c in cards] == ["clip", "no file"]
    clip, other = cards
    # lanes: the tags of the segments at probability >= 0.1, most probable first
    lanes = clip.find_elements(By.CSS_SELECTOR, ".lane")
    assert [lane.get_attribute("data-class") for lane in lanes] == ["9", "22", "21"]
    blocks = {lane.get_attribute("data-class"): [b.get_attribute("data-start") for b in
                                                lane.find_elements(By.CSS_SELECTOR, ".block")]
              for lane in lanes}
    assert blocks == {"9": ["0", "10"], "22": ["0", "5"], "21": ["5"]}
    widths = [b.size["width"] for b in lanes[0].find_elements(By.CSS_SELECTOR, ".block")]
    np.testing.assert_allclose(widths[0] / widths[1], 5 / 2, rtol=0.05)  # 5 s vs 2 s
    assert [t.text.split()[0] for t in clip.find_elements(By.CSS_SELECTOR, ".video-tags .tag")] \
        == ["Guitar", "Drum"]
    video = clip.find_element(By.TAG_NAME, "video")
    _wait(lambda: browser.execute_script("return arguments[0].readyState", video) >= 1,
          "the video's metadata")
    assert browser.execute_script("return arguments[0].duration", video) == pytest.approx(12, 0.05)

    def now():
        return browser.execute_script("return arguments[0].currentTime", video)

    def lit():  # read in one script: the page may redraw the tags between two calls
        return sorted(browser.execute_script(
            "return Array.from(arguments[0].querySelectorAll('.now .tag.active'))"
            ".map(t => t.getAttribute('data-class'))", clip))

    # a click on Singing's lane label seeks to its segment (5 s) and shows its tags
    lanes[2].find_element(By.CSS_SELECTOR, ".tag").click()
    _wait(lambda: now() == 5.0, "the seek to Singing")
    _wait(lambda: clip.get_attribute("data-segment") == "1", "segment 1 shown")
    assert lit() == ["21", "22"]
    assert "selected" in lanes[2].get_attribute("class")
    # Guitar: its first segment, then its next one on the second click
    guitar = clip.find_element(By.CSS_SELECTOR, ".video-tags .tag[data-class='9']")
    guitar.click()
    _wait(lambda: now() == 0.0 and clip.get_attribute("data-segment") == "0", "Guitar at 0 s")
    assert "active" in guitar.get_attribute("class")
    guitar.click()
    _wait(lambda: now() == 10.0 and clip.get_attribute("data-segment") == "2", "Guitar at 10 s")
    # playing from 4 s: past 5 s the second segment's tags light up, Guitar's go out
    browser.execute_script("arguments[0].currentTime = 4; arguments[0].play()", video)
    _wait(lambda: now() > 5.3, "the video playing past 5 s")
    _wait(lambda: clip.get_attribute("data-segment") == "1", "the playing segment")
    assert lit() == ["21", "22"]
    assert "active" not in guitar.get_attribute("class")
    browser.execute_script("arguments[0].pause()", video)
    # a video without its file: a click moves the playhead and shows the segment
    other.find_element(By.CSS_SELECTOR, ".lane[data-class='17'] .tag").click()
    _wait(lambda: other.get_attribute("data-segment") == "1", "Motorcycle's segment")
    assert other.find_element(By.CSS_SELECTOR, ".now .what").text == "0:05-0:10"

    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 600 and pixels.shape[1] >= 900
    assert pixels[..., :3].std() > 0.05  # a drawn page, not a blank one


def test_a_bad_timeline_line_is_named(tmp_path):
    from videotag.errors import DataError
    from videotag.inference.timeline_page import write_timeline_page

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(CLIP) + "\n" + '{"id": "x", "tags": []}\n')
    with pytest.raises(DataError, match=f"{bad}: line 2: not a timeline entry"):
        write_timeline_page(str(bad), str(tmp_path / "p.html"))
    assert not (tmp_path / "p.html").exists()
