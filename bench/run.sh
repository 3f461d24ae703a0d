#!/usr/bin/env bash
# Side-by-side benchmark: direct / smokescreen (ours) / tinyproxy / squid, with
# HAProxy as the reference for what one core does: `haproxy-tcp` (a TCP relay
# to the same servers; its connect row is connect+GET+close through the relay,
# no CONNECT exchange) and `haproxy-http` (an HTTP reverse proxy to the origin,
# for the keep-alive row). Rows a target cannot measure print "—".
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
#
# Syscalls per operation: during each connect/keep-alive run the proxy's
# raw_syscalls:sys_enter events are counted (perf stat -p; strace -c -f when
# the tracepoint is not usable, which slows the proxy and is said in the
# output) and divided by the operations the run completed.
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
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(direct ours haproxy-tcp haproxy-http tinyproxy squid)

LOADGEN=$HERE/target/release/loadgen
OURS=$ROOT/target/release/smokescreen

if [ -z "${BENCH_IN_NETNS:-}" ]; then
    missing=()
    for p in nginx tinyproxy squid haproxy; do
        PATH=$PATH:/usr/sbin command -v "$p" >/dev/null || missing+=("$p")
    done
    command -v perf >/dev/null || missing+=(linux-perf)
    command -v strace >/dev/null || missing+=(strace)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        timeout 600 apt-get update -qq
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # apt may start the packaged services: they would compete for the CPUs.
    for svc in nginx squid tinyproxy haproxy; do
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

for f in nginx.conf tinyproxy.conf squid.conf haproxy-tcp.cfg haproxy-http.cfg; do
    sed "s#@RUN@#$RUN#g" "$HERE/$f" >"$RUN/$f"
done

# How syscalls are counted: the tracepoint through perf if it works here
# (it needs root or a low perf_event_paranoid), else strace -c; SYSCALLS=perf,
# strace or none chooses.
if [ -n "${SYSCALLS:-}" ]; then
    echo "syscalls counted with $SYSCALLS (as asked)" >&2
elif timeout 20 perf stat -x, -e raw_syscalls:sys_enter -o /dev/null true >/dev/null 2>&1; then
    SYSCALLS=perf
elif timeout 20 strace -c -o /dev/null true >/dev/null 2>&1; then
    SYSCALLS=strace
    echo "perf cannot count raw_syscalls:sys_enter here: syscalls counted with strace -c -f, which slows the proxy during the rate runs (their rates and CPU rows are not comparable)" >&2
else
    SYSCALLS=none
    echo "neither perf nor strace can trace here: no syscall counts" >&2
fi

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

# Rate run with the proxy's syscalls counted around it: adds the metric
# <mode>_syscalls_per_op = syscalls entered by PROXY_PID (all its threads) /
# operations the run completed.
counted() { # mode label [options...]
    local mode=$1 label=$2 cnt=$RUN/syscalls.txt ops=$RUN/ops.txt tracer=()
    rm -f "$cnt" "$ops"
    case $SYSCALLS in
    perf) tracer=(perf stat -x, -e raw_syscalls:sys_enter -p "$PROXY_PID" -o "$cnt") ;;
    strace) tracer=(strace -c -f -U calls,name -o "$cnt" -p "$PROXY_PID") ;;
    *)
        lg "$@"
        return
        ;;
    esac
    # SIGINT ends the count (timeout passes it on); the bound ends it anyway.
    timeout -s INT $((DURATION * 8 + 90)) "${tracer[@]}" >/dev/null 2>&1 &
    local tpid=$!
    PIDS+=("$tpid")
    sleep 0.5 # let the tracer attach before the load starts
    lg "$@" --done-file "$ops"
    kill -INT "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    local n= ops_n=
    case $SYSCALLS in
    perf) n=$(awk -F, '$3 ~ /raw_syscalls:sys_enter/ {print $1}' "$cnt" 2>/dev/null || true) ;;
    strace) n=$(awk '$2 == "total" {print $1}' "$cnt" 2>/dev/null || true) ;;
    esac
    ops_n=$(cat "$ops" 2>/dev/null || true)
    if [[ "$n" =~ ^[0-9]+$ && "$ops_n" =~ ^[0-9]+$ && "$ops_n" -gt 0 ]]; then
        awk -v l="$label" -v m="${mode}_syscalls_per_op" -v n="$n" -v d="$ops_n" \
            'BEGIN { printf "%s\t%s\t%.3f\n", l, m, n / d }' | tee -a "$RESULTS" >&2
    else
        echo "no syscall count for $label $mode (count '$n', operations '$ops_n')" >&2
    fi
}

# start_proxy sets PROXY_PID and the loadgen arguments per row: VIA (how to
# reach the proxy) and the target of each row (empty: the row is not measured).
start_proxy() { # label -> sets PROXY_PID PORT VIA CONNECT_TO KEEPALIVE_TO BULK_TO IDLE_TO
    local proxy auth=
    CONNECT_TO=127.0.0.1:8080 KEEPALIVE_TO=127.0.0.1:8080
    BULK_TO=127.0.0.1:9001 IDLE_TO=127.0.0.1:9002
    case $1 in
    ours | baseline)
        proxy=127.0.0.1:4750
        auth=bench:bench-password
        local bin=$OURS
        [ "$1" = baseline ] && bin=${BASELINE_BIN:?BASELINE_BIN must name the binary to compare with}
        PROXY_PASSWORD=bench-password taskset -c "$PROXY_CPU" "$bin" \
            --listen-ip 127.0.0.1 --listen-port 4750 \
            --allow-address 127.0.0.1:8080 --allow-address 127.0.0.1:9001 \
            --allow-address 127.0.0.1:9002 2>"$RUN/$1.log" &
        ;;
    tinyproxy)
        proxy=127.0.0.1:3129
        taskset -c "$PROXY_CPU" tinyproxy -d -c "$RUN/tinyproxy.conf" >"$RUN/tinyproxy.out" 2>&1 &
        ;;
    squid)
        proxy=127.0.0.1:3128
        taskset -c "$PROXY_CPU" squid -N -f "$RUN/squid.conf" >"$RUN/squid.out" 2>&1 &
        ;;
    haproxy-tcp)
        # Clients dial the relay's ports as if they were the servers.
        proxy=none PORT=4760
        CONNECT_TO=127.0.0.1:4760 KEEPALIVE_TO= BULK_TO=127.0.0.1:4761 IDLE_TO=127.0.0.1:4762
        taskset -c "$PROXY_CPU" haproxy -db -f "$RUN/haproxy-tcp.cfg" >"$RUN/haproxy-tcp.out" 2>&1 &
        ;;
    haproxy-http)
        # Absolute-form GETs, as the forward proxies get; no CONNECT, no tunnels.
        proxy=127.0.0.1:4770
        CONNECT_TO= BULK_TO= IDLE_TO=
        taskset -c "$PROXY_CPU" haproxy -db -f "$RUN/haproxy-http.cfg" >"$RUN/haproxy-http.out" 2>&1 &
        ;;
    *)
        echo "unknown target $1" >&2
        return 1
        ;;
    esac
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    [ "$proxy" = none ] || PORT=${proxy#*:}
    VIA=(--proxy "$proxy" --pid "$PROXY_PID" --auth "$auth")
    wait_port 127.0.0.1 "$PORT" 20
    sleep 1 # let start-up settle before the at-rest RSS sample
}

stop_proxy() {
    kill "$PROXY_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$PROXY_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -9 "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
}

PROXY_PID=
for t in "${TARGETS[@]}"; do
    echo "== $t" >&2
    if [ "$t" = direct ]; then
        for _ in $(seq "$RUNS"); do
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
    lg rss "$t" --pid "$PROXY_PID"
    for _ in $(seq "$RUNS"); do
        [ -z "$CONNECT_TO" ] || counted connect "$t" "${VIA[@]}" --target "$CONNECT_TO"
        [ -z "$KEEPALIVE_TO" ] || counted keepalive "$t" "${VIA[@]}" --target "$KEEPALIVE_TO"
        [ -z "$BULK_TO" ] || lg bulk "$t" "${VIA[@]}" --target "$BULK_TO" --bytes $((BULK_MIB * 1024 * 1024))
    done
    [ -z "$IDLE_TO" ] || lg idle "$t" "${VIA[@]}" --target "$IDLE_TO" --count "$IDLE"
    stop_proxy
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
cp "$RESULTS" "$OUT/results-$stamp.tsv"
echo
echo "DURATION=${DURATION}s RUNS=$RUNS CONC=$CONC IDLE=$IDLE BULK=${BULK_MIB}MiB; syscalls counted with $SYSCALLS; medians [min..max]; raw: $OUT/results-$stamp.tsv"
"$LOADGEN" report "$RESULTS" | tee "$OUT/table-$stamp.md"
