"""Decoding videos with PyAV: sampled RGB frames and a 16 kHz mono waveform.

Frame sampling (the time of a frame is its presentation time minus the first frame's):
- "fps": target times 0, 1/fps, 2/fps, ... (at most `max_frames`); for each target
  the first frame shown at or after it. A video of D seconds at 1 fps gives
  ceil(D) frames (the last target must not be later than the last frame).
- "uniform": `num_frames` targets at the centres of equal segments of the whole
  video, (i + 0.5) * D / num_frames; a frame may repeat when the video has fewer
  frames than targets.
Frames are converted to RGB and resized (bilinear, aspect ratio not kept: the YT8M
recipe) by FFmpeg's scaler, only for the frames kept.

Audio: every channel resampled to 16 kHz by FFmpeg, then averaged to mono (VGGish
averages channels too), as float32 in [-1, 1].

Damage is never silent: a file that cannot be opened, has no video stream, fails
to decode, or whose decoded frames stop well before its declared duration (a
truncated file) raises `DataError` naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from videotag.errors import DataError

SAMPLE_RATE = 16000
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg",
                    ".mpeg", ".ts", ".3gp", ".wmv", ".ogv")
# Decoded frames may end this much (seconds, or fraction of the duration) before the
# declared duration without the file counting as truncated.
_TRUNCATION_SLACK = 1.0
_TRUNCATION_FRACTION = 0.05


@dataclass
class DecodedVideo:
    """The sampled content of one video.

    Attributes:
        path: the video file.
        frames: uint8 [T, height, width, 3] RGB frames.
        times: float64 [T] target times of the frames, seconds from the start.
        waveform: float32 [samples] mono audio at `SAMPLE_RATE`, None without an
            audio track.
        duration: seconds of video decoded (last frame time + one frame interval).
    """

    path: str
    frames: np.ndarray
    times: np.ndarray
    waveform: Optional[np.ndarray]
    duration: float


def _declared_duration(container, stream) -> Tuple[Optional[float], bool]:
    """(seconds, whether they are the video stream's own) from the file's headers."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base), True
    if container.duration is not None:
        return container.duration / 1_000_000, False  # AV_TIME_BASE
    return None, False


def _scan_duration(path: str) -> Optional[float]:
    """Duration from the packets' timestamps (no decoding), for "uniform" sampling."""
    import av

    last = None
    with av.open(path) as container:
        stream = container.streams.video[0]
        first = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * stream.time_base)
            start = float(packet.pts * stream.time_base)
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
        return None if last is None else last - (first or 0.0)


def sample_targets(sampling: str, duration: Optional[float], fps: float, num_frames: int,
                   max_frames: int) -> np.ndarray:
    """Target times in seconds (see the module docstring)."""
    if sampling == "fps":
        return np.arange(max_frames, dtype=np.float64) / fps
    if duration is None or duration <= 0:
        raise ValueError("uniform sampling needs the video's duration")
    return (np.arange(num_frames, dtype=np.float64) + 0.5) * duration / num_frames


def decode_video(
    path: str,
    image_size: Tuple[int, int],
    sampling: str = "fps",
    fps: float = 1.0,
    num_frames: int = 300,
    max_frames: int = 300,
    audio: bool = True,
) -> DecodedVideo:
    """Decodes one video into sampled RGB frames and a 16 kHz mono waveform.

    Args:
        path: a video file (any container and codec FFmpeg reads: mp4, mkv, webm...).
        image_size: (height, width) of the returned frames.
        sampling: "fps" or "uniform" (see the module docstring).
        fps: frames per second for "fps".
        num_frames: frames for "uniform".
        max_frames: most frames for "fps"; decoding stops once they are taken and
            `max_frames / fps` seconds of audio are read.
        audio: also decode the first audio track.

    Returns:
        A `DecodedVideo`; `waveform` is None when the file has no audio track.

    Raises:
        DataError: the file is missing, not a video, corrupt or truncated.
    """
    import av

    try:
        container = av.open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"{path}: cannot be opened as a video ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise DataError(f"{path}: has no video stream")
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        astream = container.streams.audio[0] if audio and container.streams.audio else None
        declared, of_video = _declared_duration(container, vstream)
        if sampling == "uniform" and not declared:
            declared = _scan_duration(path)
            if not declared:
                raise DataError(f"{path}: the duration is unknown, needed for uniform sampling")
        targets = sample_targets(sampling, declared, fps, num_frames, max_frames)
        audio_needed = targets[-1] + 1.0 if sampling == "fps" else math.inf

        picked: List[np.ndarray] = []
        height, width = image_size
        resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE) if astream else None
        chunks: List[np.ndarray] = []
        audio_seconds = 0.0
        first_time = last_time = last_frame = None
        decoded = 0
        interval = 1.0 / float(vstream.guessed_rate or vstream.average_rate or 25)
        video_done = False
        try:
            for packet in container.demux(*([vstream] + ([astream] if astream else []))):
                if packet.stream is vstream:
                    if video_done:
                        continue
                    for frame in packet.decode():
                        t = _frame_time(frame, vstream, decoded, interval)
                        decoded += 1
                        first_time = t if first_time is None else first_time
                        t -= first_time
                        last_time = t if last_time is None else max(last_time, t)
                        last_frame = frame
                        if targets[len(picked)] <= t + 1e-6:
                            rgb = _to_rgb(frame, height, width)
                            while len(picked) < len(targets) and targets[len(picked)] <= t + 1e-6:
                                picked.append(rgb)
                        if len(picked) == len(targets):
                            video_done = True
                            break
                else:
                    for frame in packet.decode():
                        for out in resampler.resample(frame):
                            chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
                            audio_seconds += out.samples / SAMPLE_RATE
                if video_done and (astream is None or audio_seconds >= audio_needed):
                    break
            else:
                if astream is not None:
                    for out in resampler.resample(None):
                        chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
        except av.error.FFmpegError as exc:
            at = f" at {last_time:.1f} s" if last_time is not None else ""
            raise DataError(f"{path}: decoding failed{at} ({_reason(exc)})") from None

    if last_frame is None:
        raise DataError(f"{path}: no video frame could be decoded")
    duration = last_time + interval
    # the container's duration covers every stream: a longer audio track is no damage
    reached = duration if of_video else max(duration, audio_seconds)
    if not video_done and declared and reached < declared - max(
            _TRUNCATION_SLACK, _TRUNCATION_FRACTION * declared):
        raise DataError(
            f"{path}: frames stop at {duration:.1f} s of the declared {declared:.1f} s: "
            "the file is truncated or corrupt"
        )
    if sampling == "uniform" and len(picked) < len(targets):
        # targets just past the last frame (a declared duration slightly too long)
        rgb = _to_rgb(last_frame, height, width)
        picked.extend([rgb] * (len(targets) - len(picked)))
    waveform = None
    if astream is not None:
        waveform = np.concatenate(chunks) if chunks else np.zeros([0], np.float32)
    return DecodedVideo(path=path, frames=np.stack(picked), times=targets[: len(picked)],
                        waveform=waveform, duration=duration)


def _to_rgb(frame, height: int, width: int) -> np.ndarray:
    return frame.to_ndarray(format="rgb24", width=width, height=height,
                            interpolation="BILINEAR")


def _frame_time(frame, stream, index: int, interval: float) -> float:
    if frame.pts is not None and stream.time_base is not None:
        return float(frame.pts * stream.time_base)
    return index * interval


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
