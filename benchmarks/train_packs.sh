#!/usr/bin/env bash
# Train and export every classifier pack's shipped model with the project's own commands, under
# the protocol of `edgesnn bench packs` (seed 0, noise augmentation, one torch thread each; the
# epochs per pack are edgesnn.bench_packs.EPOCHS), two packs at a time. Packs whose deployed
# network the integer path covers ship the integer model, as the default does, unless it is more
# than 0.3 points less accurate than the float one (export warns): then the float model ships.
# Usage: benchmarks/train_packs.sh [pack ...]   (default: every classifier pack but mra_snn, wdcnn)
# Each pack: runs/packs/<pack>/ (checkpoint, history, PNG) -> models/<pack>/<pack>-cwru10[-int8].*
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EDGESNN_CWRU:-../shared/datasets/cwru}"

one() {
  local pack=$1 out=runs/packs/$1 epochs quant
  epochs=$(python -c "from edgesnn.bench_packs import EPOCHS; print(EPOCHS['$pack'])")
  edgesnn train --pack "$pack" --data "$DATA" --seed 0 --epochs "$epochs" --threads 1 --out "$out" > "$out.log" 2>&1
  quant=$(python -c "from edgesnn.export import quantizable; from edgesnn.training import load_checkpoint
print('yes' if quantizable(load_checkpoint('$out/checkpoint.pt')[0]) else '')")
  if [[ -n "$quant" ]]; then
    edgesnn export "$out/checkpoint.pt" --data "$DATA" --quantize --out "models/$pack" --name "$pack-cwru10-int8" >> "$out.log" 2>&1
    if grep -q "warning: .*less accurate than the float one" "$out.log"; then  # export's integer_loss
      rm "models/$pack/$pack-cwru10-int8".*
      quant=""
    fi
  fi
  if [[ -z "$quant" ]]; then
    edgesnn export "$out/checkpoint.pt" --data "$DATA" --out "models/$pack" --name "$pack-cwru10" >> "$out.log" 2>&1
  fi
  echo "$pack: $(tail -n 1 "$out.log")"
}

mkdir -p runs/packs
packs=("$@")
((${#packs[@]})) || packs=(inflor realspike ltl tssd ssnn trt)
for ((i = 0; i < ${#packs[@]}; i += 2)); do
  one "${packs[i]}" &
  if ((i + 1 < ${#packs[@]})); then one "${packs[i + 1]}" & fi
  wait
done
