"""Python's standard urllib through smokescreen (docs/clients.md, run.sh)."""
import os
import ssl
import urllib.error
import urllib.request

CA = os.environ["CA_FILE"]
PROXY_URL = os.environ["PROXY_URL"]  # credentials percent-encoded in the URL

# --- recipe ---
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({"http": PROXY_URL, "https": PROXY_URL}),
    urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=CA)),
)
body = opener.open("https://api.example.com/", timeout=10).read()
# --- end ---
assert body == b"hello from api.example.com\n", body
assert opener.open("http://api.example.com/", timeout=10).status == 200

# A refused https:// request raises OSError("Tunnel connection failed: 403 Forbidden").
try:
    opener.open("https://denied.example.com/", timeout=10)
    raise SystemExit("denied HTTPS request succeeded")
except urllib.error.URLError as e:
    print("denial (https):", e.reason)
    assert "Tunnel connection failed: 403 Forbidden" in str(e.reason), e

try:
    opener.open("http://denied.example.com/", timeout=10)
    raise SystemExit("denied HTTP request succeeded")
except urllib.error.HTTPError as e:
    print("denial (http):", e.code, e.headers["X-Smokescreen-Error"])
    assert e.code == 403

# Pitfall: ProxyBasicAuthHandler answers a 407 for http:// only; a CONNECT
# is never retried with credentials.
mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
mgr.add_password(None, "127.0.0.1:4750", os.environ["PROXY_USER"], os.environ["PROXY_PASS"])
challenged = urllib.request.build_opener(
    urllib.request.ProxyHandler({"https": "http://127.0.0.1:4750"}),
    urllib.request.ProxyBasicAuthHandler(mgr),
    urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=CA)),
)
try:
    challenged.open("https://api.example.com/", timeout=10)
    raise SystemExit("ProxyBasicAuthHandler worked for HTTPS")
except urllib.error.URLError as e:
    print("pitfall (ProxyBasicAuthHandler on https):", e.reason)
    assert "407" in str(e.reason), e
print("urllib: all checks passed")
