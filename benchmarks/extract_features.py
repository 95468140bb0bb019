"""Feature extraction speed on a 60-second 360p clip with sound.

Writes a synthetic clip (H.264 + AAC, 640x360, 30 fps), then measures on this machine:
- decoding alone (PyAV at 1 frame/s resized for the CNN, plus the log-mel patches),
- the networks alone (InceptionV3 at 299x299 and VGGish, untrained weights: the speed
  is the same as with trained ones; PCA and quantization included),
- the whole run (`videotag.extraction.extract`: decoding threads overlapping the
  networks, records written) over several copies of the clip,
and reports videos/s and frames/s of the run, the decode and network shares, and the
run's speed-up over decoding and networks one after the other (the baseline,
measured in the same run).

    python benchmarks/extract_features.py --seconds 60 --videos 3 --rounds 3
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from videotag.extraction import ExtractionConfig, Extractor, Pca, extract  # noqa: E402
from videotag.extraction.synthetic import write_video  # noqa: E402


def random_pca(input_dim, output_dim, seed):
    rng = np.random.default_rng(seed)
    vecs = np.linalg.qr(rng.normal(size=(input_dim, output_dim)))[0]
    return Pca(np.zeros(input_dim), vecs, np.linspace(1.0, 0.1, output_dim))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--videos", type=int, default=3, help="copies of the clip in the run")
    parser.add_argument("--backbone", default="InceptionV3")
    parser.add_argument("--decoders", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--texture", type=float, default=30.0,
                        help="detail of the synthetic picture (30: about 0.6 Mbit/s)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="videotag-bench-"))
    try:
        clip = work / "videos" / "clip0.mp4"
        clip.parent.mkdir()
        start = time.perf_counter()
        write_video(clip, seconds=args.seconds, width=args.width, height=args.height, fps=30,
                    texture=args.texture)
        size = clip.stat().st_size
        print(f"clip: {args.seconds:.0f} s, {args.width}x{args.height}, 30 fps, H.264 + AAC, "
              f"{size / 1e6:.1f} MB = {size * 8 / args.seconds / 1e3:.0f} kbit/s (written in "
              f"{time.perf_counter() - start:.1f} s)")
        for i in range(1, args.videos):
            shutil.copy(clip, clip.parent / f"clip{i}.mp4")

        cfg = ExtractionConfig(backbone=args.backbone, backbone_weights="random",
                               audio_weights="random", num_decoders=args.decoders)
        extractor = Extractor(cfg, with_pca=False)
        extractor.pca = {"rgb": random_pca(extractor.dims["rgb"], 1024, 0),
                         "audio": random_pca(128, 128, 1)}
        print(f"backbone {extractor.rgb.name} at {extractor.rgb.image_size[0]}px "
              f"({extractor.dims['rgb']}-d), VGGish; {os.cpu_count()} CPUs")

        decoded = extractor.decode(str(clip))
        extractor.features(decoded)  # warm-up: traces the networks
        frames = len(decoded.video.frames)
        decode_times, network_times, run_times, runs = [], [], [], []
        for round_ in range(args.rounds):  # baseline and run alternate: same conditions
            start = time.perf_counter()
            decoded = extractor.decode(str(clip))
            decode_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            extractor.features(decoded)
            network_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            summary = extract(cfg, [str(clip.parent)], str(work / f"records{round_}"),
                              extractor=extractor, progress=False)
            run_times.append((time.perf_counter() - start) / summary.extracted)
            runs.append(summary)
        decode_s, network_s = float(np.median(decode_times)), float(np.median(network_times))
        sequential = decode_s + network_s
        per_video = float(np.median(run_times))
        inside_decode = np.median([r.decode_seconds / r.extracted for r in runs])
        inside_network = np.median([r.network_seconds / r.extracted for r in runs])
        print(f"\nper video ({frames} frames), median of {args.rounds} rounds:")
        print(f"  decoding + log-mel     {decode_s:6.2f} s  ({decode_s / sequential:4.0%})")
        print(f"  CNN + VGGish + PCA     {network_s:6.2f} s  ({network_s / sequential:4.0%})")
        print(f"  one after the other    {sequential:6.2f} s  = {1 / sequential:.3f} videos/s "
              "(baseline)")
        print(f"\nextraction run ({args.videos} videos, {args.decoders} decoding threads):")
        print(f"  {per_video:.2f} s per video = {1 / per_video:.3f} videos/s, "
              f"{frames / per_video:.1f} frames/s")
        print(f"  inside the run: decoding {inside_decode:.2f} s (in its threads), "
              f"networks {inside_network:.2f} s per video")
        print(f"  speed-up over the baseline: {sequential / per_video:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
