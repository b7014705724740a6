#!/usr/bin/env bash
# examples/bilora/run.sh [full|smoke]      (the stages of dvc.yaml, without DVC)
# Runs prepare -> split -> train -> benchmark -> gate -> publish every time (DVC skips the
# stages that are up to date); a failing gate (exit 1) stops the script before publish.
# The profile defaults to params.yaml's `profile:`.
set -euo pipefail
cd "$(dirname "$0")"
P=params.yaml
profile="${1:-$(python -c "import yaml; print(yaml.safe_load(open('$P'))['profile'])")}"
echo "bilora: profile $profile"

run() { echo "+ loralab $*"; loralab "$@"; }
run data export $P:train --raw --out data/prepared
run data export $P:train --data data/prepared --set-from "$P:profiles.$profile.data" \
    --out data/splits
run train $P:train --data data/splits --set-from "$P:profiles.$profile.train" \
    --output runs/train --overwrite --no-progress
run eval runs/train --all-adapters --baseline --split test --output runs/bench \
    --set-from $P:benchmark --set-from "$P:profiles.$profile.benchmark" --no-progress
run gate runs/bench/metrics.json --baseline baselines/bilora.json \
    --rules "$P:profiles.$profile.gate" --promote --output runs/gate
run publish runs/train/adapters --to models --name bilora --gate runs/gate/gate.json
