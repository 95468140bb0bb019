"""Synthetic videos with sound, written with PyAV: for tests, demos and benchmarks.

A video shows a coloured background with a square moving across it and plays a
tone with a little noise; colour and pitch can stand for a class. The codecs follow
the extension: .mp4 H.264 + AAC, .mkv MPEG-4 Part 2 + MP3, .webm VP9 + Opus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

CODECS = {  # extension -> (video codec, audio codec, audio sample rate)
    ".mp4": ("libx264", "aac", 44100),
    ".mkv": ("mpeg4", "libmp3lame", 44100),
    ".webm": ("libvpx-vp9", "libopus", 48000),
}


def write_video(path: str | Path, seconds: float = 3.0, width: int = 64, height: int = 48,
                fps: int = 25, color: Sequence[int] = (200, 60, 40),
                tone_hz: Optional[float] = 440.0, seed: int = 0, texture: float = 0.0,
                audio_seconds: Optional[float] = None) -> str:
    """Writes a synthetic video and returns its path.

    Args:
        path: the output file; its extension picks the codecs (see `CODECS`).
        seconds: duration.
        width, height: frame size (even numbers for 4:2:0 chroma).
        fps: frames per second.
        color: RGB background colour.
        tone_hz: pitch of the stereo sine tone; None writes no audio track.
        seed: seed of the noise and of the square's path.
        texture: amplitude (0-255) of a random texture drifting over the background:
            detail that costs bits and decoding time, as in real videos (0: flat).
        audio_seconds: duration of the audio track (default: `seconds`).
    """
    import av

    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in CODECS:
        raise ValueError(f"extension of {path} must be one of {', '.join(CODECS)}")
    video_codec, audio_codec, rate = CODECS[suffix]
    rng = np.random.default_rng(seed)
    num_frames = int(round(seconds * fps))
    with av.open(path, "w") as container:
        video = container.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if video_codec == "libx264":
            video.options = {"preset": "veryfast"}
        audio = container.add_stream(audio_codec, rate=rate, layout="stereo") if tone_hz else None
        background = np.empty((height, width, 3), np.uint8)
        background[:] = np.asarray(color, np.uint8)
        if texture:
            pattern = rng.uniform(-texture, texture, (height, 2 * width, 1))
            pattern = np.repeat(np.repeat(pattern[::2, ::2], 2, axis=0), 2, axis=1)[:height]
        side = max(2, min(width, height) // 4)
        dx, dy = rng.uniform(0.5, 1.5, 2) * (width / fps / 2, height / fps / 2)
        for i in range(num_frames):
            image = background.copy()
            if texture:
                shift = (2 * i) % width
                image = np.clip(image + pattern[:, shift : shift + width], 0, 255).astype(np.uint8)
            x = int(i * dx) % max(1, width - side)
            y = int(i * dy) % max(1, height - side)
            image[y : y + side, x : x + side] = 255 - image[y : y + side, x : x + side]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples = int(round((audio_seconds or seconds) * rate))
            t = np.arange(samples) / rate
            wave = 0.4 * np.sin(2 * np.pi * tone_hz * t) + 0.02 * rng.standard_normal(samples)
            wave = wave.astype(np.float32)
            block = 4096
            for start in range(0, samples, block):
                chunk = wave[start : start + block]
                frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp",
                                                   layout="stereo")
                frame.sample_rate = rate
                frame.pts = start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


# The demo's classes: a video has one colour and one tone, so two labels.
DEMO_COLORS = {"Red": (200, 40, 40), "Green": (40, 180, 60), "Blue": (40, 70, 200)}
DEMO_TONES = {"Low tone": 220.0, "High tone": 880.0}
DEMO_CLASSES = list(DEMO_COLORS) + list(DEMO_TONES)


def make_demo_videos(folder: str | Path, num_videos: int = 24, seed: int = 0,
                     width: int = 160, height: int = 120) -> str:
    """Writes a small labelled video collection for trying the raw-video pipeline.

    Each video (2-6 s, mp4/mkv/webm in turn) shows one of three background colours
    and plays one of two tones, labelled with both (5 classes). Writes `labels.txt`
    (one class name per line) and `manifest.tsv` (`file<TAB>title<TAB>labels`).

    The folder may be on any file system of TensorFlow (`videotag.files`).

    Returns:
        The manifest's path.
    """
    from videotag import files
    from videotag.output_checks import check_output_dir

    folder = str(folder)
    check_output_dir(folder, "output folder")
    rng = np.random.default_rng(seed)
    files.write_text(files.join(folder, "labels.txt"), "\n".join(DEMO_CLASSES) + "\n",
                     what="label file")
    lines = []
    extensions = list(CODECS)
    for i in range(num_videos):
        color = list(DEMO_COLORS)[i % len(DEMO_COLORS)]
        tone = list(DEMO_TONES)[(i // len(DEMO_COLORS)) % len(DEMO_TONES)]
        jitter = rng.integers(-30, 31, 3)
        rgb = np.clip(np.asarray(DEMO_COLORS[color]) + jitter, 0, 255)
        name = f"demo{i:03d}{extensions[i % len(extensions)]}"
        target = files.join(folder, name)
        # PyAV writes local files: elsewhere the video is staged locally and copied
        with files.local_output(target, "video") as local, files.output_errors(target, "video"):
            write_video(local, seconds=float(rng.uniform(2, 6)), width=width, height=height,
                        color=tuple(int(c) for c in rgb),
                        tone_hz=DEMO_TONES[tone] * rng.uniform(0.95, 1.05), seed=seed * 1000 + i)
        lines.append(f"{name}\t{color.lower()} background, {tone.lower()}\t{color},{tone}")
    manifest = files.join(folder, "manifest.tsv")
    files.write_text(manifest, "\n".join(lines) + "\n", what="manifest")
    return manifest
