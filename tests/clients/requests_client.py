"""Python requests through smokescreen (docs/clients.md, tested by run.sh)."""
import os

import requests

CA = os.environ["CA_FILE"]
PROXY_URL = os.environ["PROXY_URL"]  # credentials percent-encoded in the URL

# --- recipe ---
proxies = {"http": PROXY_URL, "https": PROXY_URL}
r = requests.get("https://api.example.com/", proxies=proxies, verify=CA, timeout=10)
# --- end ---
assert r.status_code == 200 and r.text == "hello from api.example.com\n", r.text
r = requests.get("http://api.example.com/", proxies=proxies, timeout=10)
assert r.status_code == 200, r.status_code

# A refused https:// request raises ProxyError; the reason is not in it.
try:
    requests.get("https://denied.example.com/", proxies=proxies, verify=CA, timeout=10)
    raise SystemExit("denied HTTPS request succeeded")
except requests.exceptions.ProxyError as e:
    print("denial (https):", e)
    assert "Tunnel connection failed: 403 Forbidden" in str(e), e

# A refused http:// request is a 403 response with the reason.
r = requests.get("http://denied.example.com/", proxies=proxies, timeout=10)
print("denial (http):", r.status_code, r.headers["X-Smokescreen-Error"])
assert r.status_code == 403
assert "denied to host 'denied.example.com'" in r.headers["X-Smokescreen-Error"]

# Pitfall: a password with + / = left unencoded in the proxy URL.
raw = f"http://{os.environ['PROXY_USER']}:{os.environ['PROXY_PASS']}@127.0.0.1:4750"
try:
    requests.get("https://api.example.com/", proxies={"https": raw}, verify=CA, timeout=10)
    raise SystemExit("unencoded password worked")
except requests.exceptions.InvalidURL as e:
    print("pitfall (unencoded password):", type(e).__name__, e)

# Pitfall: HTTPProxyAuth is sent on plain http:// requests only, not on CONNECT.
from requests.auth import HTTPProxyAuth

bare = {"https": "http://127.0.0.1:4750"}
auth = HTTPProxyAuth(os.environ["PROXY_USER"], os.environ["PROXY_PASS"])
try:
    requests.get("https://api.example.com/", proxies=bare, auth=auth, verify=CA, timeout=10)
    raise SystemExit("HTTPProxyAuth worked for HTTPS")
except requests.exceptions.ProxyError as e:
    print("pitfall (HTTPProxyAuth on https):", e)
    assert "407" in str(e), e
print("requests: all checks passed")
