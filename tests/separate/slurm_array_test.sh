#!/usr/bin/env bash
# scripts/separate-slurm.sh against a real Slurm (Debian's slurm-wlm): a
# single-node cluster on localhost (slurmctld and slurmd started here, with a
# slurm.conf of this test's own in a temporary folder, auth/none: no munge),
# an array of 3 tasks over a catalog of 8 songs with the fixture model on the
# CPU, one task cancelled while it runs and re-queued, then `separate
# --summarize`: complete, and every track's stems there exactly once, none
# separated twice.
#
# First, without Slurm, the script's own logic: each task's share as the array
# variables give it, checked against the shards computed here from sha256sum
# (the documented formula, not the binary's code), and the three shares
# together the whole catalog once. Where Slurm is not installed, or this is not
# root (slurmd launches jobs as their user), that part is skipped, saying so.
#
#   tests/separate/slurm_array_test.sh SEPARATE_BINARY REPO_ROOT
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin  # slurmctld and slurmd
separate=$1
root=$2
model=$root/tests/fixtures/htdemucs/small.th
script=$root/scripts/separate-slurm.sh
work=$(mktemp -d /tmp/stemkit-slurm-XXXXXX)
daemons=()
cleanup() {
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${daemons[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# write_wav FILE SECONDS: stereo 16-bit noise (tests/separate/noise_wav.sh).
# shellcheck source=tests/separate/noise_wav.sh
source "$root/tests/separate/noise_wav.sh"

# The shard of a path under the root: sha256's first 8 bytes, big-endian, mod N (docs/cli.md).
shard_of() {
  local hex hi lo
  hex=$(printf '%s' "$1" | sha256sum | cut -c1-16)
  hi=$((16#${hex:0:8}))
  lo=$((16#${hex:8:8}))
  echo $(((hi % $2 * (4294967296 % $2) + lo % $2) % $2))
}

catalog=$work/music
mkdir -p "$catalog/rock" "$catalog/jazz"
songs=(rock/one.wav rock/two.wav rock/three.wav rock/four.wav jazz/five.wav jazz/six.wav jazz/seven.wav jazz/eight.wav)
for s in "${songs[@]}"; do write_wav "$catalog/$s" 4; done
declare -A expected_count=([0]=0 [1]=0 [2]=0)
for s in "${songs[@]}"; do
  i=$(shard_of "$s" 3)
  expected_count[$i]=$((expected_count[$i] + 1))
done

# Every track's stems exactly once under OUT/small, no temporaries, and the
# summary complete with no track separated twice.
check_complete() {
  local out=$1/small
  for s in "${songs[@]}"; do
    local track
    track=$(basename "$s" .wav)
    [ "$(find "$out/$track" -maxdepth 1 -name '*.wav' | wc -l)" = 4 ] || fail "$out/$track: not 4 stems: $(ls -A "$out/$track")"
  done
  [ "$(find "$out" -mindepth 1 -maxdepth 1 -type d | wc -l)" = ${#songs[@]} ] || fail "$out: other folders than the tracks': $(ls "$out")"
  [ -z "$(find "$out" -name '*stemkit-tmp*' -o -name '*.tmp-*')" ] || fail "temporaries left: $(find "$out" -name '*tmp*')"
  "$separate" --summarize "$out" --json "$work/summary.json" > "$work/summary.txt" || fail "summary not complete: $(cat "$work/summary.txt")"
  grep -q "done:    ${#songs[@]}\$" "$work/summary.txt" || fail "summary: $(cat "$work/summary.txt")"
  if grep -q '"separated": *[2-9]' "$work/summary.json"; then fail "a track was separated twice: $(cat "$work/summary.json")"; fi
}

# 1. The script's logic, as each array task runs it, without Slurm.
for i in 0 1 2; do
  SEPARATE=$separate SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=2 SLURM_ARRAY_TASK_STEP=1 \
    "$script" -n "$model" -j 1 -o "$work/plain" "$catalog" 2> "$work/plain-$i.log" || fail "task $i: $(cat "$work/plain-$i.log")"
  grep -q "shard $i/3: ${expected_count[$i]} of the ${#songs[@]} files" "$work/plain-$i.log" \
    || fail "task $i: expected ${expected_count[$i]} files (sha256sum): $(cat "$work/plain-$i.log")"
done
check_complete "$work/plain"
if SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=2 "$script" -n "$model" "$catalog" 2> "$work/bad.log"; then
  fail "an array not from 0 ran"
fi
grep -q "SHARDS=N" "$work/bad.log" || fail "the script's error does not say what to do: $(cat "$work/bad.log")"
echo "the script's shares: ${expected_count[0]}, ${expected_count[1]}, ${expected_count[2]} files, each once"

# 2. A real Slurm.
if ! command -v slurmctld > /dev/null || ! command -v slurmd > /dev/null || ! command -v sbatch > /dev/null; then
  echo "skipped: Slurm is not installed (Debian: apt-get install slurm-wlm; .ci/run installs it)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "skipped: the Slurm part needs root (slurmd starts the jobs as their user)"
  exit 0
fi
export SLURM_CONF=$work/slurm/slurm.conf
mkdir -p "$work/slurm/state" "$work/slurm/spool"
# Ports of this test's own, so that two runs on one machine do not meet.
port=$((20000 + RANDOM % 20000))
cat > "$SLURM_CONF" << EOF
ClusterName=stemkittest
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$work/slurm/state
SlurmdSpoolDir=$work/slurm/spool
SlurmctldPidFile=$work/slurm/slurmctld.pid
SlurmdPidFile=$work/slurm/slurmd.pid
SlurmctldLogFile=$work/slurm/slurmctld.log
SlurmdLogFile=$work/slurm/slurmd.log
SlurmUser=root
SlurmdUser=root
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=localhost CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -c -f "$SLURM_CONF" > "$work/slurm/slurmctld.out" 2>&1 &
daemons+=($!)
slurmd -D -f "$SLURM_CONF" -N localhost > "$work/slurm/slurmd.out" 2>&1 &
daemons+=($!)
for _ in $(seq 100); do
  sinfo -h -o %t 2> /dev/null | grep -q idle && break
  sleep 0.2
done
sinfo -h -o %t | grep -q idle || fail "the single-node Slurm did not come up: $(cat "$work"/slurm/*.log "$work"/slurm/*.out)"

out=$work/slurm-out
victim=0
for i in 1 2; do [ "${expected_count[$i]}" -gt "${expected_count[$victim]}" ] && victim=$i; done
[ "${expected_count[$victim]}" -ge 2 ] || fail "no share of 2 files or more to interrupt"
# --shifts 2: each track takes a second or more on the CPU, so that the cancel lands between two of them.
job=$(SEPARATE=$separate sbatch --parsable --array=0-2 -o "$work/task-%a.log" "$script" \
  -n "$model" -j 1 --shifts 2 -o "$out" "$catalog")
record=$out/small/catalog-$victim-of-3.jsonl
deadline=$((SECONDS + 240))
until [ -f "$record" ] && [ "$(grep -c '"record":"track"' "$record")" -ge 1 ]; do
  [ $SECONDS -lt $deadline ] || fail "task $victim recorded no track in time: $(cat "$work"/task-*.log)"
  sleep 0.1
done
scancel "${job}_$victim"
sleep 1
done_before=$(grep -c '"record":"track"' "$record")
[ "$done_before" -lt "${expected_count[$victim]}" ] \
  || fail "task $victim finished its $done_before tracks before it was cancelled: nothing was interrupted"
scontrol requeue "${job}_$victim"
scontrol update JobId="${job}_$victim" StartTime=now  # a re-queued job waits otherwise
until [ -z "$(squeue -h -j "$job")" ]; do
  [ $SECONDS -lt $deadline ] || fail "the array did not finish: $(squeue -j "$job"; cat "$work"/task-*.log)"
  sleep 0.5
done
grep -q "CANCELLED" "$work/task-$victim.log" || fail "task $victim's log does not show its cancellation: $(cat "$work/task-$victim.log")"
[ "$(grep -c "shard $victim/3" "$work/task-$victim.log")" = 2 ] || fail "task $victim did not run again: $(cat "$work/task-$victim.log")"
grep -q "its set of stems is complete, skipped" "$work/task-$victim.log" \
  || fail "the re-queued task redid finished tracks: $(cat "$work/task-$victim.log")"
check_complete "$out"
echo "Slurm $(sinfo --version): 3 tasks, task $victim cancelled after $done_before of ${expected_count[$victim]} tracks and re-queued; the catalog complete, each track once"
