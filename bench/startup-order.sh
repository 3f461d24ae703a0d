#!/usr/bin/env bash
# Regenerate link/startup-order.txt: the functions the release binary runs
# from exec to "listening" (and on shutdown), which build.rs asks the linker
# (rust-lld) to place first so they share a few text pages. Without it they
# are spread over the whole .text and the kernel's 64 kB fault-around maps
# ~2 MiB of code at rest instead of ~0.7 MiB (issue #6).
#
# Symbol names carry hashes that change with the toolchain, dependency
# versions and the release profile: rerun this after any of those changes
# (`--check` prints how many listed symbols the current binary still has).
# Needs valgrind (Debian package), curl, python3 (a local origin) and unshare; runs the proxy only on
# loopback inside a private network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/smokescreen
OUT=link/startup-order.txt
syms() { nm "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' | LC_ALL=C sort -u; }

if [[ "${1:-}" == --check ]]; then
  cargo build --release --locked >/dev/null
  have=$(LC_ALL=C comm -12 <(LC_ALL=C sort -u "$OUT") <(syms) | wc -l)
  echo "$have of $(wc -l <"$OUT") symbols in $OUT are in $BIN"
  exit 0
fi

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --locked
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Two start-ups, pinned to one CPU (as the bench runs the proxy, and as a
# 1-vCPU Fly machine does): the bench's command line, and the Dockerfile's
# (ACL file, metrics listener). Each then sees a port probe like the bench's
# and serves its first requests (a forwarded GET, a CONNECT tunnel, a
# refusal, a health check), as a proxy at rest has. callgrind dumps after
# each phase, and the list is ordered by phase (start-up, probe, first
# requests, shutdown), so an idle process touches only the front of it.
ACL=$PWD/src/default-acl.yaml
phase() { callgrind_control -d "$1" >/dev/null 2>&1; }
export -f phase
probe='exec 3<>/dev/tcp/127.0.0.1/4750; exec 3<&-'
first_requests='curl -s -o /dev/null -x http://u:x@127.0.0.1:4750 http://127.0.0.1:8080/
  curl -s -o /dev/null -p -x http://u:x@127.0.0.1:4750 http://127.0.0.1:8080/
  curl -s -o /dev/null -x http://u:x@127.0.0.1:4750 http://169.254.169.254/
  curl -s -o /dev/null http://127.0.0.1:9810/healthz'
i=0
for args in "--listen-ip 127.0.0.1 --listen-port 4750 --allow-address 127.0.0.1:8080" \
            "--listen-ip 127.0.0.1 --egress-acl-file $ACL --expose-prometheus-metrics --prometheus-listen-ip 127.0.0.1 --allow-address 127.0.0.1:8080"; do
  i=$((i + 1))
  unshare -rn bash -c "ip link set lo up
    python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 & O=\$!
    PROXY_PASSWORD=x taskset -c 0 valgrind --tool=callgrind --demangle=no \
      --callgrind-out-file=$tmp/cg.$i $BIN $args 2>$tmp/log.$i &
    P=\$!
    for _ in \$(seq 100); do grep -q msg=starting $tmp/log.$i && break; sleep 0.2; done
    sleep 1; phase \$P
    $probe
    sleep 1; phase \$P
    $first_requests
    sleep 2; phase \$P
    kill -INT \$P; wait \$P || true; kill \$O"
  grep -q 'msg=starting' "$tmp/log.$i" || { cat "$tmp/log.$i" >&2; echo "proxy did not start: $args" >&2; exit 1; }
  grep -q 'CANONICAL-PROXY-CN-CLOSE' "$tmp/log.$i" || { cat "$tmp/log.$i" >&2; echo "the first requests did not run: $args" >&2; exit 1; }
done
# Dumps: cg.N.1 start-up, .2 probe, .3 first requests; cg.N (the last) shutdown.
names() { grep -ohE '^c?fn=\([0-9]+\) .*' "$@" | sed -E 's/^c?fn=\([0-9]+\) //'; }
{
  for part in 1 2 3; do names "$tmp"/cg.*."$part"; done
  names "$tmp"/cg.1 "$tmp"/cg.2
} | awk '!seen[$0]++' >"$tmp/ran"
# Keep the phase order; drop names that are not functions of this binary.
awk 'NR == FNR { have[$0] = 1; next } have[$0]' <(syms) "$tmp/ran" >"$OUT"
echo "$(wc -l <"$OUT") start-up functions written to $OUT"
