// The CommonJS build as a CommonJS program sees it.
const assert = require("node:assert/strict");
const { test } = require("node:test");

test("require('clipmix') gives a working client and webhook helpers", async () => {
  const { ClipMix, webhooks, ClipMixError } = require("clipmix");
  const { verifySync, signSync } = require("clipmix/node");
  assert.equal(typeof ClipMix, "function");
  assert.throws(() => new ClipMix({ apiKey: "" , baseUrl: "http://x"}), ClipMixError);
  const secret = "whsec_" + Buffer.from("0123456789abcdef0123456789abcdef").toString("base64");
  const body = JSON.stringify({ id: "evt_cjs", object: "event", type: "webhook.test" });
  const headers = signSync(body, secret);
  assert.equal(verifySync(body, headers, secret).id, "evt_cjs");
  assert.equal((await webhooks.verify(body, headers, secret)).id, "evt_cjs");
});
