// A Zest partner in Node.js with nothing but Node's built-ins (crypto, http): the JWT-bearer token exchange with an
// Ed25519 assertion, an SPV request, its approval through the mock's control plane, and a webhook receiver that
// checks Zest-Signature (HMAC-SHA256 of "t.body", constant-time, t within 300 s) before trusting an event.
//
// Configuration comes from the environment `zest-mock dev-credentials --env` or `zest-mock scenario run` provide:
// ZEST_BASE_URL, ZEST_MOCK_URL, ZEST_CLIENT_ID, ZEST_PRIVATE_KEY_FILE, ZEST_WEBHOOK_SECRET, ZEST_AUDIENCE.
// Prints one JSON line: the SPV request slug, the verified events and how many deliveries were refused.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("ZEST_BASE_URL");
const MOCK = env("ZEST_MOCK_URL");
const CLIENT_ID = env("ZEST_CLIENT_ID");
const KEY = crypto.createPrivateKey(fs.readFileSync(env("ZEST_PRIVATE_KEY_FILE")));
const SECRET = env("ZEST_WEBHOOK_SECRET");
const AUDIENCE = env("ZEST_AUDIENCE");
const TOLERANCE_SECONDS = 300;

function call(method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const request = http.request(url, { method, headers: { ...headers, ...(data ? { "Content-Length": data.length } : {}) } },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: response.statusCode, json: text ? JSON.parse(text) : null, text });
        });
      });
    request.setTimeout(30_000, () => request.destroy(new Error(`${method} ${url} timed out`)));
    request.on("error", reject);
    if (data) request.write(data);
    request.end();
  });
}

async function expect(status, promise) {
  const response = await promise;
  if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${response.text}`);
  return response.json;
}

const b64url = (data) => Buffer.from(data).toString("base64url");

function assertion() {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "EdDSA", typ: "JWT" }));
  const claims = b64url(JSON.stringify({ iss: "https://partner.example.com", sub: CLIENT_ID, client_id: CLIENT_ID,
    aud: AUDIENCE, iat: now, exp: now + 60, jti: crypto.randomUUID() }));
  const signature = crypto.sign(null, Buffer.from(`${header}.${claims}`), KEY);
  return `${header}.${claims}.${b64url(signature)}`;
}

function verify(signatureHeader, rawBody) {
  const parts = {};
  for (const item of (signatureHeader || "").split(",")) {
    const at = item.indexOf("=");
    if (at > 0) (parts[item.slice(0, at).trim()] ||= []).push(item.slice(at + 1).trim());
  }
  const t = Number.parseInt((parts.t || [])[0], 10);
  if (!Number.isFinite(t) || Math.abs(Date.now() / 1000 - t) > TOLERANCE_SECONDS) return false;
  const expected = crypto.createHmac("sha256", SECRET).update(`${t}.`).update(rawBody).digest();
  return (parts.v1 || []).some((candidate) => {
    const given = Buffer.from(candidate, "hex");
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

const verified = [];
let refused = 0;
let onEvent = () => {};
const receiver = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const raw = Buffer.concat(chunks);
    if (!verify(request.headers["zest-signature"], raw)) {
      refused += 1;
      response.writeHead(400).end();
      return;
    }
    const event = JSON.parse(raw.toString());
    verified.push(event);
    response.writeHead(200).end();
    onEvent(event);
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const webhookUrl = `http://127.0.0.1:${receiver.address().port}/zest/webhooks`;

try {
  const json = { "Content-Type": "application/json" };
  await expect(200, call("PUT", `${MOCK}/_mock/webhooks/endpoint`, { headers: json,
    body: JSON.stringify({ clientId: CLIENT_ID, url: webhookUrl }) }));

  const form = new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: assertion() });
  const { accessToken } = await expect(201, call("POST", `${BASE}/v1/oauth2/tokens`, {
    headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: form.toString() }));
  const auth = { Authorization: `Bearer ${accessToken}` };

  const created = await expect(201, call("POST", `${BASE}/v1/spv-requests`, {
    headers: { ...auth, ...json, "Idempotency-Key": crypto.randomUUID() },
    body: JSON.stringify({ templateId: "syndicate_secondary", templateVersion: "1.0.0", attributes: {
      underlyingCompanySlug: "co_acme", currency: "USD",
      shareClasses: [{ name: "Class A", managementFeePercent: "2.0", carryPercent: "20.0" }] } }) }));
  const slug = created.spvRequestSlug;

  const completed = new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error("no verified spv_request.completed within 60 s")), 60_000);
    onEvent = (event) => {
      if (event.eventType === "spv_request.completed" && event.data.spvRequestSlug === slug) {
        clearTimeout(guard);
        resolve(event);
      }
    };
  });
  await expect(200, call("POST", `${MOCK}/_mock/admin/spv-requests/${slug}/approve`));
  await expect(200, call("POST", `${MOCK}/_mock/clock/advance`, { headers: json, body: JSON.stringify({ seconds: 60 }) }));
  const event = await completed;
  console.log(JSON.stringify({ slug, completedEventId: event.eventId, vehicleSlug: event.data.materialisedRefs?.vehicleSlug,
    verified: verified.map((e) => e.eventType), refused }));
} finally {
  receiver.close();
}
