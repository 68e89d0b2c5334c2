/**
 * Webhook verification with WebCrypto (`globalThis.crypto.subtle`): Node >= 19 (or 18 with
 * the global enabled), Deno, Bun, browsers, Cloudflare Workers and other edge runtimes.
 * For a synchronous check with `node:crypto`, import `verifySync` from `clipmix/node`.
 */
import { WebhookVerificationError } from "./errors.js";
import {
  concatSigned,
  conclude,
  constantTimeEqual,
  plan,
  secretsOf,
  signedHeaders,
  signingInputs,
  standardKey,
  toBytes,
  utf8,
  type SignOptions,
  type VerifyOptions,
  type WebhookHeaders,
  type WebhookPayload,
  type WebhookSecret,
} from "./webhook-core.js";
import type { StatusWebhookEvent, WebhookEvent } from "./types.js";

function subtle(): SubtleCrypto {
  const found = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (found === undefined) {
    throw new TypeError(
      "WebCrypto (globalThis.crypto.subtle) is not available here; in Node use verifySync " +
        "from 'clipmix/node'.",
    );
  }
  return found;
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const s = subtle();
  const cryptoKey = await s.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await s.sign("HMAC", cryptoKey, data as Uint8Array<ArrayBuffer>));
}

async function anyMatches(
  keys: Uint8Array[],
  data: Uint8Array,
  given: Uint8Array[],
): Promise<boolean> {
  let ok = false;
  for (const key of keys) {
    const expected = await hmac(key, data);
    // Every candidate is compared (no early exit), each in constant time.
    for (const signature of given) ok = constantTimeEqual(expected, signature) || ok;
  }
  return ok;
}

/**
 * Verifies a delivery and answers its event. Checks the Standard Webhooks headers (and the
 * timestamp tolerance, default 300 s) and, when present, `X-ClipMix-Signature`; throws
 * `WebhookVerificationError` (with `code` and a reason) otherwise.
 *
 * @param payload the raw body, exactly as received (not re-serialized JSON)
 * @param headers the request headers (a `Headers` object or a plain record)
 * @param secret `whsec_…` (or several, e.g. old and new during a rotation)
 */
export async function verify(
  payload: WebhookPayload,
  headers: WebhookHeaders,
  secret: WebhookSecret,
  options: VerifyOptions = {},
): Promise<WebhookEvent> {
  const secrets = secretsOf(secret);
  const found = plan(payload, headers, options);
  const standardOk = await anyMatches(
    secrets.map(standardKey),
    found.signedContent,
    found.standardSignatures,
  );
  const clipmixOk =
    found.clipmixSignatures === undefined
      ? undefined
      : await anyMatches(secrets.map(utf8), found.body, found.clipmixSignatures);
  return conclude(found, standardOk, clipmixOk);
}

/** The same as `verify` (named after the common "construct event" idiom). */
export const constructEvent = verify;

/**
 * Verifies a status webhook (a `client.status.subscribe()` subscription's delivery) with that
 * subscription's `whsec_` secret, by its Standard Webhooks headers (status webhooks carry no
 * `X-ClipMix-Signature`), and answers its event: an incident or maintenance change.
 */
export async function verifyStatusEvent(
  payload: WebhookPayload,
  headers: WebhookHeaders,
  secret: WebhookSecret,
  options: VerifyOptions = {},
): Promise<StatusWebhookEvent> {
  return (await verify(payload, headers, secret, options)) as unknown as StatusWebhookEvent;
}

function randomEventId(): string {
  const bytes = new Uint8Array(16);
  (globalThis as { crypto: Crypto }).crypto.getRandomValues(bytes);
  return `evt_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Signs a payload as ClipMix does (for tests of your receiver): answers the four signature
 * headers. Several secrets sign it with each, first one first, as during a rotation.
 */
export async function sign(
  payload: WebhookPayload,
  secret: WebhookSecret,
  options: SignOptions = {},
): Promise<Record<string, string>> {
  const secrets = secretsOf(secret);
  const body = toBytes(payload);
  const { id, timestamp } = signingInputs(body, options, randomEventId);
  const content = concatSigned(id, timestamp, body);
  const clipmix = await Promise.all(secrets.map((s) => hmac(utf8(s), body)));
  const standard = await Promise.all(secrets.map((s) => hmac(standardKey(s), content)));
  return signedHeaders(id, timestamp, clipmix, standard);
}

export { WebhookVerificationError };
export type { SignOptions, VerifyOptions, WebhookHeaders, WebhookPayload, WebhookSecret };
