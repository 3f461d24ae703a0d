"""Python httpx through smokescreen (docs/clients.md, tested by run.sh)."""
import os

import httpx

CA = os.environ["CA_FILE"]
PROXY_URL = os.environ["PROXY_URL"]  # credentials percent-encoded in the URL

# --- recipe ---
with httpx.Client(proxy=PROXY_URL, verify=CA, timeout=10) as client:
    r = client.get("https://api.example.com/")
# --- end ---
    assert r.status_code == 200 and r.text == "hello from api.example.com\n", r.text
    r = client.get("http://api.example.com/")
    assert r.status_code == 200, r.status_code

    # A refused https:// request raises ProxyError with the status line only.
    try:
        client.get("https://denied.example.com/")
        raise SystemExit("denied HTTPS request succeeded")
    except httpx.ProxyError as e:
        print("denial (https):", e)
        assert "403" in str(e), e

    # A refused http:// request is a 403 response with the reason.
    r = client.get("http://denied.example.com/")
    print("denial (http):", r.status_code, r.headers["X-Smokescreen-Error"])
    assert r.status_code == 403
print("httpx: all checks passed")
