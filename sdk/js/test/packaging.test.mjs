// The built package: ESM and CommonJS entries load, by the package's own name, and expose the
// same names; the main entry pulls in no node: module.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

test("import() and require() of 'clipmix' expose the same names", async () => {
  const esm = await import("clipmix");
  const cjs = require("clipmix");
  const names = (m) => Object.keys(m).filter((k) => k !== "default" && k !== "__esModule").sort();
  assert.deepEqual(names(esm), names(cjs));
  for (const name of ["ClipMix", "webhooks", "ClipMixError", "InsufficientCreditsError", "RateLimitedError", "WebhookVerificationError"]) {
    assert.ok(name in esm, name);
  }
  assert.deepEqual(Object.keys(esm.webhooks).sort(), Object.keys(cjs.webhooks).sort());
  assert.equal(typeof cjs.webhooks.verify, "function");
  assert.equal(typeof new cjs.ClipMix({ apiKey: "sk_test_x" }).music.create, "function");
  // Two module systems, two copies: each is internally consistent.
  assert.ok(new cjs.NotFoundError({ message: "x" }) instanceof cjs.ClipMixError);
});

test("'clipmix/node' loads both ways with the sync helpers", async () => {
  const esm = await import("clipmix/node");
  const cjs = require("clipmix/node");
  for (const m of [esm, cjs]) {
    for (const name of ["verifySync", "constructEventSync", "signSync", "webhooks"]) {
      assert.equal(typeof m[name] === "function" || typeof m[name] === "object", true, name);
    }
  }
});

test("the formats are marked and resolved as exports says", () => {
  for (const [dir, type] of [["esm", "module"], ["cjs", "commonjs"]]) {
    const marker = JSON.parse(readFileSync(new URL(`../dist/${dir}/package.json`, import.meta.url), "utf8"));
    assert.equal(marker.type, type);
  }
  assert.match(require.resolve("clipmix"), /dist\/cjs\/index\.js$/);
  assert.ok(readFileSync(new URL("../dist/esm/index.d.ts", import.meta.url), "utf8").includes("ClipMix"));
  assert.ok(readFileSync(new URL("../dist/cjs/index.d.ts", import.meta.url), "utf8").includes("ClipMix"));
});

test("no runtime dependencies; VERSION matches package.json", async () => {
  assert.equal(pkg.dependencies, undefined);
  const { VERSION } = await import("clipmix");
  assert.equal(VERSION, pkg.version);
});

test("only clipmix/node imports node: modules", () => {
  for (const dir of ["esm", "cjs"]) {
    const folder = new URL(`../dist/${dir}/`, import.meta.url);
    for (const file of readdirSync(folder).filter((f) => f.endsWith(".js"))) {
      const text = readFileSync(new URL(file, folder), "utf8");
      const usesNode = /["']node:/.test(text);
      assert.equal(usesNode, file === "node.js", `${dir}/${file}`);
    }
  }
});
