// Webhook verification, WebCrypto (`webhooks`) and node:crypto (`clipmix/node`) variants,
// checked against signatures computed here by the documented formulas, not only against the
// SDK's own `sign`.
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, test } from "node:test";

import { WebhookVerificationError, webhooks } from "clipmix";
import { signSync, verifySync } from "clipmix/node";

const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;
const SECRET = newSecret();
const OLD_SECRET = newSecret();

function event(id = `evt_${randomBytes(16).toString("hex")}`) {
  return JSON.stringify({
    id,
    object: "event",
    type: "job.completed",
    created: "2026-11-28T14:02:11.412Z",
    test: true,
    api_key_id: "key_01",
    job: { id: "job_01", object: "job", service: "music", status: "completed" },
  });
}

/** The headers ClipMix sends, computed by docs/webhooks.md word for word. */
function documentedHeaders(body, secrets, { id = JSON.parse(body).id, timestamp = Math.floor(Date.now() / 1000) } = {}) {
  const clipmix = secrets.map(
    (s) => "sha256=" + createHmac("sha256", s).update(body).digest("hex"),
  );
  const standard = secrets.map((s) => {
    const key = Buffer.from(s.slice("whsec_".length), "base64");
    return "v1," + createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  });
  return {
    "content-type": "application/json",
    "x-clipmix-signature": clipmix.join(", "),
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": standard.join(" "),
  };
}

const VARIANTS = [
  ["WebCrypto webhooks.verify", (...args) => webhooks.verify(...args)],
  ["node:crypto verifySync", async (...args) => verifySync(...args)],
];

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof WebhookVerificationError, `${err}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.length > 20);
    return true;
  });
}

for (const [name, verify] of VARIANTS) {
  describe(name, () => {
    test("accepts a delivery signed as documented; answers the parsed event", async () => {
      const body = event();
      const got = await verify(body, documentedHeaders(body, [SECRET]), SECRET);
      assert.deepEqual(got, JSON.parse(body));
    });

    test("raw body as Buffer, Uint8Array or ArrayBuffer; headers as Headers or any casing", async () => {
      const body = event();
      const headers = documentedHeaders(body, [SECRET]);
      const bytes = Buffer.from(body);
      const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
      for (const payload of [bytes, new Uint8Array(bytes), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)]) {
        assert.equal((await verify(payload, new Headers(headers), SECRET)).id, JSON.parse(body).id);
        assert.equal((await verify(payload, upper, SECRET)).id, JSON.parse(body).id);
      }
    });

    test("a changed body is refused", async () => {
      const body = event();
      const headers = documentedHeaders(body, [SECRET]);
      await rejectsWith(verify(body.replace("completed", "failed"), headers, SECRET), "no_matching_signature");
      // Re-serialized JSON (whitespace) is a different body too: verify the raw bytes.
      await rejectsWith(verify(JSON.stringify(JSON.parse(body), null, 1), headers, SECRET), "no_matching_signature");
    });

    test("a wrong secret is refused", async () => {
      const body = event();
      await rejectsWith(verify(body, documentedHeaders(body, [SECRET]), newSecret()), "no_matching_signature");
    });

    test("old and future timestamps are refused; the tolerance is adjustable", async () => {
      const body = event();
      const now = Math.floor(Date.now() / 1000);
      const old = documentedHeaders(body, [SECRET], { timestamp: now - 301 });
      await rejectsWith(verify(body, old, SECRET), "timestamp_too_old");
      assert.ok(await verify(body, old, SECRET, { toleranceSeconds: 600 }));
      const future = documentedHeaders(body, [SECRET], { timestamp: now + 400 });
      await rejectsWith(verify(body, future, SECRET), "timestamp_in_future");
      const edge = documentedHeaders(body, [SECRET], { timestamp: now - 290 });
      assert.ok(await verify(body, edge, SECRET));
      await rejectsWith(verify(body, { ...edge, "webhook-timestamp": "yesterday" }, SECRET), "invalid_timestamp");
    });

    test("a replay with a fresh timestamp but the old signature is refused", async () => {
      const body = event();
      const headers = documentedHeaders(body, [SECRET], { timestamp: Math.floor(Date.now() / 1000) - 1000 });
      const replayed = { ...headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000)) };
      await rejectsWith(verify(body, replayed, SECRET), "no_matching_signature");
    });

    test("rotation: two signatures; either secret alone verifies, as does the pair", async () => {
      const body = event();
      const headers = documentedHeaders(body, [SECRET, OLD_SECRET]);
      assert.match(headers["x-clipmix-signature"], /^sha256=[0-9a-f]{64}, sha256=[0-9a-f]{64}$/);
      assert.ok(await verify(body, headers, SECRET));
      assert.ok(await verify(body, headers, OLD_SECRET));
      assert.ok(await verify(body, headers, [newSecret(), OLD_SECRET]));
      await rejectsWith(verify(body, headers, newSecret()), "no_matching_signature");
    });

    test("repeated signature headers folded into one (Headers.get, proxies) still verify", async () => {
      const body = event();
      const headers = documentedHeaders(body, [SECRET, OLD_SECRET]);
      const folded = new Headers();
      for (const [name, value] of Object.entries(headers)) {
        const parts = name === "webhook-signature" ? value.split(" ") : name === "x-clipmix-signature" ? value.split(", ") : [value];
        for (const part of parts) folded.append(name, part);
      }
      assert.match(folded.get("webhook-signature"), /^v1,\S+, v1,\S+$/);
      // The first value is the one that gains a trailing comma: verify with its secret.
      assert.ok(await verify(body, folded, SECRET));
      assert.ok(await verify(body, folded, OLD_SECRET));
      const asArrays = { ...headers, "webhook-signature": headers["webhook-signature"].split(" "), "x-clipmix-signature": headers["x-clipmix-signature"].split(", ") };
      assert.ok(await verify(body, asArrays, SECRET));
      assert.ok(await verify(body, asArrays, OLD_SECRET));
    });

    test("X-ClipMix-Signature, when present, must match too", async () => {
      const body = event();
      const headers = documentedHeaders(body, [SECRET]);
      const forged = { ...headers, "x-clipmix-signature": "sha256=" + "0".repeat(64) };
      await rejectsWith(verify(body, forged, SECRET), "no_matching_signature");
      const { "x-clipmix-signature": _, ...standardOnly } = headers;
      assert.ok(await verify(body, standardOnly, SECRET));
    });

    test("missing Standard Webhooks headers are named", async () => {
      const body = event();
      const { "webhook-id": _, "webhook-timestamp": __, ...rest } = documentedHeaders(body, [SECRET]);
      await assert.rejects(verify(body, rest, SECRET), (err) => {
        assert.equal(err.code, "missing_header");
        assert.match(err.message, /webhook-id, webhook-timestamp/);
        return true;
      });
    });

    test("an event whose id is not its webhook-id is refused", async () => {
      const body = event("evt_inside");
      const headers = documentedHeaders(body, [SECRET], { id: "evt_outside" });
      await rejectsWith(verify(body, headers, SECRET), "id_mismatch");
    });

    test("a malformed secret is a TypeError, not a verification failure", async () => {
      const body = event();
      await assert.rejects(verify(body, documentedHeaders(body, [SECRET]), "whsec_!!!"), TypeError);
    });
  });
}

describe("sign", () => {
  test("webhooks.sign and signSync produce the documented headers", async () => {
    const body = event();
    const timestamp = Math.floor(Date.now() / 1000);
    const expected = documentedHeaders(body, [SECRET, OLD_SECRET], { timestamp });
    const lower = (h) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
    const asyncSigned = lower(await webhooks.sign(body, [SECRET, OLD_SECRET], { timestamp }));
    const syncSigned = lower(signSync(body, [SECRET, OLD_SECRET], { timestamp }));
    for (const signed of [asyncSigned, syncSigned]) {
      for (const name of ["x-clipmix-signature", "webhook-id", "webhook-timestamp", "webhook-signature"]) {
        assert.equal(signed[name], expected[name], name);
      }
    }
  });

  test("round trips across the two variants", async () => {
    const body = event();
    assert.equal(verifySync(body, await webhooks.sign(body, SECRET), SECRET).id, JSON.parse(body).id);
    assert.equal((await webhooks.verify(body, signSync(body, SECRET), SECRET)).id, JSON.parse(body).id);
    assert.equal((await webhooks.constructEvent(body, signSync(body, SECRET), SECRET)).type, "job.completed");
  });
});
