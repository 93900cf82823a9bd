#!/usr/bin/env bash
# Soak test of patchmgr's recovery: kills apply, revert and sync with SIGKILL
# at random instants, RUNS times, and after each kill checks that the next
# command succeeds and leaves the checkout exactly pristine or exactly patched
# (tree of HEAD, `git status` empty including untracked and ignored files,
# `git fsck` clean, no journal, lock or temporary file left).
#
#   tools/soak-recovery.sh [RUNS]        (default 300)
#
# Half the kills come from a timer (kill -9 after a random delay within the
# command's measured duration: real instants, anywhere); the other half from
# the LD_PRELOAD shim of the tests (kill before the k-th file-system change,
# k random), which lands inside libgit2's writes of the index and refs too.
# The upstream is made locally (a few hundred files), nothing uses the network.
# Environment: PATCHMGR (the binary), KILL_SHIM (libpatchmgr_kill_shim.so),
# SOAK_DIR (work directory, default build/soak-recovery), SOAK_SEED, SOAK_FILES.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
runs=${1:-300}
patchmgr=${PATCHMGR:-$top/build/patchmgr/patchmgr}
shim=${KILL_SHIM:-$top/build/tests/patchmgr/libpatchmgr_kill_shim.so}
work=${SOAK_DIR:-$top/build/soak-recovery}
files=${SOAK_FILES:-120}
RANDOM=${SOAK_SEED:-$$}
for f in "$patchmgr" "$shim"; do
  [ -e "$f" ] || { echo "soak-recovery: $f is not built; run cmake --build build --target patchmgr patchmgr_tests" >&2; exit 2; }
done

rm -rf "$work"
mkdir -p "$work"
export GIT_AUTHOR_NAME=Soak GIT_AUTHOR_EMAIL=soak@example.org GIT_COMMITTER_NAME=Soak GIT_COMMITTER_EMAIL=soak@example.org
export GIT_AUTHOR_DATE="2026-01-01T00:00:00+0000" GIT_COMMITTER_DATE="2026-01-01T00:00:00+0000"
g() { git -c init.defaultBranch=main -c advice.detachedHead=false "$@"; }

# The upstream: `old`, then the pin. A file of a few KiB per path, so a move takes long enough to be hit.
up=$work/upstream
g init -q "$up"
body() { for _ in $(seq 1 40); do echo "line $1 of a module that the soak test rewrites, to give the file some size"; done; }
for i in $(seq 1 "$files"); do
  d=$up/src/part$((i % 7))/sub$((i % 3)); mkdir -p "$d"; body "$i" > "$d/f$i.py"
done
echo "# soak upstream" > "$up/README.md"
g -C "$up" add -A && g -C "$up" commit -qm old
old=$(g -C "$up" rev-parse HEAD)
for i in $(seq 1 5 "$files"); do f=$(ls "$up"/src/part$((i % 7))/sub$((i % 3))/f$i.py); echo "# pinned" >> "$f"; done
g -C "$up" commit -qam pin
pin=$(g -C "$up" rev-parse HEAD)

# The series, with git format-patch: adds, modifies, deletes, moves into new directories.
scratch=$work/scratch
g clone -q "$up" "$scratch"
for i in $(seq 1 2 "$files"); do
  d=$scratch/added/level$((i % 5))/inner$((i % 2)); mkdir -p "$d"; body "new $i" > "$d/n$i.py"
done
for i in $(seq 2 4 "$files"); do echo "# patched" >> "$scratch"/src/part$((i % 7))/sub$((i % 3))/f$i.py; done
g -C "$scratch" add -A && g -C "$scratch" commit -qm "Add and change modules" -m "Many new and changed files, so that a move takes long enough to be killed half-way."
for i in $(seq 3 6 "$files"); do g -C "$scratch" rm -q src/part$((i % 7))/sub$((i % 3))/f$i.py; done
for i in $(seq 4 12 "$files"); do
  mkdir -p "$scratch/moved/m$i"; g -C "$scratch" mv src/part$((i % 7))/sub$((i % 3))/f$i.py "moved/m$i/f$i.py"
done
g -C "$scratch" commit -qm "Delete and move modules" -m "Deleted files, and files moved into new directories, for the soak test."
project=$work/project
mkdir -p "$project/manifests" "$project/patches/demo"
g -C "$scratch" format-patch -q -2 -o "$work/patches"
p1=$project/patches/demo/0001-add-and-change.patch p2=$project/patches/demo/0002-delete-and-move.patch
mv "$work"/patches/0001-* "$p1"; mv "$work"/patches/0002-* "$p2"
sha() { sha256sum "$1" | cut -d' ' -f1; }
touched() { g -C "$scratch" diff --no-renames --name-only "$1" | paste -sd, | sed 's/,/, /g'; }
cat > "$project/manifests/demo.yaml" <<YAML
schema: 1
name: demo
upstream:
  url: $up
  commit: $pin
  track: main
checkout: upstream/demo
patches:
  - id: add-and-change
    file: $(basename "$p1")
    sha256: $(sha "$p1")
    title: Add and change modules
    purpose: Gives the soak test many files to write.
    status: implemented
    since: 2026-01-01
    files: [$(touched HEAD~2..HEAD~1)]
  - id: delete-and-move
    file: $(basename "$p2")
    sha256: $(sha "$p2")
    title: Delete and move modules
    purpose: Gives the soak test files to delete and to move into new directories.
    status: implemented
    since: 2026-01-01
    files: [$(touched HEAD~1..HEAD)]
YAML
co=$project/upstream/demo
pm() { (cd "$project" && "$patchmgr" "$@"); }
pm sync >/dev/null
pristine_tree=$(g -C "$co" rev-parse "$pin^{tree}")
pm apply >/dev/null
patched_tree=$(g -C "$co" rev-parse HEAD^{tree})
echo "soak: $(g -C "$co" diff --no-renames --name-only "$pristine_tree" "$patched_tree" | wc -l) files change between pristine and patched"

# Milliseconds and file-system changes of each command, for the kill instants.
now_ms() { date +%s%3N; }
declare -A ms ops
measure() {  # measure NAME SETUP...
  local name=$1; shift
  "$@"
  local t0; t0=$(now_ms)
  (cd "$project" && LD_PRELOAD=$shim PATCHMGR_OP_COUNT_FILE=$work/count "$patchmgr" "$name" >/dev/null 2>&1)
  ms[$name]=$(( $(now_ms) - t0 )); ops[$name]=$(cat "$work/count")
}
measure revert true
measure apply true
measure revert true
measure sync g -C "$co" checkout -q --detach "$old"
echo "soak: apply ${ms[apply]} ms / ${ops[apply]} changes, revert ${ms[revert]} ms / ${ops[revert]} changes, sync ${ms[sync]} ms / ${ops[sync]} changes"

fail() { echo "soak: FAILED at run $run ($what): $*" >&2; echo "soak: the checkout is left in $co" >&2; exit 1; }
check_exactly() {  # check_exactly TREE
  local tree; tree=$(g -C "$co" rev-parse HEAD^{tree})
  [ "$tree" = "$1" ] || fail "HEAD's tree is $tree, expected $1"
  local st; st=$(g -C "$co" status --porcelain --untracked-files=all --ignored)
  [ -z "$st" ] || fail "git status is not clean: $st"
  g -C "$co" fsck --no-dangling --no-progress >"$work/fsck" 2>&1 || fail "git fsck: $(cat "$work/fsck")"
  [ ! -e "$co/.git/patchmgr/journal.json" ] || fail "the journal is left"
  local stray; stray=$(find "$co/.git" "$co" -name '*.lock' -o -name '*.patchmgr-tmp' -o -name 'journal.json.tmp*' | head -3)
  [ -z "$stray" ] || fail "files left: $stray"
}

state=pristine  # the checkout is exactly pristine (HEAD at the pin) or patched
declare -A count=([timer]=0 [shim]=0 [midmove]=0 [finished]=0)
for run in $(seq 1 "$runs"); do
  if [ $state = patched ]; then cmd=revert
  elif (( RANDOM % 3 == 0 )); then cmd=sync; g -C "$co" checkout -q --detach "$old"
  else cmd=apply; fi
  if (( RANDOM % 2 )); then
    how=timer
    delay=$(( RANDOM % (ms[$cmd] + 1) ))
    # In a subshell of its own, so that bash's "Killed" notice goes to /dev/null.
    rc=$( { (cd "$project" && exec "$patchmgr" "$cmd" >/dev/null 2>&1) &
            pid=$!
            sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" && echo 0 || echo $?; } 2>/dev/null )
  else
    how=shim
    k=$(( RANDOM % (ops[$cmd] + 1) + 1 ))
    rc=$( { (cd "$project" && LD_PRELOAD=$shim PATCHMGR_KILL_AT_OP=$k exec "$patchmgr" "$cmd" >/dev/null 2>&1) && echo 0 || echo $?; } 2>/dev/null )
  fi
  what="$cmd killed by $how"
  count[$how]=$(( count[$how] + 1 ))
  if [ $rc -eq 0 ]; then count[finished]=$(( count[finished] + 1 ))
  elif [ $rc -ne 137 ]; then fail "exit $rc, not killed"; fi
  [ -e "$co/.git/patchmgr/journal.json" ] && count[midmove]=$(( count[midmove] + 1 ))
  pm status >"$work/out" 2>&1 || fail "status: $(cat "$work/out")"
  # The next command: the same one again, or the one that goes the other way.
  # (sync: sync again; apply refuses a HEAD that is not on the pin.)
  case "$cmd:$(( RANDOM % 2 ))" in
    sync:*) next=sync; state=pristine ;;
    apply:0|revert:1) next=apply; state=patched ;;
    *) next=revert; state=pristine ;;
  esac
  pm "$next" >"$work/out" 2>&1 || fail "$next after the kill: $(cat "$work/out")"
  if [ $state = patched ]; then check_exactly "$patched_tree"; else check_exactly "$pristine_tree"; fi
  (( run % 50 )) || echo "soak: $run runs, all exact"
done
echo "soak: $runs runs (${count[timer]} killed by a timer, ${count[shim]} by the shim; ${count[midmove]} left a move half-way, ${count[finished]} finished before the kill): every next command succeeded, every checkout exact"
