/**
 * `clipmix/node`: synchronous webhook verification with `node:crypto` (HMAC and
 * `timingSafeEqual`). The main entry never imports `node:` modules; this one is for Node.
 *
 * ```js
 * const { verifySync } = require("clipmix/node");
 * const event = verifySync(rawBody, req.headers, process.env.CLIPMIX_WEBHOOK_SECRET);
 * ```
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { WebhookVerificationError } from "./errors.js";
import {
  concatSigned,
  conclude,
  encodeHex,
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

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

function anyMatches(keys: Uint8Array[], data: Uint8Array, given: Uint8Array[]): boolean {
  let ok = false;
  for (const key of keys) {
    const expected = hmac(key, data);
    for (const signature of given) {
      // timingSafeEqual needs equal lengths; a MAC's length is public, its bytes are not.
      const match = signature.length === expected.length && timingSafeEqual(expected, signature);
      ok = match || ok;
    }
  }
  return ok;
}

/** `webhooks.verify`, synchronously, with node:crypto. Answers the event or throws
 * `WebhookVerificationError`. */
export function verifySync(
  payload: WebhookPayload,
  headers: WebhookHeaders,
  secret: WebhookSecret,
  options: VerifyOptions = {},
): WebhookEvent {
  const secrets = secretsOf(secret);
  const found = plan(payload, headers, options);
  const standardOk = anyMatches(
    secrets.map(standardKey),
    found.signedContent,
    found.standardSignatures,
  );
  const clipmixOk =
    found.clipmixSignatures === undefined
      ? undefined
      : anyMatches(secrets.map(utf8), found.body, found.clipmixSignatures);
  return conclude(found, standardOk, clipmixOk);
}

/** The same as `verifySync`. */
export const constructEventSync = verifySync;

/** `webhooks.verifyStatusEvent`, synchronously (a status webhook's delivery). */
export function verifyStatusEventSync(
  payload: WebhookPayload,
  headers: WebhookHeaders,
  secret: WebhookSecret,
  options: VerifyOptions = {},
): StatusWebhookEvent {
  return verifySync(payload, headers, secret, options) as unknown as StatusWebhookEvent;
}

/** `webhooks.sign`, synchronously, with node:crypto. */
export function signSync(
  payload: WebhookPayload,
  secret: WebhookSecret,
  options: SignOptions = {},
): Record<string, string> {
  const secrets = secretsOf(secret);
  const body = toBytes(payload);
  const { id, timestamp } = signingInputs(
    body,
    options,
    () => `evt_${encodeHex(randomBytes(16))}`,
  );
  const content = concatSigned(id, timestamp, body);
  return signedHeaders(
    id,
    timestamp,
    secrets.map((s) => hmac(utf8(s), body)),
    secrets.map((s) => hmac(standardKey(s), content)),
  );
}

/** The sync helpers under one name, mirroring `webhooks` of the main entry. */
export const webhooks = {
  verify: verifySync,
  constructEvent: constructEventSync,
  verifyStatusEvent: verifyStatusEventSync,
  sign: signSync,
};

export { WebhookVerificationError };
export type { SignOptions, VerifyOptions, WebhookHeaders, WebhookPayload, WebhookSecret };
