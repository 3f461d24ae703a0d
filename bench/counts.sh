#!/usr/bin/env bash
# Load-independent counts for one proxy (docs/performance.md, fourth round):
#
#   bench/counts.sh syscalls ours connect        # syscalls per op, by name (perf stat)
#   bench/counts.sh syscalls haproxy-tcp connect # the same for HAProxy (haproxy-http: keepalive)
#   bench/counts.sh instructions ours keepalive  # user-space instructions per op (callgrind)
#   BIN=/path/to/old/smokescreen bench/counts.sh syscalls ours connect   # another build
#
# Same origin (nginx), load generator and pinning as bench/run.sh (run that
# once first: it installs the peers and builds the proxy and the load
# generator). Runs itself in a private network namespace; loopback only.
set -euo pipefail
WHAT=${1:?syscalls|instructions}; TARGET=${2:?ours|haproxy-tcp|haproxy-http}; MODE=${3:-connect}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$HERE")
BIN=${BIN:-$ROOT/target/release/smokescreen}
LOADGEN=$HERE/target/release/loadgen
SECS=${SECS:-5}
if [ -z "${COUNTS_IN_NETNS:-}" ]; then
    if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
    exec timeout 900 "${ns[@]}" env COUNTS_IN_NETNS=1 BIN="$BIN" PATH="$PATH:/usr/sbin" bash "$0" "$@"
fi
ip link set lo up
echo "10000 65535" >/proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
echo 1 >/proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
RUN=$(mktemp -d /tmp/smokescreen-counts.XXXXXX)
chmod 777 "$RUN"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
for f in nginx.conf haproxy-tcp.cfg haproxy-http.cfg; do sed "s#@RUN@#$RUN#g" "$HERE/$f" >"$RUN/$f"; done
taskset -c 1 nginx -p "$RUN" -e "$RUN/nginx-error.log" -c "$RUN/nginx.conf" &
PIDS+=($!)
VIA=(--proxy 127.0.0.1:4750 --auth bench:bench-password); TO=127.0.0.1:8080
WRAP=()
[ "$WHAT" = instructions ] && WRAP=(valgrind --tool=callgrind --callgrind-out-file="$RUN/cg.out" --dump-instr=no)
case $TARGET in
ours) PROXY_PASSWORD=bench-password taskset -c 0 "${WRAP[@]}" "$BIN" --listen-ip 127.0.0.1 --listen-port 4750 \
        --allow-address 127.0.0.1:8080 2>"$RUN/proxy.log" & ;;
haproxy-tcp) VIA=(--proxy none); TO=127.0.0.1:4760
    taskset -c 0 haproxy -db -f "$RUN/haproxy-tcp.cfg" >/dev/null 2>&1 & ;;
haproxy-http) VIA=(--proxy 127.0.0.1:4770)
    taskset -c 0 haproxy -db -f "$RUN/haproxy-http.cfg" >/dev/null 2>&1 & ;;
*) echo "unknown target $TARGET" >&2; exit 2 ;;
esac
P=$!; PIDS+=("$P")
port=${VIA[1]##*:}; [ "$port" = none ] && port=4760
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
lg() { taskset -c 1 "$LOADGEN" "$MODE" --label x --out "$RUN/res.tsv" --clk-tck 100 --target "$TO" "${VIA[@]}" "$@" >/dev/null 2>&1; }
if [ "$WHAT" = syscalls ]; then
    ev=raw_syscalls:sys_enter,context-switches
    for s in read write recvfrom sendto epoll_wait epoll_pwait epoll_ctl timerfd_settime futex accept4 \
        connect close socket setsockopt getsockopt shutdown ioctl fcntl clock_gettime splice; do
        ev="$ev,syscalls:sys_enter_$s"
    done
    perf stat -x, -e "$ev" -p "$P" -o "$RUN/perf.txt" &
    PS=$!; sleep 0.3
    lg --duration "$SECS" --concurrency 32 --pid "$P" --done-file "$RUN/ops"
    kill -INT "$PS"; wait "$PS" || true
    ops=$(cat "$RUN/ops")
    echo "$TARGET $MODE: $ops operations in ${SECS}s"
    awk -F, -v o="$ops" '$1 ~ /^[0-9.]+$/ && $1 > 0 {printf "  %-36s %7.2f per op\n", $3, $1 / o}' "$RUN/perf.txt"
else
    [ "$TARGET" = ours ] || { echo "instructions: ours only" >&2; exit 2; }
    n=${N:-20000}; [ "$MODE" = connect ] && n=${N:-5000}
    lg --duration 120 --max 200 --concurrency 4
    callgrind_control -z "$P" >/dev/null 2>&1
    lg --duration 600 --max "$n" --concurrency 4 --done-file "$RUN/ops"
    callgrind_control -d "$P" >/dev/null 2>&1
    sleep 1
    ops=$(cat "$RUN/ops"); f=$(ls -t "$RUN"/cg.out* | head -1)
    total=$(callgrind_annotate "$f" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    echo "ours $MODE: $ops operations, $((total / ops)) user-space instructions per operation"
    callgrind_annotate --threshold=100 "$f" | grep -E '^ *[0-9,]+ \(' | sed -n 2,30p |
        awk -v o="$ops" '{n=$1; gsub(",", "", n); $1=""; printf "%8d %s\n", n / o, substr($0, 1, 120)}'
fi
