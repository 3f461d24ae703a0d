#!/usr/bin/env bash
# Real clients through plain-HTTP forwarding (issue 14): curl, Go net/http
# and Java 17 HttpClient each POST 5 MB with `Expect: 100-continue` through
# the proxy to a Go net/http origin, inside a private network namespace
# (`unshare -rn`: only loopback exists, so nothing can leave the machine).
#
#   tests/clients/uploads.sh [path/to/smokescreen]   (default: target/debug/smokescreen)
#
# Each client waits up to 30 s for the origin's 100 Continue before sending
# its body anyway, so a proxy that held the 100 back would show as a 30 s
# upload; an upload over 10 s fails the run. Prints one timing line per
# client (recorded in docs/forwarding.md). Needs curl, go, java (17+),
# unshare and ip; a missing tool fails the run (CI installs them).
set -euo pipefail

if [[ -z "${SMOKESCREEN_CLIENTS_NETNS:-}" ]]; then
  exec env SMOKESCREEN_CLIENTS_NETNS=1 unshare -rn -- bash "$0" "$@"
fi
ip link set lo up

here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-$here/../../target/debug/smokescreen}")
for tool in curl go java; do
  command -v "$tool" >/dev/null || { echo "tests/clients: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Wait (at most 10 s) until something listens on 127.0.0.1:$1.
wait_port() {
  local deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "nothing listening on port $1" >&2; exit 1; }
    sleep 0.05
  done
}

# Go's build cache lives in the scratch directory: nothing outside is written.
export GOCACHE="$work/gocache" GOPATH="$work/gopath" GO111MODULE=off
go build -o "$work/upload" "$here/upload.go"
"$work/upload" origin &
pids+=($!)
PROXY_PASSWORD=pw "$bin" --listen-ip 127.0.0.1 --listen-port 4750 \
  --static-host=origin.test=127.0.0.1 --allow-address=127.0.0.1:8080 \
  2>"$work/proxy.log" &
pids+=($!)
wait_port 8080
wait_port 4750
target=http://origin.test:8080/upload

head -c $((5 << 20)) /dev/urandom >"$work/body"
want="$((5 << 20)) $(sha256sum "$work/body" | cut -d' ' -f1)"
timing=$(curl -sS --noproxy '' -x 127.0.0.1:4750 -U curl:pw --expect100-timeout 30 \
  -H 'Expect: 100-continue' --data-binary @"$work/body" -o "$work/curl.out" \
  -w '%{http_code} in %{time_total} s' "$target")
got=$(cat "$work/curl.out")
[[ "$got" == "$want" ]] || { echo "curl: origin saw $got, want $want" >&2; exit 1; }
echo "curl Expect 5 MB upload: $timing"
secs=${timing##* in }
secs=${secs% s}
awk -v s="$secs" 'BEGIN { exit !(s < 10) }' || { echo "curl upload took $secs s" >&2; exit 1; }

"$work/upload" client http://go:pw@127.0.0.1:4750 "$target"
timeout 120 java "$here/Upload.java" 127.0.0.1 4750 pw "$target"
echo "tests/clients: all uploads complete"
