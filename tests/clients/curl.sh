# curl through smokescreen (docs/clients.md, tested by run.sh).
set -euo pipefail
fail() { echo "FAIL: $*"; exit 1; }

# --- recipe: credentials in the proxy URL (percent-encoded) ---
curl -sS --proxy "$PROXY_URL" --cacert "$CA_FILE" https://api.example.com/ >out.txt
grep -qx 'hello from api.example.com' out.txt || fail "https via PROXY_URL"
# --- recipe: -U takes the password as it is, no encoding ---
curl -sS -U "$PROXY_USER:$PROXY_PASS" -x 127.0.0.1:4750 --cacert "$CA_FILE" https://api.example.com/ >out.txt
grep -qx 'hello from api.example.com' out.txt || fail "https via -U"
# --- recipe: the environment (curl reads https_proxy / HTTPS_PROXY) ---
HTTPS_PROXY=$PROXY_URL curl -sS --cacert "$CA_FILE" https://api.example.com/ >out.txt
grep -qx 'hello from api.example.com' out.txt || fail "https via HTTPS_PROXY"
curl -sS --proxy "$PROXY_URL" http://api.example.com/ | grep -qx 'hello from api.example.com' || fail "http"

# A refused https:// request: exit 56 and only the status; -v shows the reason.
rc=0
curl -sS --proxy "$PROXY_URL" --cacert "$CA_FILE" https://denied.example.com/ 2>err.txt || rc=$?
echo "denial (https): exit $rc: $(cat err.txt)"
((rc == 56)) && grep -q 'CONNECT tunnel failed, response 403' err.txt || fail "https denial"
curl -sv --proxy "$PROXY_URL" --cacert "$CA_FILE" https://denied.example.com/ 2>&1 | grep -i x-smokescreen-error >err.txt || true
echo "denial (https, -v): $(cat err.txt)"
grep -q "denied to host 'denied.example.com:443'" err.txt || fail "no X-Smokescreen-Error with -v"
# A refused http:// request prints the reason as the body (exit 0; -f makes it 22).
body=$(curl -sS --proxy "$PROXY_URL" http://denied.example.com/)
echo "denial (http): $body"
[[ $body == "Egress proxying is denied to host 'denied.example.com'"* ]] || fail "http denial body"

# Pitfall: + / = unencoded in the proxy URL.
rc=0
curl -sS --proxy "http://$PROXY_USER:$PROXY_PASS@127.0.0.1:4750" --cacert "$CA_FILE" https://api.example.com/ 2>err.txt || rc=$?
echo "pitfall (unencoded password): exit $rc: $(cat err.txt)"
((rc == 5)) || fail "unencoded password: expected exit 5"
rm -f out.txt err.txt
echo "curl: all checks passed"
