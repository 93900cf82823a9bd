#!/usr/bin/env bash
# A whole catalog as a Slurm job array: each array task separates its share of
# the inputs (separate --shard I/N), records each track beside the stems
# (OUT/<model>/catalog-I-of-N.jsonl) and skips the tracks whose set of stems
# is already complete, so that a task killed, preempted or re-queued resumes
# where it stopped. Slurm schedules, retries and re-queues; nothing here does.
#
#   sbatch --array=0-7 scripts/separate-slurm.sh -n htdemucs -d cuda -o /shared/stems /shared/music
#   ...then, once the array has finished:
#   separate --summarize /shared/stems/htdemucs      # done, failed with the reason, missing
#
# Everything after the script's name is passed to separate as it is (the
# model, the device, -o, the inputs: one folder, or --inputs-from LIST with
# --shard-root). N is the array's size: --array=0-(N-1). To run some shares
# again (those --summarize reports missing), name them and give N:
#   SHARDS=8 sbatch --array=2,5 scripts/separate-slurm.sh ...
# SEPARATE: the separate binary (default: separate on PATH). On the CPU, give
# -j with the task's --cpus-per-task. docs/cli.md, "A whole catalog".
#SBATCH --job-name=separate
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "separate-slurm.sh: not an array task: submit it with sbatch --array=0-N (one task per share of the inputs)" >&2
  exit 2
fi
if [ -n "${SHARDS:-}" ]; then
  count=$SHARDS
else
  if [ "${SLURM_ARRAY_TASK_MIN:-0}" != 0 ] || [ "${SLURM_ARRAY_TASK_STEP:-1}" != 1 ]; then
    echo "separate-slurm.sh: --array must be 0-(N-1) (this one: ${SLURM_ARRAY_TASK_MIN}-${SLURM_ARRAY_TASK_MAX}:${SLURM_ARRAY_TASK_STEP:-1}); to run some shares again, give N as SHARDS=N" >&2
    exit 2
  fi
  count=$((SLURM_ARRAY_TASK_MAX + 1))
fi
exec "${SEPARATE:-separate}" --shard "$SLURM_ARRAY_TASK_ID/$count" --skip-existing "$@"
