// The SDK's typed events against the API's event catalog (GET /api/v1/event-types): every
// event type the catalog lists has a typed interface in `EventTypeMap` (src/types.ts) and the
// other way round; each interface declares exactly the fields the type's JSON Schema requires,
// and so do the objects inside it (`job`, `data`, `job.error`) wherever the schema describes
// them. tests/e2e/test_sdk_webhook_tools.py checks the Python SDK's typed events the same way.
//
// As in openapi-types.test.mjs, the declared fields come from the TypeScript compiler's type
// checker over src/types.ts: inherited members (EventFields) and intersections
// (`Job & { status: "completed" }`) count as TypeScript counts them, index signatures do not.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import ts from "typescript";

import { EVENT_TYPES } from "clipmix";
import { client, skip } from "./setup.mjs";

/** The type checker over src/types.ts and the `EventTypeMap` interface's type. */
function eventTypeMap() {
  const file = fileURLToPath(new URL("../../src/types.ts", import.meta.url));
  const program = ts.createProgram([file], { noLib: true, types: [], noEmit: true });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file));
  const symbol = checker.getExportsOfModule(module).find((s) => s.name === "EventTypeMap");
  assert.ok(symbol, "src/types.ts exports EventTypeMap");
  return { checker, map: checker.getDeclaredTypeOfSymbol(symbol) };
}

/** Follows `$ref` (into `$defs`) and the one non-null branch of an `anyOf`. */
function resolve(root, node) {
  for (;;) {
    if (node.$ref) {
      node = node.$ref.replace(/^#\//, "").split("/").reduce((at, part) => at[part], root);
      continue;
    }
    const branches = node.anyOf ?? node.oneOf;
    if (branches) {
      const objects = branches.filter((b) => b.type !== "null");
      if (objects.length !== 1) return node;
      node = objects[0];
      continue;
    }
    return node;
  }
}

/** Where the TypeScript `type` and the schema `node` disagree on their fields. */
function mismatches(checker, root, node, type, at) {
  node = resolve(root, node);
  const properties = checker.getPropertiesOfType(type);
  const declared = new Set(properties.map((p) => p.name));
  const required = new Set(node.required ?? []);
  const described = new Set(Object.keys(node.properties ?? {}));
  const wrong = [];
  const missing = [...required].filter((f) => !declared.has(f));
  const unknown = [...declared].filter((f) => !described.has(f));
  if (missing.length) wrong.push(`${at}: does not declare ${missing}`);
  if (unknown.length) wrong.push(`${at}: declares ${unknown}, which the schema does not have`);
  for (const property of properties) {
    if (!described.has(property.name)) continue;
    const inner = resolve(root, node.properties[property.name]);
    if (!inner.properties) continue; // a scalar, or an object the schema leaves open
    const declaration = property.valueDeclaration ?? property.declarations?.[0];
    const propertyType = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, declaration));
    wrong.push(...mismatches(checker, root, inner, propertyType, `${at}.${property.name}`));
  }
  return wrong;
}

describe("the SDK's typed events against GET /api/v1/event-types", { skip }, () => {
  let catalog;
  let checker;
  let map;

  before(async () => {
    ({ checker, map } = eventTypeMap());
    // Any key may read the catalog, a restricted one too.
    catalog = (await client("RESTRICTED_KEY").webhookEndpoint.eventTypes()).data;
  });

  test("every event type of the catalog has a typed interface, and no other", () => {
    const typed = checker.getPropertiesOfType(map).map((p) => p.name).sort();
    const listed = catalog.map((entry) => entry.type);
    assert.equal(new Set(listed).size, listed.length, "each type once");
    assert.deepEqual(typed, [...listed].sort());
    assert.deepEqual([...EVENT_TYPES].sort(), typed, "EVENT_TYPES (at run time) names the same");
    assert.ok(catalog.every((entry) => entry.object === "event_type" && entry.description));
  });

  test("each typed event declares exactly the fields its JSON Schema requires", () => {
    const wrong = [];
    for (const entry of catalog) {
      const member = checker.getPropertyOfType(map, entry.type);
      if (!member) continue; // reported by the test above
      const type = checker.getTypeOfSymbolAtLocation(member, member.valueDeclaration);
      const schema = entry.schema;
      assert.equal(resolve(schema, schema.properties.type).const, entry.type);
      wrong.push(...mismatches(checker, schema, schema, type, entry.type));
    }
    assert.deepEqual(wrong, []);
  });
});
