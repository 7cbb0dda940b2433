#!/usr/bin/env bash
# The benchmark suite, then every study's pipeline, on a CUDA machine, in about 13 minutes:
#   bash benchmarks/gpu.sh            # writes everything to $OUT (default: ./bench_gpu)
# Installs the CUDA extra, checks that JAX sees the GPU, runs a short CUDA
# training smoke run, `cvd bench --json`, then `cvd reproduce --profile gpu-smoke`
# (every study, 2 epochs: lax.conv, vmapped replicas, Orbax, the report), copying
# its report, timing and plan into $OUT. On a GPU, train.strategy=auto
# picks vmap + scan for every family (research/train/engine.py); the suite's
# strategy table shows whether that is the fastest there too.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench_gpu}"
mkdir -p "$OUT"
python3 -m pip install --quiet --disable-pip-version-check -e ".[cuda,torch]" 2>&1 | tail -3 || true
python3 - <<'PY' | tee "$OUT/devices.json"
import json, jax
print(json.dumps({"backend": jax.default_backend(), "devices": [d.device_kind for d in jax.devices()]}))
assert jax.default_backend() == "gpu", "JAX does not see a GPU"
PY
timeout 120 cvd train --config experiments/mnist1d.py:cnn --config.seeds=8 --config.train.epochs=5 \
  --workdir "$OUT/smoke_run" --no-progress | tee "$OUT/smoke.txt"
cp "$OUT/smoke_run/summary.json" "$OUT/smoke_summary.json"
timeout 420 cvd bench --json > "$OUT/bench.json"
python3 -c "import json,sys; from benchmarks.suite import summary_lines; print('\n'.join(summary_lines(json.load(open(sys.argv[1])))))" "$OUT/bench.json"
# Every study's pipeline on the GPU, and its wall time (timing.json); the report and plan beside it.
cvd reproduce --profile gpu-smoke --plan > "$OUT/gpu_smoke_plan.txt" || true
timeout 360 cvd reproduce --profile gpu-smoke --workdir "$OUT/gpu_smoke" --no-progress > "$OUT/gpu_smoke.txt" 2>&1 || echo "gpu-smoke did not finish (see $OUT/gpu_smoke.txt)"
cp "$OUT/gpu_smoke/timing.json" "$OUT/gpu_smoke_timing.json" 2>/dev/null || true
cp "$OUT/gpu_smoke/report/report.md" "$OUT/gpu_smoke_report.md" 2>/dev/null || true
tail -3 "$OUT/gpu_smoke.txt"
