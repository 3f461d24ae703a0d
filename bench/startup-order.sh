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
# Needs valgrind (Debian package) and unshare; runs the proxy only on
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
# (ACL file, metrics listener). The list is the union of what either ran.
ACL=$PWD/src/default-acl.yaml
i=0
for args in "--listen-ip 127.0.0.1 --listen-port 4750 --allow-address 127.0.0.1:8080" \
            "--listen-ip 127.0.0.1 --egress-acl-file $ACL --expose-prometheus-metrics --prometheus-listen-ip 127.0.0.1"; do
  i=$((i + 1))
  unshare -rn bash -c "ip link set lo up
    PROXY_PASSWORD=x taskset -c 0 valgrind --tool=callgrind --demangle=no \
      --callgrind-out-file=$tmp/cg.$i $BIN $args 2>$tmp/log.$i &
    P=\$!; sleep 12; kill -INT \$P; wait \$P || true"
  grep -q 'msg=starting' "$tmp/log.$i" || { cat "$tmp/log.$i" >&2; echo "proxy did not start: $args" >&2; exit 1; }
done
cat "$tmp"/cg.* | grep -oE '^c?fn=\([0-9]+\) .*' | sed -E 's/^c?fn=\([0-9]+\) //' \
  | LC_ALL=C sort -u >"$tmp/ran"
LC_ALL=C comm -12 "$tmp/ran" <(syms) >"$OUT"
echo "$(wc -l <"$OUT") start-up functions written to $OUT"
