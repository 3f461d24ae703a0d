#!/usr/bin/env bash
# CPU the proxy spends per byte of a request head that arrives one byte per
# packet (issue 13, item 6), before authentication.
#
#   bench/head_trickle.sh [BINARY]           # default: target/release/smokescreen
#   SIZES="200 12000" bench/head_trickle.sh target/debug/smokescreen
#
# Runs itself in a private network namespace (loopback only). For each head
# size it starts the binary, sends a head without credentials one byte per
# write (TCP_NODELAY, ~200 µs apart, so nearly every byte is its own read),
# waits for the 407, and prints the proxy's user+system CPU time divided by
# the head's size. The third column repeats the largest size with
# --max-header-bytes 1048576.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/smokescreen}
SIZES=${SIZES:-"200 12000"}
if [ -z "${IN_NETNS:-}" ]; then
    exec env IN_NETNS=1 unshare -rn -- "$0" "$BIN"
fi
ip link set lo up
python3 - "$BIN" $SIZES <<'PY'
import os, socket, subprocess, sys, time

binary, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
tick = os.sysconf("SC_CLK_TCK")

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def run(size, extra):
    env = dict(os.environ, PROXY_PASSWORD="pw")
    proxy = subprocess.Popen([binary, "--listen-ip", "127.0.0.1", "--listen-port", "0", *extra],
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in proxy.stderr:
            if "msg=starting" in line:
                port = int(line.split("listen_addr=")[1].split()[0].strip('"').rsplit(":", 1)[1])
                break
        head = b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n"
        while len(head) < size - 2:
            head += b"X-Pad: " + b"a" * min(200, max(0, size - len(head) - 11)) + b"\r\n"
        head += b"\r\n"
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        before = cpu_seconds(proxy.pid)
        for b in head:
            s.send(bytes([b]))
            time.sleep(0.0002)
        answer = s.recv(64)
        after = cpu_seconds(proxy.pid)
        assert answer.startswith(b"HTTP/1.1 407"), answer
        return len(head), (after - before) / len(head) * 1e6
    finally:
        proxy.kill()
        proxy.wait()

rows = [(s, []) for s in sizes] + [(sizes[-1], ["--max-header-bytes", "1048576"])]
for size, extra in rows:
    n, us = run(size, extra)
    label = f"{n} B" + (" (--max-header-bytes 1048576)" if extra else "")
    print(f"{label}: {us:.1f} µs of proxy CPU per byte")
PY
