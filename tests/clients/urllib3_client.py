"""Python urllib3 through smokescreen (docs/clients.md, tested by run.sh)."""
import os

import urllib3

CA = os.environ["CA_FILE"]
USER, PASSWORD = os.environ["PROXY_USER"], os.environ["PROXY_PASS"]

# --- recipe ---
http = urllib3.ProxyManager(
    "http://127.0.0.1:4750",
    proxy_headers=urllib3.make_headers(proxy_basic_auth=f"{USER}:{PASSWORD}"),
    ca_certs=CA,
)
r = http.request("GET", "https://api.example.com/", timeout=10)
# --- end ---
assert r.status == 200 and r.data == b"hello from api.example.com\n", r.data
r = http.request("GET", "http://api.example.com/", timeout=10)
assert r.status == 200, r.status

# A refused https:// request: MaxRetryError caused by ProxyError.
try:
    http.request("GET", "https://denied.example.com/", timeout=10, retries=False)
    raise SystemExit("denied HTTPS request succeeded")
except urllib3.exceptions.ProxyError as e:
    print("denial (https):", e)
    assert "403 Forbidden" in str(e), e

r = http.request("GET", "http://denied.example.com/", timeout=10)
print("denial (http):", r.status, r.headers["X-Smokescreen-Error"])
assert r.status == 403

# Pitfall: urllib3 ignores credentials in the proxy URL.
bare = urllib3.ProxyManager(os.environ["PROXY_URL"], ca_certs=CA)
try:
    bare.request("GET", "https://api.example.com/", timeout=10, retries=False)
    raise SystemExit("credentials in the proxy URL worked")
except urllib3.exceptions.ProxyError as e:
    print("pitfall (credentials in the URL):", e)
    assert "407" in str(e), e
print("urllib3: all checks passed")
