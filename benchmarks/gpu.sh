#!/usr/bin/env bash
# The trainer, the input pipeline and serving on one GPU, in one table, in under 10
# minutes: benchmarks/nextvlad_throughput.py (the paper-size NEXTVLAD step in float32,
# mixed_bfloat16 and with XLA against the GPU's matmul peak and plain Keras),
# benchmarks/validate_data.py (the training pipeline's records/s on YT8M-size
# shards) and benchmarks/serving_latency.py (the exported demo model, TF Serving's
# way of loading it).
#
#     bash benchmarks/gpu.sh                 # GPU 0 (CUDA_VISIBLE_DEVICES to choose)
#     PYTHON=python3 bash benchmarks/gpu.sh  # another interpreter than .venv's
#
# Without a GPU it runs the same steps small on the CPU and says so (to check the
# script, not to measure). The scripts' own outputs go to $OUT (a temporary folder
# unless set), the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
OUT=${OUT:-$(mktemp -d)}
START=$(date +%s)

DEVICE=$("$PYTHON" -c "import tensorflow as tf; g = tf.config.list_physical_devices('GPU'); \
print(tf.config.experimental.get_device_details(g[0]).get('device_name', 'GPU') if g else '')" \
  2>/dev/null | tail -1)
if [ -n "$DEVICE" ]; then
  echo "GPU: $DEVICE"
  TRAINER=(--batch_size 160 --frames 300 --steps 10 --rounds 5 --peak_size 8192)
  PIPELINE=(--videos 4000 --shards 8 --rounds 3)
  SERVING=(--calls 300 --batches 20)
else
  DEVICE="no GPU: the same steps, small, on the CPU (a check of the script, not a measurement)"
  echo "$DEVICE"
  TRAINER=(--batch_size 8 --frames 100 --steps 1 --rounds 2 --peak_size 1024)
  PIPELINE=(--videos 200 --shards 2 --rounds 1)
  SERVING=(--calls 20 --batches 2 --videos 128)
fi

echo "trainer: nextvlad_throughput.py ${TRAINER[*]} --xla" >&2
"$PYTHON" benchmarks/nextvlad_throughput.py "${TRAINER[@]}" --xla --json "$OUT/trainer.json" \
  > "$OUT/trainer.txt" 2> "$OUT/trainer.log"
echo "pipeline: validate_data.py ${PIPELINE[*]}" >&2
"$PYTHON" benchmarks/validate_data.py "${PIPELINE[@]}" > "$OUT/pipeline.txt" 2> "$OUT/pipeline.log"
echo "serving: serving_latency.py ${SERVING[*]}" >&2
"$PYTHON" benchmarks/serving_latency.py "${SERVING[@]}" > "$OUT/serving.txt" 2> "$OUT/serving.log"

"$PYTHON" - "$OUT" "$DEVICE" "$(( $(date +%s) - START ))" <<'EOF'
import json, re, sys

out, device, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
trainer = json.load(open(f"{out}/trainer.json"))
pipeline = dict(re.findall(r"^\s*([\w -]+?):\s+([\d.]+) records/s",
                           open(f"{out}/pipeline.txt").read(), re.M))
serving = json.loads(open(f"{out}/serving.txt").read().strip().splitlines()[-1])["warmed"]
print(f"\n{device}; {seconds} s in all; load average {trainer['load_average'][0]:.1f}")
print("| part | measure | figure | against |")
print("|---|---|---|---|")
for row in trainer["rows"]:
    if "examples_per_s" not in row:
        print(f"| trainer | {row['variant']} peak | {row['gflop_per_s']:.0f} GFLOP/s | |")
        continue
    share = (f"{row['percent_of_peak']:.0f}% of the matmul peak, "
             if row.get("percent_of_peak") else "")
    print(f"| trainer | {row['variant']}, batch {trainer['batch_size']} x {trainer['frames']} "
          f"frames | {row['examples_per_s']:.1f} examples/s | {share}"
          f"{row['vs_plain']:.2f}x plain Keras, {row['vs_trainer_float32']:.2f}x float32 |")
print(f"| pipeline | training pipeline (make_dataset, batch 160) | "
      f"{float(pipeline['training pipeline']):.0f} videos/s | validate-data "
      f"{float(pipeline['validate-data']):.0f} videos/s |")
print(f"| serving | batch 1 latency, median / p90 | {serving['latency_ms']['median']:.1f} / "
      f"{serving['latency_ms']['p90']:.1f} ms | predict_dense "
      f"{serving['latency_dense_ms']['median']:.1f} / {serving['latency_dense_ms']['p90']:.1f} ms |")
print(f"| serving | batch 64 throughput, file order / by length | {serving['throughput']:.0f} / "
      f"{serving['throughput_sorted']:.0f} videos/s | predict_dense "
      f"{serving['throughput_dense']:.0f} videos/s |")
EOF
