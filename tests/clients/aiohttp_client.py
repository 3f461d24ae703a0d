"""Python aiohttp through smokescreen (docs/clients.md, tested by run.sh)."""
import asyncio
import os
import ssl

import aiohttp

CA = os.environ["CA_FILE"]
PROXY_URL = os.environ["PROXY_URL"]  # credentials percent-encoded in the URL


async def main():
    # --- recipe ---
    tls = ssl.create_default_context(cafile=CA)
    async with aiohttp.ClientSession() as session:
        async with session.get("https://api.example.com/", proxy=PROXY_URL, ssl=tls) as r:
            body = await r.text()
    # --- end ---
            assert r.status == 200 and body == "hello from api.example.com\n", body
        async with session.get("http://api.example.com/", proxy=PROXY_URL) as r:
            assert r.status == 200, r.status

        # A refused https:// request raises ClientHttpProxyError (status 403).
        try:
            async with session.get("https://denied.example.com/", proxy=PROXY_URL, ssl=tls):
                raise SystemExit("denied HTTPS request succeeded")
        except aiohttp.ClientHttpProxyError as e:
            print("denial (https):", e.status, e.message)
            assert e.status == 403, e

        async with session.get("http://denied.example.com/", proxy=PROXY_URL) as r:
            print("denial (http):", r.status, r.headers["X-Smokescreen-Error"])
            assert r.status == 403


asyncio.run(main())
print("aiohttp: all checks passed")
