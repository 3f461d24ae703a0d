# wget through smokescreen (docs/clients.md, tested by run.sh).
set -euo pipefail
fail() { echo "FAIL: $*"; exit 1; }

# --- recipe ---
wget -qO- -e use_proxy=yes -e https_proxy=http://127.0.0.1:4750 \
  --proxy-user="$PROXY_USER" --proxy-password="$PROXY_PASS" \
  --ca-certificate="$CA_FILE" https://api.example.com/ >out.txt
# --- end ---
grep -qx 'hello from api.example.com' out.txt || fail "https"
wget -qO- -e use_proxy=yes -e http_proxy=http://127.0.0.1:4750 \
  --proxy-user="$PROXY_USER" --proxy-password="$PROXY_PASS" \
  http://api.example.com/ | grep -qx 'hello from api.example.com' || fail "http"

# A refused https:// request: wget says "Proxy tunneling failed: Forbidden", exit 4.
rc=0
wget -O- -e use_proxy=yes -e https_proxy=http://127.0.0.1:4750 \
  --proxy-user="$PROXY_USER" --proxy-password="$PROXY_PASS" \
  --ca-certificate="$CA_FILE" https://denied.example.com/ >/dev/null 2>err.txt || rc=$?
echo "denial (https): exit $rc: $(grep -i 'tunneling' err.txt)"
((rc == 4)) && grep -q 'Proxy tunneling failed: Forbidden' err.txt || fail "https denial"
# A refused http:// request: "ERROR 403: Forbidden", exit 8 (-S shows the header).
rc=0
wget -S -O- -e use_proxy=yes -e http_proxy=http://127.0.0.1:4750 \
  --proxy-user="$PROXY_USER" --proxy-password="$PROXY_PASS" \
  http://denied.example.com/ >/dev/null 2>err.txt || rc=$?
echo "denial (http): exit $rc: $(grep -i -e 'x-smokescreen-error' -e 'ERROR 403' err.txt | tr '\n' ' ')"
((rc == 8)) && grep -q 'X-Smokescreen-Error: Egress proxying is denied' err.txt || fail "http denial"
rm -f out.txt err.txt
echo "wget: all checks passed"
