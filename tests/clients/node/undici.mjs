// Node undici through smokescreen (docs/clients.md, tested by run.sh).
// The test CA comes from NODE_EXTRA_CA_CERTS.
import assert from "node:assert/strict";
import { fetch, ProxyAgent } from "undici";

const { PROXY_URL, PROXY_USER, PROXY_PASS } = process.env;

// --- recipe ---
const proxy = new ProxyAgent({
  uri: "http://127.0.0.1:4750",
  token: "Basic " + Buffer.from(`${PROXY_USER}:${PROXY_PASS}`).toString("base64"),
});
const res = await fetch("https://api.example.com/", { dispatcher: proxy });
// --- end ---
assert.equal(await res.text(), "hello from api.example.com\n");
const plain = await fetch("http://api.example.com/", { dispatcher: proxy });
assert.equal(plain.status, 200);

// Credentials in the proxy URL work too (percent-encoded).
const viaUrl = await fetch("https://api.example.com/", { dispatcher: new ProxyAgent(PROXY_URL) });
assert.equal(viaUrl.status, 200);

// A refused https:// request: fetch rejects with "fetch failed"; down its
// cause chain: "Proxy response (403) !== 200 when HTTP Tunneling".
await assert.rejects(fetch("https://denied.example.com/", { dispatcher: proxy }), (e) => {
  const causes = [];
  for (let c = e; c; c = c.cause) causes.push(c.message);
  console.log("denial (https):", causes.join(" <- "));
  return causes.some((m) => m.includes("Proxy response (403) !== 200"));
});
// ProxyAgent tunnels http:// URLs too (CONNECT to port 80), so a refused
// http:// request looks the same.
await assert.rejects(fetch("http://denied.example.com/", { dispatcher: proxy }), (e) => {
  console.log("denial (http):", e.message, "<-", e.cause?.cause?.message);
  return /Proxy response \(403\)/.test(String(e.cause?.cause?.message));
});
console.log("undici: all checks passed");
