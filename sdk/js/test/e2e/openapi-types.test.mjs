// The SDK's response types against the API's own document (GET /api/openapi.json): every field
// a documented answer has is declared on the interface it is read into, and every declared
// field is one the document names. tests/integration/test_sdk_openapi.py checks the Python SDK
// the same way.
//
// The declared fields come from the TypeScript compiler's own type checker over src/types.ts
// (and ApiErrorBody in src/errors.ts), not from a regex or a list made at build time: members
// inherited with `extends` (Dub, EventPage) and members of generic interfaces (Page<T>) count
// as TypeScript counts them, index signatures (`[field: string]: unknown`) do not, comments and
// layout cannot fool it, and there is no generated file to go stale. `typescript` is already
// the package's pinned dev dependency (it builds dist/).
//
// Each interface is tied to answers by operation (`METHOD path status`) and, for a nested
// object, the field path inside the answer (`data[]`, `error`), never by schema name.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import ts from "typescript";

import { BASE_URL, skip } from "./setup.mjs";

const SERVICES = ["/api/v1/music", "/api/v1/translations", "/api/v1/family-videos", "/api/v1/avatars"];
const QUOTED = ["POST /api/v1/quotes 201", ...SERVICES.map((path) => `POST ${path} 200`)]; // ?dry_run=true

/** Where each interface is read from. */
const LOCATIONS = {
  Job: [
    ...SERVICES.map((path) => `POST ${path} 201`),
    ...SERVICES.map((path) => `GET ${path}/{id} 200`),
    "GET /api/v1/jobs/{id} 200",
    "POST /api/v1/jobs/{id}/cancel 200",
    "GET /api/v1/jobs 200 data[]",
  ],
  JobError: ["GET /api/v1/jobs/{id} 200 error"],
  LanguageResult: ["GET /api/v1/jobs/{id} 200 languages[]"],
  Page: [
    "GET /api/v1/jobs 200",
    "GET /api/v1/ledger 200",
    "GET /api/v1/webhook/deliveries 200",
    "GET /api/v1/status/subscriptions 200",
  ],
  Quote: QUOTED,
  QuoteEta: QUOTED.map((location) => `${location} eta`),
  LowBalance: ["GET /api/v1/balance/low-balance 200", "PUT /api/v1/balance/low-balance 200"],
  StatusSubscription: [
    "GET /api/v1/status/subscriptions 200 data[]",
    "POST /api/v1/status/subscriptions 201", // with the secret, shown once
  ],
  StatusSubscriptionDeleted: ["DELETE /api/v1/status/subscriptions/{id} 200"],
  // GET /api/status/summary.json, outside /api/v1 (no key needed).
  StatusSummary: ["GET /api/status/summary.json 200"],
  StatusPage: ["GET /api/status/summary.json 200 page"],
  StatusComponent: ["GET /api/status/summary.json 200 components[]"],
  StatusIncident: ["GET /api/status/summary.json 200 incidents[]"],
  StatusMaintenance: ["GET /api/status/summary.json 200 scheduled_maintenances[]"],
  StatusIncidentUpdate: ["GET /api/status/summary.json 200 scheduled_maintenances[].incident_updates[]"],
  EventTypeList: ["GET /api/v1/event-types 200"],
  EventPage: ["GET /api/v1/events 200"],
  Balance: ["GET /api/v1/balance 200"],
  LedgerEntry: ["GET /api/v1/ledger 200 data[]"],
  Pricing: ["GET /api/v1/pricing 200"],
  Price: ["GET /api/v1/pricing 200 prices[]"],
  TopUpBonus: ["GET /api/v1/pricing 200 top_up_bonuses[]"],
  WebhookEndpoint: [
    "GET /api/v1/webhook 200",
    "PUT /api/v1/webhook 200",
    "PUT /api/v1/webhook 201", // with the secret, shown once
    "POST /api/v1/webhook/rotate-secret 200",
    "POST /api/v1/webhook/pause 200",
    "POST /api/v1/webhook/resume 200", // with released
  ],
  WebhookRecovery: ["POST /api/v1/webhook/recover 202"],
  WebhookEndpointDeleted: ["DELETE /api/v1/webhook 200"],
  Delivery: [
    "GET /api/v1/webhook/deliveries 200 data[]",
    "POST /api/v1/webhook/test 200 delivery",
    "GET /api/v1/webhook/deliveries/{delivery_id} 200", // with the exact request
  ],
  WebhookDiagnosis: ["POST /api/v1/webhook/deliveries/{delivery_id}/diagnose 200"],
  DiagnosisCheck: ["POST /api/v1/webhook/deliveries/{delivery_id}/diagnose 200 checks[]"],
  FirstDifference: ["POST /api/v1/webhook/deliveries/{delivery_id}/diagnose 200 first_difference"],
  EventType: ["GET /api/v1/event-types 200 data[]"],
  WebhookTestResult: ["POST /api/v1/webhook/test 200"],
  WebhookRedelivery: ["POST /api/v1/webhook/deliveries/{delivery_id}/redeliver 200"],
  WebhookEvent: ["GET /api/v1/events/{id} 200", "GET /api/v1/events 200 data[]"],
  ApiErrorBody: ["GET /api/v1/jobs/{id} 404 error", "POST /api/v1/music 400 error"],
};

/** Interfaces the document leaves open (an object of any fields): nothing to compare yet. The
 * last test fails once the document describes them, so that they are tied then. */
const OPEN = {
  JobOutput: "GET /api/v1/jobs/{id} 200 output",
  Artifact: "GET /api/v1/jobs/{id} 200 output",
  Dub: "GET /api/v1/jobs/{id} 200 output",
  LanguageOutput: "GET /api/v1/jobs/{id} 200 languages[].output",
};

/** Not JSON answers: live progress events (Server-Sent Events, docs/api.md; jobs.test.mjs reads
 * them from the suite) and what a status webhook POSTs (status.test.mjs verifies a real one). */
const NOT_ANSWERS = new Set([
  "JobStreamStatusEvent",
  "JobStreamLanguageEvent",
  "JobStreamQueueEvent",
  "StatusWebhookEvent",
]);

/** The typed events and their data: checked against GET /api/v1/event-types (each type's JSON
 * Schema) by event-catalog.test.mjs; the answers above read events into WebhookEvent. */
const CATALOG = new Set([
  "EventTypeMap",
  "JobCompletedEvent",
  "JobFailedEvent",
  "JobCanceledEvent",
  "WebhookTestEvent",
  "EndpointDisabledEvent",
  "EndpointDisabledData",
  "KeysExpiringEvent",
  "KeyExpiringData",
  "JobLanguageCompletedEvent",
  "LanguageCompletedData",
  "WalletLowEvent",
  "WalletLowData",
]);

const METHODS = new Set(["get", "put", "post", "delete", "patch"]);

/** Interface name -> its declared fields, as the type checker sees them. */
function declaredFields() {
  const src = (name) => fileURLToPath(new URL(`../../src/${name}`, import.meta.url));
  const files = [src("types.ts"), src("errors.ts")];
  // Only the names of members are read: no standard library is needed to list them.
  const program = ts.createProgram(files, { noLib: true, types: [], noEmit: true });
  const checker = program.getTypeChecker();
  const fields = new Map();
  for (const file of files) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(file));
    for (const symbol of checker.getExportsOfModule(module)) {
      if (!symbol.declarations?.some(ts.isInterfaceDeclaration)) continue;
      if (file.endsWith("errors.ts") && symbol.name !== "ApiErrorBody") continue;
      const type = checker.getDeclaredTypeOfSymbol(symbol);
      fields.set(symbol.name, new Set(checker.getPropertiesOfType(type).map((p) => p.name)));
    }
  }
  return fields;
}

/** Follows `$ref` and the one non-null branch of an `anyOf`/`oneOf` (a nullable). */
function resolve(doc, node) {
  for (;;) {
    if (node.$ref) {
      node = node.$ref.replace(/^#\//, "").split("/").reduce((at, part) => at[part], doc);
      continue;
    }
    const branches = node.anyOf ?? node.oneOf;
    if (branches) {
      const objects = branches.filter((b) => b.type !== "null");
      assert.equal(objects.length, 1, `one non-null branch in ${JSON.stringify(node)}`);
      node = objects[0];
      continue;
    }
    return node;
  }
}

function schemaAt(doc, location) {
  const [method, path, status, inside] = location.split(" ");
  const response = resolve(doc, doc.paths[path][method.toLowerCase()].responses[status]);
  let node = resolve(doc, response.content["application/json"].schema);
  const steps = inside ? inside.replaceAll("[]", ".[]").split(".") : [];
  for (const step of steps) node = resolve(doc, step === "[]" ? node.items : node.properties[step]);
  return node;
}

const sorted = (set) => [...set].sort();

describe("the SDK's types against /api/openapi.json", { skip }, () => {
  let doc;
  let fields;

  before(async () => {
    fields = declaredFields();
    const answer = await fetch(`${BASE_URL}/api/openapi.json`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(answer.status, 200);
    doc = await answer.json();
  });

  test("each interface declares exactly the fields the API documents for it", () => {
    const wrong = [];
    for (const [name, locations] of Object.entries(LOCATIONS)) {
      const declared = fields.get(name);
      assert.ok(declared, `no exported interface ${name}`);
      const documented = new Set(locations.flatMap((loc) => Object.keys(schemaAt(doc, loc).properties)));
      const unknown = [...documented].filter((f) => !declared.has(f));
      const undocumented = [...declared].filter((f) => !documented.has(f));
      if (unknown.length) wrong.push(`${name} does not declare ${unknown}, documented at ${locations}`);
      if (undocumented.length) wrong.push(`${name} declares ${undocumented}, not documented at ${locations}`);
    }
    assert.deepEqual(wrong, []);
  });

  test("every answer the API documents is read into an interface", () => {
    const tied = new Set(
      Object.values(LOCATIONS)
        .flat()
        .filter((loc) => loc.split(" ").length === 3 && loc.split(" ")[1].startsWith("/api/v1/")),
    );
    const answers = new Set();
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (!path.startsWith("/api/v1/")) continue;
      for (const [method, operation] of Object.entries(methods)) {
        if (!METHODS.has(method)) continue;
        for (const [status, response] of Object.entries(operation.responses)) {
          if (status.startsWith("2") && response.content?.["application/json"]) {
            answers.add(`${method.toUpperCase()} ${path} ${status}`);
          }
        }
      }
    }
    assert.deepEqual(sorted([...answers].filter((a) => !tied.has(a))), [], "answers no interface is read from");
    assert.deepEqual(sorted([...tied].filter((a) => !answers.has(a))), [], "tied to answers not documented");
  });

  test("every interface of src/types.ts is tied to the document", () => {
    const loose = [...fields.keys()].filter(
      (name) => !(name in LOCATIONS) && !(name in OPEN) && !CATALOG.has(name) && !NOT_ANSWERS.has(name),
    );
    assert.deepEqual(loose, [], "interfaces checked against nothing");
    for (const [name, location] of Object.entries(OPEN)) {
      assert.equal(schemaAt(doc, location).properties, undefined, `the API now documents ${location}: tie ${name} to it`);
    }
  });
});
