#!/usr/bin/env bash
# Build the tspo-bidsapp image and run a synthetic dataset through it as a user would:
# read-only root filesystem, tmpfs /tmp, an unprivileged uid, no network. The participant level
# runs as documented (only OUTPUT_DIR mounted, no -w: the work folder falls back to /tmp).
# Checks exit codes (0 for participant and group; 64, 66 and 17 for bad invocations, 64 for a
# read-only OUTPUT_DIR), that no run prints a traceback or a matplotlib warning, and the
# derivatives.
#
#   scripts/container-test.sh [--no-build] [--size demo|test] [--participant-label L ...]
#                             [--samseg] [--engine podman|docker] [--image NAME] [--keep DIR]
#
# --no-build     reuse the image if it exists (build it otherwise)
# --size         synthetic dataset size (default demo: 4 participants; test: 2)
# --participant-label  process only these participants (default: all)
# --samseg       segment with SAMSEG in the container (10-15 min and 6 GB per participant);
#                by default the synthetic true anatomy is supplied with --derivatives
# --keep DIR     write the dataset and outputs to DIR and keep them (default: a temporary folder)
# Exits 0 with "skipped" when neither podman nor docker is available.
# CACERT=/path/ca.pem passes a certificate authority to pip inside the build (a build secret,
# not stored in the image); by default the system bundle is passed when it exists.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -1)
IMAGE=${IMAGE:-tspo-bidsapp:$VERSION}
ENGINE=${ENGINE:-}
BUILD=1
SIZE=demo
KEEP=
SAMSEG=0
LABELS=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) BUILD=0 ;;
    --samseg) SAMSEG=1 ;;
    --size) SIZE=$2; shift ;;
    --engine) ENGINE=$2; shift ;;
    --image) IMAGE=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --participant-label) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do LABELS+=("$1"); shift; done; continue ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "container-test: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

if [ -z "$ENGINE" ]; then
  for candidate in podman docker; do
    if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
      ENGINE=$candidate; break
    fi
  done
fi
if [ -z "$ENGINE" ]; then
  echo "container-test: skipped (no working podman or docker on this machine)"
  exit 0
fi

say() { printf '[container-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

# --- build --------------------------------------------------------------------------------
image_exists() { "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; }
if [ "$BUILD" = 1 ] || ! image_exists; then
  CACERT=${CACERT:-/etc/ssl/certs/ca-certificates.crt}
  SECRET=()
  [ -s "$CACERT" ] && SECRET=(--secret "id=cacert,src=$CACERT")
  say "building $IMAGE with $ENGINE"
  start=$(date +%s)
  "$ENGINE" build "${SECRET[@]}" --build-arg "VERSION=$VERSION" -t "$IMAGE" .
  say "built in $(( $(date +%s) - start )) s"
fi
say "image $IMAGE: $("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

# --- data ---------------------------------------------------------------------------------
if [ -n "$KEEP" ]; then
  ROOT=$(mkdir -p "$KEEP" && cd "$KEEP" && pwd)
else
  ROOT=$(mktemp -d "${TMPDIR:-/tmp}/tspo-container-test.XXXXXX")
  cleanup() {  # files written by uid 1000 in a rootless podman belong to a sub-uid
    rm -rf "$ROOT" 2>/dev/null || { [ "$ENGINE" = podman ] && podman unshare rm -rf "$ROOT"; } || true
  }
  trap cleanup EXIT
fi
D=$ROOT/out/derivatives  # mounted as /out; its parent is the container's read-only root
mkdir -p "$ROOT/data" "$D" "$ROOT/work"
chmod a+rwx "$ROOT/data" "$D" "$ROOT/work"  # the container runs as uid 1000

RUN=("$ENGINE" run --rm --read-only --tmpfs /tmp:rw,exec,mode=1777 -u 1000:1000 --network none)

say "synthesising the $SIZE dataset inside the container"
"${RUN[@]}" -v "$ROOT/data:/data" --entrypoint tspo-bidsapp-synth "$IMAGE" \
  /data/bids --truth-dir /data/truth --anat-derivatives /data/anat --size "$SIZE" --seed 42
n_subjects=$(find "$ROOT/data/bids" -maxdepth 1 -name 'sub-*' -type d | wc -l)
[ "$n_subjects" -ge 1 ] || fail "no participants synthesised"
expected=$n_subjects
PARTICIPANT_ARGS=()
[ "$SAMSEG" = 1 ] || PARTICIPANT_ARGS=(--derivatives /anat)
if [ ${#LABELS[@]} -gt 0 ]; then
  PARTICIPANT_ARGS+=(--participant-label "${LABELS[@]}")
  expected=${#LABELS[@]}
fi

APP=("${RUN[@]}" -v "$ROOT/data/bids:/bids:ro" -v "$ROOT/data/anat:/anat:ro" -v "$D:/out"
     -v "$ROOT/work:/work" "$IMAGE")
clean_log() {  # a run's messages: no traceback, no matplotlib cache warning
  ! grep -E "Traceback|Matplotlib (created a temporary|is building the font cache)" "$1" \
    || fail "$2 printed a traceback or a matplotlib warning (log: $1)"
}

# --- participant and group ----------------------------------------------------------------
# As in the README and the Dockerfile: no -w, only the output folder mounted; the default work
# folder beside /out would be on the read-only root, so it must fall back into /tmp.
say "participant level ($expected participant(s)), documented command without -w"
start=$(date +%s)
if ! "${RUN[@]}" -v "$ROOT/data/bids:/bids:ro" -v "$ROOT/data/anat:/anat:ro" -v "$D:/out" \
     "$IMAGE" /bids /out participant --nprocs 2 --omp-nthreads 1 "${PARTICIPANT_ARGS[@]}" \
     2>&1 | tee "$ROOT/participant.log"; then
  fail "participant level failed (log: $ROOT/participant.log)"
fi
say "participant level: $(( $(date +%s) - start )) s"
clean_log "$ROOT/participant.log" "the participant level"
grep -qs '"work_dir": "/tmp/tspo-bidsapp-work"' "$D"/logs/config-*.json \
  || fail "the default work folder is not /tmp/tspo-bidsapp-work"
# The group level runs the way Apptainer starts a container: HOME is the caller's host home,
# which does not exist inside; every cache must still land in /tmp.
say "group level (HOME set to a folder that does not exist, as under Apptainer)"
if ! "${RUN[@]}" -e HOME=/home/not-here -v "$ROOT/data/bids:/bids:ro" -v "$D:/out" \
     -v "$ROOT/work:/work" "$IMAGE" /bids /out group -w /work 2>&1 | tee "$ROOT/group.log"; then
  fail "group level failed (log: $ROOT/group.log)"
fi
clean_log "$ROOT/group.log" "the group level"

# --- outputs ------------------------------------------------------------------------------
[ -s "$D/dataset_description.json" ] || fail "no dataset_description.json"
grep -q '"DatasetType": "derivative"' "$D/dataset_description.json" || fail "not a derivative dataset"
n_done=$(find "$D" -maxdepth 1 -name 'sub-*' -type d | wc -l)
[ "$n_done" -eq "$expected" ] || fail "$n_done participant folders, expected $expected"
for sub in "$D"/sub-*/; do
  [ -n "$(find "$sub" -type f -name '*.tsv' -size +0)" ] || fail "no tables in $sub"
  [ -n "$(find "$sub" -type f -name '*_kinpar.tsv' -size +0)" ] || fail "no kinetic tables in $sub"
  [ -n "$(find "$sub" -type f -name '*.nii.gz' -size +0)" ] || fail "no images in $sub"
done
[ -s "$D/group/participants.tsv" ] || fail "no group table"
rows=$(( $(wc -l < "$D/group/participants.tsv") - 1 ))
[ "$rows" -ge "$expected" ] || fail "group table has $rows rows, expected $expected"
owners=$(find "$D" "$ROOT/work" -mindepth 1 -not -uid 1000 | head -3)
[ -z "$owners" ] || fail "files not owned by the run's uid: $owners"

# --- bad invocations keep their BIDS-Apps exit codes ------------------------------------------
expect_code() {
  local want=$1; shift
  set +e; "${APP[@]}" "$@" >/dev/null 2>&1; local got=$?; set -e
  [ "$got" -eq "$want" ] || fail "'$*' exited with $got, expected $want"
}
expect_code 64 /bids /out participant --nprocs 0
expect_code 64 /bids /out participant --no-such-option
expect_code 66 /missing /out participant
expect_code 17 /bids /out everyone
# A read-only OUTPUT_DIR: refused up front with 64 and a message, not a traceback.
set +e
"${RUN[@]}" -v "$ROOT/data/bids:/bids:ro" -v "$D:/out:ro" "$IMAGE" /bids /out participant \
  >"$ROOT/readonly.log" 2>&1
got=$?
set -e
[ "$got" -eq 64 ] || fail "a read-only OUTPUT_DIR exited with $got, expected 64"
grep -q "OUTPUT_DIR is not writable" "$ROOT/readonly.log" || fail "no message for a read-only OUTPUT_DIR"
clean_log "$ROOT/readonly.log" "the read-only OUTPUT_DIR run"
version=$("${RUN[@]}" "$IMAGE" --version)
[ "$version" = "tspo-bidsapp $VERSION" ] || fail "--version printed '$version'"

say "OK: $expected participant(s) through participant + group, read-only, uid 1000, no network"
