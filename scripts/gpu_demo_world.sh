#!/usr/bin/env bash
# One lent-GPU session of the demo world (issue 4). Renders a pool of portraits on every CPU; then
# trains the demo StyleGAN2 and after it the demo e4e encoder and (beside the encoder) fine-tunes
# the predictor; the demo CLIP trains beside all of them with DataLoader workers rendering its
# minimal-pair batches; the custom-op CUDA tests compile and run in the background.
# Everything that comes back is under $OUT (at most 8 files: 4 weights, 4 logs).
#   OUT=/some/dir bash scripts/gpu_demo_world.sh [gan_s] [encoder_s] [predictor_s] [clip_s]
set -u
OUT=${OUT:?set OUT}
GAN_S=${1:-300}; ENC_S=${2:-150}; PRED_S=${3:-150}; CLIP_S=${4:-420}
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}
W=${WORK:-/tmp/demo_world}
POOL=$W/pool.pt
export PYTHONUNBUFFERED=1
mkdir -p "$W"
LOG=$OUT/session.log
{ date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  $PY -c "import torch, open_clip; print('torch', torch.__version__, torch.version.cuda, torch.cuda.is_available(), 'open_clip', open_clip.__version__)"
  nproc; } > "$LOG" 2>&1
$PY -m training.demo.pool --n "${POOL_N:-120000}" --out "$POOL" >> "$LOG" 2>&1 || { echo "pool failed" >> "$LOG"; exit 1; }
( TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=4 timeout "${TEST_S:-400}" $PY -m pytest tests/custom_ops -q -p no:cacheprovider \
    -o addopts="-ra" > "$OUT/cuda_tests.log" 2>&1; echo "pytest exit $?" >> "$OUT/cuda_tests.log" ) &
TESTS=$!
( HUB_OPS=ref timeout $((CLIP_S + 60)) $PY -m training.demo.clip train --device "$DEV" --workers "${CLIP_WORKERS:-8}" \
    --seconds "$CLIP_S" --steps "${CLIP_STEPS:-5000}" --batch "${CLIP_BATCH:-256}" --image-size 256 --eval-n 0 \
    --checkpoint-every 250 --threads 2 --run-dir "$W/clip" --out "$W/clip_out/clip.safetensors" > "$OUT/clip.log" 2>&1
  echo "clip exit $?" >> "$OUT/clip.log"; cp "$W/clip_out/clip.safetensors" "$OUT/" && cat "$W/clip_out/clip.json" >> "$OUT/clip.log" ) &
CLIP=$!
echo "== gan" >> "$LOG"
HUB_OPS=ref timeout $((GAN_S + 60)) $PY -m training.demo.train_gan --device "$DEV" --pool "$POOL" --seconds "$GAN_S" \
  --kimg 100000 --threads 2 --run-dir "$W/g" --export "$OUT/generator.safetensors" >> "$LOG" 2>&1
echo "gan exit $?" >> "$LOG"
( HUB_OPS=ref timeout $((PRED_S + 60)) $PY -m training.demo.predictor finetune --pool "$POOL" --device "$DEV" \
    --seconds "$PRED_S" --threads 2 --out "$OUT/predictor.safetensors" > "$OUT/predictor.log" 2>&1
  echo "predictor exit $?" >> "$OUT/predictor.log" ) &
PRED=$!
echo "== encoder" >> "$LOG"
HUB_OPS=ref timeout $((ENC_S + 60)) $PY -m training.demo.train_encoder --device "$DEV" --pool "$POOL" --seconds "$ENC_S" \
  --steps "${ENC_STEPS:-20000}" --threads 2 --fp16 --generator "$OUT/generator.safetensors" --run-dir "$W/e" \
  --out "$OUT/encoder.safetensors" >> "$LOG" 2>&1
echo "encoder exit $?" >> "$LOG"
wait $PRED $CLIP $TESTS
date >> "$LOG"
