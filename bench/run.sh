#!/usr/bin/env bash
# Side-by-side benchmark: direct / smokescreen (ours) / tinyproxy / squid.
#
#   bench/run.sh                    # everything, prints a Markdown table
#   bench/run.sh ours direct        # only some targets
#   DURATION=20 RUNS=3 IDLE=9000 bench/run.sh
#   BASELINE_BIN=/path/to/old/smokescreen bench/run.sh direct baseline ours
#                                   # before/after an optimisation, same run
#
# It installs the peers (apt-get, idempotent), builds the proxy and the load
# generator, then re-runs itself in a private network namespace where only
# loopback exists. The proxy under test is pinned to PROXY_CPU, the origin
# (nginx), the bulk/hold servers and the load generator to LOAD_CPU. Every
# step has a time bound; the script stops by itself and kills what it started.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DURATION=${DURATION:-10}        # seconds per rate run
RUNS=${RUNS:-3}                 # runs per metric; the table shows medians
CONC=${CONC:-32}                # concurrent clients
IDLE=${IDLE:-9000}              # idle tunnels held (2 fds each in the proxy)
BULK_MIB=${BULK_MIB:-1024}      # bytes through one tunnel
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-$HERE/out}
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(direct ours tinyproxy squid)

LOADGEN=$HERE/target/release/loadgen
OURS=$ROOT/target/release/smokescreen

if [ -z "${BENCH_IN_NETNS:-}" ]; then
    missing=()
    for p in nginx tinyproxy squid; do
        PATH=$PATH:/usr/sbin command -v "$p" >/dev/null || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq nginx tinyproxy squid >/dev/null
    fi
    # apt may start the packaged services: they would compete for the CPUs.
    for svc in nginx squid tinyproxy; do
        (service "$svc" stop >/dev/null 2>&1 || true)
    done
    (cd "$ROOT" && timeout 1200 cargo build --release --quiet --bin smokescreen)
    # RSS at rest depends on link/startup-order.txt matching this build's
    # symbol names (they change with toolchain and dependency versions).
    echo "start-up order: $("$ROOT/bench/startup-order.sh" --check) (regenerate with bench/startup-order.sh if far from all)" >&2
    timeout 600 cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
    mkdir -p "$OUT"
    # Real root gets a plain network namespace (squid can drop privileges);
    # anyone else a user namespace too.
    if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
    exec timeout 7200 "${ns[@]}" env BENCH_IN_NETNS=1 PATH="$PATH:/usr/sbin" OUT="$OUT" BASELINE_BIN="${BASELINE_BIN:-}" bash "$0" "${TARGETS[@]}"
fi

# ------------------------------------------------------------ inside the netns
ip link set lo up
# Many short connections: widen the port range (above every listening port
# used here, so no outgoing connection can take one) and reuse TIME_WAIT ports.
echo "10000 65535" >/proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
echo 1 >/proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || true
echo 4096 >/proc/sys/net/core/somaxconn 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

RUN=$(mktemp -d /tmp/smokescreen-bench.XXXXXX)
chmod 777 "$RUN"
RESULTS=$RUN/results.tsv
: >"$RESULTS"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # host port seconds
    local deadline=$((SECONDS + $3))
    until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then echo "port $1:$2 did not open" >&2; return 1; fi
        sleep 0.1
    done
}

for f in nginx tinyproxy squid; do
    sed "s#@RUN@#$RUN#g" "$HERE/$f.conf" >"$RUN/$f.conf"
done

taskset -c "$LOAD_CPU" nginx -p "$RUN" -e "$RUN/nginx-error.log" -c "$RUN/nginx.conf" &
PIDS+=($!)
taskset -c "$LOAD_CPU" "$LOADGEN" serve --bulk-listen 127.0.0.1:9001 --hold-listen 127.0.0.1:9002 \
    --bytes $((BULK_MIB * 1024 * 1024)) --lifetime 7200 >/dev/null &
PIDS+=($!)
wait_port 127.0.0.1 8080 10
wait_port 127.0.0.1 9001 10

CLK=$(getconf CLK_TCK)
lg() { # mode label [options...]
    local mode=$1 label=$2
    shift 2
    timeout $((DURATION * 8 + 60)) taskset -c "$LOAD_CPU" "$LOADGEN" "$mode" --label "$label" \
        --out "$RESULTS" --clk-tck "$CLK" --duration "$DURATION" --concurrency "$CONC" "$@" >&2 ||
        echo "loadgen $mode $label failed" >&2
}

start_proxy() { # label -> sets PROXY_PID PROXY_ADDR AUTH
    case $1 in
    ours | baseline)
        PROXY_ADDR=127.0.0.1:4750
        AUTH=bench:bench-password
        local bin=$OURS
        [ "$1" = baseline ] && bin=${BASELINE_BIN:?BASELINE_BIN must name the binary to compare with}
        PROXY_PASSWORD=bench-password taskset -c "$PROXY_CPU" "$bin" \
            --listen-ip 127.0.0.1 --listen-port 4750 \
            --allow-address 127.0.0.1:8080 --allow-address 127.0.0.1:9001 \
            --allow-address 127.0.0.1:9002 2>"$RUN/$1.log" &
        ;;
    tinyproxy)
        PROXY_ADDR=127.0.0.1:3129
        AUTH=
        taskset -c "$PROXY_CPU" tinyproxy -d -c "$RUN/tinyproxy.conf" >"$RUN/tinyproxy.out" 2>&1 &
        ;;
    squid)
        PROXY_ADDR=127.0.0.1:3128
        AUTH=
        taskset -c "$PROXY_CPU" squid -N -f "$RUN/squid.conf" >"$RUN/squid.out" 2>&1 &
        ;;
    *)
        echo "unknown target $1" >&2
        return 1
        ;;
    esac
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_port 127.0.0.1 "${PROXY_ADDR#*:}" 20
    sleep 1 # let start-up settle before the at-rest RSS sample
}

stop_proxy() {
    kill "$PROXY_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$PROXY_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -9 "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
}

for t in "${TARGETS[@]}"; do
    echo "== $t" >&2
    if [ "$t" = direct ]; then
        for r in $(seq "$RUNS"); do
            lg connect direct --target 127.0.0.1:8080
            lg keepalive direct --target 127.0.0.1:8080
            lg bulk direct --target 127.0.0.1:9001 --bytes $((BULK_MIB * 1024 * 1024))
        done
        continue
    fi
    if ! start_proxy "$t"; then
        echo "$t did not start; skipped (see $RUN)" >&2
        stop_proxy
        continue
    fi
    common=(--proxy "$PROXY_ADDR" --pid "$PROXY_PID" --auth "$AUTH")
    lg rss "$t" --pid "$PROXY_PID"
    for r in $(seq "$RUNS"); do
        lg connect "$t" "${common[@]}" --target 127.0.0.1:8080
        lg keepalive "$t" "${common[@]}" --target 127.0.0.1:8080
        lg bulk "$t" "${common[@]}" --target 127.0.0.1:9001 --bytes $((BULK_MIB * 1024 * 1024))
    done
    lg idle "$t" "${common[@]}" --target 127.0.0.1:9002 --count "$IDLE"
    stop_proxy
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
cp "$RESULTS" "$OUT/results-$stamp.tsv"
echo
echo "DURATION=${DURATION}s RUNS=$RUNS CONC=$CONC IDLE=$IDLE BULK=${BULK_MIB}MiB; medians [min..max]; raw: $OUT/results-$stamp.tsv"
"$LOADGEN" report "$RESULTS" | tee "$OUT/table-$stamp.md"
