#!/usr/bin/env bash
# The fresh-machine check (docs/fresh-machine.md): the README's two commands as a new user runs them
# on a machine with only Python and make. Inside a network namespace that has only loopback,
# nothing answers at 127.0.0.1:6379 (Redis) or :5672 (RabbitMQ), and HOME is an empty directory,
# so jobbench starts from no store at all:
#   1. make bench-celery (tiny ARGS)          -> exit 0, the embedded Redis store started
#   2. jobbench verify latest                 -> exit 0 (the store kept the job records)
#   3. jobbench history                       -> lists the run, from disk and from the store
#   4. make test (JOBBENCH_FRESH_MACHINE=1)   -> passes; skips only name services that cannot be
#      embedded (RabbitMQ, a Docker engine, ...; pytest -ra lists them): a skip for want of
#      Redis fails this check
# Then the store is stopped (jobbench redis stop) and the namespace deleted, also on failure.
#
# Needs root and iproute2. Installs on the host first (pip needs the network the namespace lacks).
#   make test-fresh                                     # all of the above
#   FRESH_PYTEST_ARGS="tests/test_celery_pools.py" make test-fresh   # step 4 on a subset
set -euo pipefail
cd "$(dirname "$0")/.."

FRESH_BENCH_ARGS=${FRESH_BENCH_ARGS:---repeat 1 --cpu-jobs 2000 --io-jobs 50}
FRESH_PYTEST_ARGS=${FRESH_PYTEST_ARGS:-}

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    echo "fresh_machine: needs root and iproute2 (ip netns)" >&2
    exit 2
fi
make install

ns="jobbench-fresh-$$"
work="$(mktemp -d /tmp/jobbench-fresh.XXXXXX)"
home="$work/home"
mkdir -p "$home" "$work/tmp"
# Only what a new user has: no Redis or broker URL, no data directory of ours. TMPDIR under
# $work too, so the leftover check below also sees the test session's own embedded Redis.
in_ns() {
    ip netns exec "$ns" env -u REDIS_URL -u CELERY_BROKER_URL -u JOBBENCH_DATA_DIR \
        -u JOBBENCH_TEST_REDIS_URL -u XDG_DATA_HOME HOME="$home" TMPDIR="$work/tmp" "$@"
}
cleanup() {
    status=$?
    if ip netns list | grep -qw "$ns"; then
        in_ns .venv/bin/jobbench redis stop || status=1
        ip netns delete "$ns" || status=1
    fi
    # Nothing may outlive the check: no redis-server working under its directory.
    for pid in $(pgrep -x redis-server || true); do
        if [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$work"* ]]; then
            echo "fresh_machine: FAIL: redis-server pid $pid left running in $work" >&2
            kill "$pid" || true
            status=1
        fi
    done
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
started=$SECONDS
step() { echo "fresh_machine: [$((SECONDS - started)) s] $*"; }

step "make bench-celery ARGS=\"$FRESH_BENCH_ARGS\" (nothing at 127.0.0.1:6379)"
in_ns make bench-celery ARGS="$FRESH_BENCH_ARGS --out $work/results"
store="$home/.local/share/jobbench/redis"
test -s "$store/server.json" || { echo "fresh_machine: FAIL: no store record in $store" >&2; exit 1; }
run_id=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' \
    "$work/results/latest/results.json")

step "jobbench verify latest"
in_ns .venv/bin/jobbench verify latest --out "$work/results"

step "jobbench history"
in_ns .venv/bin/jobbench history --out "$work/results" --format json > "$work/history.json"
.venv/bin/python - "$work/history.json" "$run_id" <<'EOF'
import json, sys
runs = {d["run_id"]: d["stored"] for d in json.load(open(sys.argv[1]))}
assert runs.get(sys.argv[2]) == ["disk", "redis"], f"history: {sys.argv[2]} not on disk and in Redis: {runs}"
print(f"fresh_machine: history lists {sys.argv[2]} (disk + redis)")
EOF
in_ns .venv/bin/jobbench redis status

step "make test (JOBBENCH_FRESH_MACHINE=1) ${FRESH_PYTEST_ARGS}"
set +e
in_ns env JOBBENCH_FRESH_MACHINE=1 \
    make test PYTEST_ARGS="--durations=5 -p no:cacheprovider $FRESH_PYTEST_ARGS" 2>&1 | tee "$work/test.log"
code=${PIPESTATUS[0]}
set -e
if [ "$code" != 0 ]; then
    echo "fresh_machine: FAIL: make test exited $code" >&2
    exit 1
fi
if grep -E '^SKIPPED' "$work/test.log" | grep -iE 'no redis|redis (is )?unreachable'; then
    echo "fresh_machine: FAIL: a test skipped for want of Redis, which is embedded" >&2
    exit 1
fi
step "make test passed: $(grep -E '^=+ .*(passed|failed)' "$work/test.log" | tail -1 | tr -d '=')"
