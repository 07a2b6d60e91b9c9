#!/usr/bin/env bash
# `make container-test`: the image and compose.yaml, run for real with podman.
# Builds the base image (containers/base.sh, once) and the ingestd image offline, validates
# compose.yaml, brings it up with the appendix day at 0.01 s per simulated minute, waits for
# `ingestd verify --expect 96` inside a worker, checks both workers did work, PID 1 is tini,
# the provider ran once, the health check, pause/resume and status from outside, then stops
# the workers with SIGTERM (they must drain and exit 0) and removes everything it made. Then
# the same day again with compose.postgres.yaml added: the workers coordinating through a
# PostgreSQL container (built from Debian's packages) instead of the state dir.
# If the engine cannot run a container here, it says why and fails: it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
BASE=${BASE:-localhost/ingestd-base:bookworm}
PG_BASE=localhost/ingestd-postgres-base:bookworm
IMAGE=localhost/ingestd:latest
VERSION=$(.venv/bin/python -c 'import ingestd; print(ingestd.__version__)')
PROJECT=ingestdtest$$
COMPOSE=(.venv/bin/podman-compose --in-pod false -p "$PROJECT" -f compose.yaml)
export INGESTD_SECONDS_IN_MIN=0.01

say() { echo "container-test: $*"; }
fail() { echo "container-test: FAILED: $*" >&2; exit 1; }
name() { echo "${PROJECT}_$1_1"; }
inside() { podman exec "$(name worker-a)" "$@"; }
day_done() {  # day_done HOW: wait for `verify --expect 96` inside; both workers did work
    local deadline=$((SECONDS + 240)) report files worker
    until inside ingestd verify /data/drop --expect 96 >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            inside ingestd verify /data/drop --expect 96 || true
            podman logs --tail 20 "$(name worker-a)" || true
            fail "the appendix day was not done within 240 s ($1)"
        fi
        sleep 2
    done
    report=$(inside ingestd verify /data/drop --expect 96)
    echo "$report" | sed 's/^/    /'
    for worker in worker-a worker-b; do
        files=$(echo "$report" | sed -n "s/^  $worker: files \([0-9]*\),.*/\1/p")
        [ -n "$files" ] && [ "$files" -gt 0 ] || fail "$worker did no work ($1)"
    done
}
stopped_cleanly() {  # stopped_cleanly HOW: `compose stop` (SIGTERM); both workers exit 0
    "${COMPOSE[@]}" stop >/dev/null 2>&1
    for worker in worker-a worker-b; do
        code=$(podman inspect --format '{{.State.ExitCode}}' "$(name "$worker")")
        [ "$code" = 0 ] || fail "$worker exited $code after SIGTERM ($1)"
        podman logs "$(name "$worker")" 2>&1 | grep -q '"event": "shutdown"' \
            || fail "$worker did not log its shutdown ($1)"
    done
}

command -v podman >/dev/null || fail "podman is not installed (apt-get install podman runc mmdebstrap; .ci/run does)"
[ -x .venv/bin/podman-compose ] || fail "podman-compose is missing from .venv (make venv installs the test extra)"
podman info >/tmp/ingestd-podman-info.$$ 2>&1 || fail "podman cannot start: $(tail -3 /tmp/ingestd-podman-info.$$)"
rm -f /tmp/ingestd-podman-info.$$

if ! podman image exists "$BASE"; then
    say "building the base image $BASE from Debian packages (mmdebstrap)"
    containers/base.sh "$BASE"
fi
if ! podman image exists "$PG_BASE"; then
    say "building $PG_BASE from Debian packages (mmdebstrap)"
    containers/base.sh "$PG_BASE" postgresql-15,tini
fi
out=$(podman run --rm --network none "$BASE" python3 -c 'print("ok")' 2>&1) \
    || fail "the engine cannot run a container here: $out"

cleanup() {
    "${COMPOSE[@]}" down -v >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "wheels for an offline install (pip wheel)"
rm -rf containers/wheels
.venv/bin/pip wheel --quiet --wheel-dir containers/wheels '.[metrics,postgres]' \
    >/tmp/ingestd-wheels.$$ 2>&1 || fail "pip wheel: $(tail -5 /tmp/ingestd-wheels.$$)"
rm -f /tmp/ingestd-wheels.$$
started=$(date +%s.%N)
podman build --quiet --format docker --build-arg "BASE=$BASE" -t "$IMAGE" \
    -t "localhost/ingestd:$VERSION" -f Containerfile . >/dev/null
built=$(date +%s.%N)
# The image is tagged with the version it holds, and says so.
said=$(podman run --rm "localhost/ingestd:$VERSION" --version)  # the entrypoint is ingestd
[ "$said" = "ingestd $VERSION" ] || fail "localhost/ingestd:$VERSION says '$said'"
say "localhost/ingestd:$VERSION: $said"
podman build --quiet --format docker --build-arg "BASE=$PG_BASE" -t localhost/ingestd-postgres:15 \
    -f containers/postgres/Containerfile . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "image $IMAGE built in $(python3 -c "print(round($built - $started, 1))") s, $((size / 1000000)) MB"

"${COMPOSE[@]}" config --quiet || fail "compose.yaml does not validate"
"${COMPOSE[@]}" -f compose.postgres.yaml config --quiet || fail "compose.postgres.yaml does not validate"
"${COMPOSE[@]}" up -d >/dev/null 2>&1 || fail "compose up: $("${COMPOSE[@]}" up -d 2>&1 | tail -5)"
say "up: $(podman ps -a --filter "name=$PROJECT" --format '{{.Names}}' | sort | tr '\n' ' ')"

day_done "state dir on the volume"
for worker in worker-a worker-b; do
    pid1=$(podman exec "$(name "$worker")" cat /proc/1/comm)
    [ "$pid1" = tini ] || fail "$worker: PID 1 is $pid1, not tini"
    uid=$(podman exec "$(name "$worker")" id -u)
    [ "$uid" != 0 ] || fail "$worker runs as root"
    if podman exec "$(name "$worker")" touch /opt/ingestd/written 2>/dev/null; then
        fail "$worker: the root filesystem is writable"
    fi
    podman healthcheck run "$(name "$worker")" >/dev/null || fail "$worker: HEALTHCHECK failed"
done
say "both workers worked; PID 1 is tini; non-root; read-only root; healthy"

runs=$(podman ps -a --filter "name=$(name provider)" --format '{{.Names}}' | wc -l)
wrote=$(podman logs "$(name provider)" 2>&1 | grep -c '^simulation: wrote' || true)
code=$(podman inspect --format '{{.State.ExitCode}}' "$(name provider)")
[ "$runs" = 1 ] && [ "$wrote" = 1 ] && [ "$code" = 0 ] \
    || fail "the provider should run once and exit 0 (containers $runs, runs $wrote, exit $code)"
say "the provider ran once and exited 0"

inside ingestd status /data/drop >/dev/null || fail "ingestd status from outside"
[ "$(inside ingestd pause /data/drop)" = paused ] || fail "ingestd pause from outside"
inside ingestd status /data/drop | grep -q PAUSED || fail "status does not show the pause"
[ "$(inside ingestd resume /data/drop)" = resumed ] || fail "ingestd resume from outside"
say "status, pause and resume from outside"

stopped_cleanly "state dir"
say "SIGTERM: both workers drained and exited 0"
"${COMPOSE[@]}" down -v >/dev/null 2>&1

say "again, coordinating through PostgreSQL (compose.postgres.yaml)"
COMPOSE+=(-f compose.postgres.yaml)
"${COMPOSE[@]}" up -d >/dev/null 2>&1 || fail "compose up: $("${COMPOSE[@]}" up -d 2>&1 | tail -5)"
# INGESTD_LEDGER is set in the workers: the operator commands read the database too.
day_done "PostgreSQL ledger"
if podman exec "$(name worker-a)" test -e /data/drop/.ingestd; then
    fail "the PostgreSQL ledger wrote a state dir on the volume"
fi
stopped_cleanly "PostgreSQL ledger"
say "PostgreSQL ledger: both workers worked, no state dir on the volume, drained on SIGTERM"
say "OK"
