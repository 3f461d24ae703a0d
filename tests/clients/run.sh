#!/usr/bin/env bash
# Runs every client recipe of docs/clients.md against the real proxy, inside
# a private network namespace: a loopback origin at 1.2.3.4 (HTTP and HTTPS,
# with a throw-away CA), the proxy on 127.0.0.1:4750 with --hosts-file
# mapping api.example.com (allowed by the ACL) and denied.example.com (not)
# to it, and a password with + / = so every recipe shows the encoding.
# Each client program asserts what the doc says: the allowed requests work,
# how a denial looks, and the pitfalls. A missing client is a failure,
# never a skip.
#
# Usage: tests/clients/run.sh [CLIENT...]   (default: all)
# Needs: a built proxy (target/debug/smokescreen, or SMOKESCREEN_BIN), and
# the clients .ci/run installs: curl, wget, python3 with requests, httpx,
# urllib3 and aiohttp, node with tests/clients/node's packages, java 17, go.
set -euo pipefail
CLIENTS_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$CLIENTS_DIR/../.." && pwd)
# shellcheck source=lib.sh
source "$CLIENTS_DIR/lib.sh"
in_private_netns "$CLIENTS_DIR/run.sh" "$@"

ALL=(curl wget requests httpx urllib3 aiohttp urllib undici axios java-httpclient java-urlconnection go)
CLIENTS=("$@")
((${#CLIENTS[@]})) || CLIENTS=("${ALL[@]}")

BIN=${SMOKESCREEN_BIN:-$REPO/target/debug/smokescreen}
[[ -x $BIN ]] || die "no proxy binary at $BIN: build it first (cargo build), or set SMOKESCREEN_BIN"

WORK=$(mktemp -d /tmp/client-recipes.XXXXXX)
cleanup() {
  local pids
  pids=$(jobs -p)
  [[ -z $pids ]] || kill $pids 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the docs show only code these scripts run ---
say "docs/clients.md snippets appear verbatim in tests/clients/"
awk -v dir="$WORK/snippets" '
  BEGIN { system("mkdir -p " dir) }
  !inside && /^```[a-z]+[ \t]*$/ { inside = 1; n++; next }
  inside && /^```[ \t]*$/ { inside = 0; next }
  inside { print > (dir "/" sprintf("%02d", n)) }
' "$REPO/docs/clients.md"
snippets=("$WORK"/snippets/*)
((${#snippets[@]} >= ${#ALL[@]})) || die "docs/clients.md has ${#snippets[@]} code blocks, fewer than the ${#ALL[@]} clients"
python3 - "$CLIENTS_DIR" "${snippets[@]}" <<'PY' || die "docs/clients.md shows code that no recipe runs"
# Each snippet's lines (indentation aside) must be a run of lines in one
# of the recipe programs.
import pathlib, sys
root = pathlib.Path(sys.argv[1])
def lines(text):
    return [l.strip() for l in text.splitlines() if l.strip()]
sources = [lines(p.read_text()) for p in sorted(root.rglob("*"))
           if p.is_file() and "node_modules" not in p.parts
           and p.suffix in {".sh", ".py", ".mjs", ".java", ".go"}]
def found(snippet):
    n = len(snippet)
    return any(src[i:i + n] == snippet for src in sources for i in range(len(src) - n + 1))
missing = [s for s in sys.argv[2:] if not found(lines(pathlib.Path(s).read_text()))]
for s in missing:
    print("not in tests/clients:\n" + pathlib.Path(s).read_text(), file=sys.stderr)
sys.exit(1 if missing else 0)
PY

# --- origin, proxy ---
make_pki "$WORK/pki" api.example.com denied.example.com
start_origin 1.2.3.4 "$WORK/pki/server.crt" "$WORK/pki/server.key"
printf '1.2.3.4 api.example.com denied.example.com\n' >"$WORK/hosts"
cat >"$WORK/acl.yaml" <<'ACL'
version: v1
services:
  - name: authed
    project: client-recipes
    action: enforce
    allowed_domains: [api.example.com]
default:
  project: other
  action: enforce
ACL
export PROXY_USER=app
export PROXY_PASS='s3cr+t/pa=ss'
export PROXY_URL='http://app:s3cr%2Bt%2Fpa%3Dss@127.0.0.1:4750'
export CA_FILE=$WORK/pki/ca.pem
PROXY_PASSWORD=$PROXY_PASS "$BIN" --listen-ip 127.0.0.1 --listen-port 4750 \
  --egress-acl-file "$WORK/acl.yaml" --hosts-file "$WORK/hosts" 2>"$WORK/proxy.log" &
wait_log "$WORK/proxy.log" 'msg=starting'

# --- one function per client: run its recipe program ---
client_curl() { bash "$CLIENTS_DIR/curl.sh"; }
client_wget() { bash "$CLIENTS_DIR/wget.sh"; }
client_requests() { python3 "$CLIENTS_DIR/requests_client.py"; }
client_httpx() { python3 "$CLIENTS_DIR/httpx_client.py"; }
client_urllib3() { python3 "$CLIENTS_DIR/urllib3_client.py"; }
client_aiohttp() { python3 "$CLIENTS_DIR/aiohttp_client.py"; }
client_urllib() { python3 "$CLIENTS_DIR/urllib_client.py"; }
node_ready() {
  [[ -d $CLIENTS_DIR/node/node_modules ]] || die "node packages missing: (cd tests/clients/node && npm ci)"
}
client_undici() { node_ready && NODE_EXTRA_CA_CERTS=$CA_FILE node "$CLIENTS_DIR/node/undici.mjs"; }
client_axios() { node_ready && NODE_EXTRA_CA_CERTS=$CA_FILE node "$CLIENTS_DIR/node/axios.mjs"; }
java_trust() {
  [[ -f $WORK/trust.p12 ]] || keytool -importcert -noprompt -alias test-ca -file "$CA_FILE" \
    -keystore "$WORK/trust.p12" -storetype PKCS12 -storepass changeit >/dev/null 2>&1
  JAVA_TRUST=(-Djavax.net.ssl.trustStore="$WORK/trust.p12" -Djavax.net.ssl.trustStorePassword=changeit)
}
# Java: the recipe (with the tunnelling property), then the pitfall (without).
java_run() {
  java_trust || return 1
  java "${JAVA_TRUST[@]}" -Djdk.http.auth.tunneling.disabledSchemes= "$@" || return 1
  java "${JAVA_TRUST[@]}" "$@"
}
client_java-httpclient() { java_run "$CLIENTS_DIR/java/HttpClientRecipe.java"; }
client_java-urlconnection() {
  java_run -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=4750 \
    -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=4750 "$CLIENTS_DIR/java/UrlConnectionRecipe.java" || return 1
  HTTPS_PROXY=$PROXY_URL https_proxy=$PROXY_URL java "$CLIENTS_DIR/java/UrlConnectionRecipe.java" env-only
}
client_go() {
  (cd "$CLIENTS_DIR/go" && GOCACHE=$WORK/gocache GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
    SSL_CERT_FILE=$CA_FILE go run .)
}

cd "$WORK"
failed=()
for c in "${CLIENTS[@]}"; do
  declare -F "client_$c" >/dev/null || die "unknown client $c (known: ${ALL[*]})"
  say "$c"
  before=$(grep -c 'allow=true .*requested_host="api.example.com' "$WORK/proxy.log" || true)
  if ! "client_$c"; then
    failed+=("$c")
    continue
  fi
  after=$(grep -c 'allow=true .*requested_host="api.example.com' "$WORK/proxy.log" || true)
  if ((after <= before)); then
    echo "FAIL: $c reported success but the proxy logged no allowed request for api.example.com"
    failed+=("$c")
  fi
done
passed=$((${#CLIENTS[@]} - ${#failed[@]}))
say "client recipes: $passed passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
((${#failed[@]} == 0)) || { tail -30 "$WORK/proxy.log" >&2; exit 1; }
