#!/bin/bash
# sbatch --array=0-7 examples/slurm_array.sh examples/lora_sweep.yaml /shared/runs/lora_sweep
# A grid as a SLURM array job: array task i runs shard i of N (N = the array size), so every
# run of the grid runs in exactly one task. The output folder must be on a file system all
# nodes see. Re-submitting the same array resumes: finished runs are skipped, killed runs
# (preempted, timed out) continue from their last checkpoint. When all tasks are done:
#   loralab runs reindex /shared/runs/lora_sweep && loralab compare /shared/runs/lora_sweep
#SBATCH --job-name=loralab-grid
#SBATCH --cpus-per-task=8
#SBATCH --gres=gpu:1
#SBATCH --mem=32G
#SBATCH --time=08:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
GRID=${1:?usage: sbatch --array=0-(N-1) examples/slurm_array.sh GRID.yaml OUTPUT_DIR}
OUT=${2:?usage: sbatch --array=0-(N-1) examples/slurm_array.sh GRID.yaml OUTPUT_DIR}
# activate the environment loralab is installed in, e.g.: source ~/venvs/loralab/bin/activate
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}
loralab grid "$GRID" --output "$OUT" \
  --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" --jobs 1
