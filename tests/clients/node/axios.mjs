// Node axios through smokescreen (docs/clients.md, tested by run.sh).
// The test CA comes from NODE_EXTRA_CA_CERTS.
import assert from "node:assert/strict";
import axios from "axios";
import { HttpsProxyAgent } from "https-proxy-agent";

const { PROXY_URL, PROXY_USER, PROXY_PASS } = process.env;

// --- recipe: axios' own proxy option (CONNECT for https:// in axios 1.x) ---
const proxy = {
  protocol: "http", host: "127.0.0.1", port: 4750,
  auth: { username: PROXY_USER, password: PROXY_PASS },
};
const res = await axios.get("https://api.example.com/", { proxy });
// --- end ---
assert.equal(res.data, "hello from api.example.com\n");
assert.equal((await axios.get("http://api.example.com/", { proxy })).status, 200);

// --- recipe: or an agent, e.g. to share one with other libraries ---
const agent = new HttpsProxyAgent(PROXY_URL);
const viaAgent = await axios.get("https://api.example.com/", { httpsAgent: agent, proxy: false });
// --- end ---
assert.equal(viaAgent.status, 200);

// A refused request, https:// or http://, either way: an AxiosError whose
// response has status 403 and the reason in x-smokescreen-error.
for (const [url, options] of [
  ["https://denied.example.com/", { proxy }],
  ["https://denied.example.com/", { httpsAgent: agent, proxy: false }],
  ["http://denied.example.com/", { proxy }],
]) {
  await assert.rejects(axios.get(url, options), (e) => {
    console.log(`denial (${url}):`, e.message, "/", e.response?.headers["x-smokescreen-error"]);
    return e.response?.status === 403 && /denied to host/.test(e.response.headers["x-smokescreen-error"]);
  });
}
console.log("axios: all checks passed");
