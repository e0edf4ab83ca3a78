#!/usr/bin/env bash
# A GPU training round of the default model, one prepared script for the `device` tool's machine
# (torch, torchaudio, no soundfile/pesq, no network; see ../shared/gpu/README.md).
#
# Here, once:   bash ../shared/gpu/subset.sh ~/.cache/rotcodec-corpus .gpudata 48 && bash ../shared/gpu/wheels.sh .whl
# Try on CPU:   OUT=/tmp/gpu STEPS=3 BATCH=2 BENCH=0 INIT=runs/round1/model.pt bash benchmarks/gpu_round.sh
# On the GPU:   run(command="MINUTES=7 bash benchmarks/gpu_round.sh", carry=[".gpudata", ".whl"], timeout_s=540)
# Back here:    evaluate $OUT/model_half.pt like any round:
#               python benchmarks/training_round.py --round N --out <folder holding model.pt> --skip-train ...
#
# It continues the bundled default (--init, fresh optimizers), bf16 autocast with the quantizer,
# the STFT/iSTFT and the losses in fp32, the largest batch that fits (BATCH), for MINUTES of wall
# time, the last COOLDOWN minutes (default a fifth) with the learning rate falling to 0, then writes under $OUT: model_half.pt (float16 weights, under the 16 MiB a file that
# comes back), log.jsonl (losses, steps/s, GPU memory), bench.json (rotcodec bench --device cuda).
set -euo pipefail
OUT=${OUT:?set OUT (the device tool sets it)}
MINUTES=${MINUTES:-7}; COOLDOWN=${COOLDOWN:-$(python3 -c "print($MINUTES / 5)")}; BATCH=${BATCH:-128}; SEG=${SEG:-1.0}; STEPS=${STEPS:-1000000}
INIT=${INIT:-stft16k-cpu}; DATA=${DATA:-.gpudata}
if ! python3 -c "import soundfile" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target "$HOME/site" .whl/*.whl
fi
export PYTHONPATH=$HOME/site:$PWD PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv || true
mkdir -p "$OUT"
start=$(date +%s)
python3 -m rotcodec train recipes/stft16k_cpu.toml --init "$INIT" --data "$DATA/train" --valid "$DATA/valid" \
    --out "$OUT/run" --quiet --set data.batch_size="$BATCH" --set data.segment_seconds="$SEG" \
    --set data.num_workers=8 --set train.max_minutes="$MINUTES" --set 'train.clock="wall"' --set train.cooldown_minutes="$COOLDOWN" \
    --set train.steps="$STEPS" --set train.valid_every=1000 --set train.checkpoint_every=500 \
    --set data.valid_clips=16 --set train.examples=0 2>&1 | tail -20
echo "training wall: $(( $(date +%s) - start )) s"
python3 -c "import rotcodec; rotcodec.load_model('$OUT/run/model.pt').save('$OUT/model_half.pt', half=True)"
cp "$OUT/run/log.jsonl" "$OUT/log.jsonl"
rm -rf "$OUT/run"  # the full checkpoint (optimizer state) is too large to come back
[ "${BENCH:-1}" = 0 ] && exit 0
python3 -m rotcodec bench --model "$OUT/model_half.pt" --device "$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')" \
    --seconds 10 --json "$OUT/bench.json" 2>&1 | tail -40 || echo "bench failed (the model is saved)"
