/**
 * The webhook signature rules, without any crypto: reading the headers, the timestamp check,
 * what is signed with which key, and parsing the event. `webhooks.ts` (WebCrypto, async) and
 * `node.ts` (node:crypto, sync) only add the HMAC.
 *
 * A delivery carries two signatures over the same raw body (docs/webhooks.md):
 * - `X-ClipMix-Signature: sha256=<hex>`: HMAC-SHA256 of the body keyed with the secret string
 *   as shown, `whsec_` prefix included; several comma-separated values during a rotation.
 * - Standard Webhooks: `webhook-signature: v1,<base64>` (several, space-separated) over
 *   `${webhook-id}.${webhook-timestamp}.${body}`, keyed with the base64-decoded part of the
 *   secret after `whsec_`; `webhook-timestamp` must be within the tolerance.
 */
import { WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./types.js";

/** A `Headers` object (fetch, undici, edge runtimes) or a plain record such as Node's
 * `req.headers`; names are matched case-insensitively. */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

/** The raw body as received: a string, a Buffer / Uint8Array, or an ArrayBuffer. */
export type WebhookPayload = string | Uint8Array | ArrayBuffer;

/** One secret, or several (e.g. the old and the new one while you deploy a rotation). */
export type WebhookSecret = string | readonly string[];

export interface VerifyOptions {
  /** Largest accepted distance between `webhook-timestamp` and now (default 300 s). */
  toleranceSeconds?: number | undefined;
  /** "Now" for the timestamp check (tests); a Date or milliseconds since the epoch. */
  now?: Date | number | undefined;
}

export interface SignOptions {
  /** The event id (`webhook-id`); taken from the payload's `id` when left out. */
  id?: string | undefined;
  /** Unix seconds (`webhook-timestamp`); now when left out. */
  timestamp?: number | undefined;
}

export const DEFAULT_TOLERANCE_SECONDS = 300;
export const SECRET_PREFIX = "whsec_";

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

export function toBytes(payload: WebhookPayload): Uint8Array {
  if (typeof payload === "string") return utf8(payload);
  if (payload instanceof Uint8Array) return payload;
  if (payload instanceof ArrayBuffer) return new Uint8Array(payload);
  throw new TypeError(
    "The webhook payload must be the raw body: a string, Uint8Array/Buffer or ArrayBuffer " +
      "(not parsed JSON).",
  );
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A header's value, case-insensitively; repeated values joined with `joiner`. */
export function headerValue(
  headers: WebhookHeaders,
  name: string,
  joiner = ",",
): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    const value = (headers as { get(name: string): string | null }).get(name);
    return value ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const wanted = name.toLowerCase();
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== wanted) continue;
    const value = record[key];
    if (value === undefined) continue;
    return Array.isArray(value) ? value.join(joiner) : value;
  }
  return undefined;
}

export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function decodeBase64(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text.trim());
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

export function encodeHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function decodeHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Compares two byte strings in time that depends only on their lengths (which are public:
 * both are SHA-256 MACs), never on where they first differ.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function secretsOf(secret: WebhookSecret): string[] {
  const list = typeof secret === "string" ? [secret] : [...secret];
  if (list.length === 0 || list.some((s) => typeof s !== "string" || s === "")) {
    throw new TypeError("A webhook secret is a non-empty string such as 'whsec_…'.");
  }
  return list;
}

/** The Standard Webhooks key: the base64-decoded part of the secret after `whsec_`. */
export function standardKey(secret: string): Uint8Array {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = decodeBase64(encoded);
  if (key === undefined || key.length === 0) {
    throw new TypeError("This is not a ClipMix webhook secret: expected 'whsec_<base64>'.");
  }
  return key;
}

/** What a verifier must check: the MAC inputs and the signatures the delivery carries. */
export interface VerificationPlan {
  body: Uint8Array;
  id: string;
  /** `${id}.${timestamp}.${body}` */
  signedContent: Uint8Array;
  /** Decoded `v1,` signatures of `webhook-signature`. */
  standardSignatures: Uint8Array[];
  /** Decoded `sha256=` values of `X-ClipMix-Signature`; undefined when the header is absent. */
  clipmixSignatures: Uint8Array[] | undefined;
}

/**
 * Reads and checks everything but the MACs: the three Standard Webhooks headers must be
 * there (they carry the timestamp that stops replays) and the timestamp within tolerance.
 */
export function plan(
  payload: WebhookPayload,
  headers: WebhookHeaders,
  options: VerifyOptions = {},
): VerificationPlan {
  const body = toBytes(payload);
  const id = headerValue(headers, "webhook-id");
  const timestamp = headerValue(headers, "webhook-timestamp");
  const signature = headerValue(headers, "webhook-signature", " ");
  const missing = [
    id === undefined ? "webhook-id" : null,
    timestamp === undefined ? "webhook-timestamp" : null,
    signature === undefined ? "webhook-signature" : null,
  ].filter((name) => name !== null);
  if (id === undefined || timestamp === undefined || signature === undefined) {
    throw new WebhookVerificationError(
      "missing_header",
      `Missing webhook header(s): ${missing.join(", ")}. Pass the request's headers as received.`,
    );
  }
  checkTimestamp(timestamp.trim(), options);
  // Space-separated; a proxy (or `Headers.get`) that folds repeated headers adds ", ".
  const standardSignatures = signature
    .split(/\s+/)
    .map((part) => part.replace(/,+$/, ""))
    .filter((part) => part.startsWith("v1,"))
    .map((part) => decodeBase64(part.slice(3)))
    .filter((sig): sig is Uint8Array => sig !== undefined);
  const clipmixHeader = headerValue(headers, "x-clipmix-signature", ",");
  const clipmixSignatures =
    clipmixHeader === undefined
      ? undefined
      : clipmixHeader
          .split(",")
          .map((part) => part.trim())
          .filter((part) => part.startsWith("sha256="))
          .map((part) => decodeHex(part.slice("sha256=".length)))
          .filter((sig): sig is Uint8Array => sig !== undefined);
  return {
    body,
    id,
    signedContent: concat(utf8(`${id}.${timestamp.trim()}.`), body),
    standardSignatures,
    clipmixSignatures,
  };
}

function checkTimestamp(timestamp: string, options: VerifyOptions): void {
  if (!/^\d{1,15}$/.test(timestamp)) {
    throw new WebhookVerificationError(
      "invalid_timestamp",
      `webhook-timestamp is not a Unix time in seconds: '${timestamp.slice(0, 32)}'.`,
    );
  }
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowMs = options.now instanceof Date ? options.now.getTime() : (options.now ?? Date.now());
  const age = nowMs / 1000 - Number(timestamp);
  if (age > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_too_old",
      `webhook-timestamp is ${Math.round(age)} s old, more than the ${tolerance} s tolerance` +
        " (a replayed request, or a clock far off).",
    );
  }
  if (-age > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_in_future",
      `webhook-timestamp is ${Math.round(-age)} s in the future, more than the ${tolerance} s` +
        " tolerance (check this machine's clock).",
    );
  }
}

/** After the MAC checks: refuse, or answer the parsed event. */
export function conclude(
  found: VerificationPlan,
  standardOk: boolean,
  clipmixOk: boolean | undefined,
): WebhookEvent {
  if (!standardOk) {
    throw new WebhookVerificationError(
      "no_matching_signature",
      found.standardSignatures.length === 0
        ? "webhook-signature holds no 'v1,<base64>' signature."
        : "No webhook-signature matches: wrong secret, or the body was changed (verify the raw" +
            " body bytes, before any JSON parsing).",
    );
  }
  if (clipmixOk === false) {
    throw new WebhookVerificationError(
      "no_matching_signature",
      "No X-ClipMix-Signature value matches: wrong secret, or the body was changed.",
    );
  }
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder().decode(found.body));
  } catch {
    throw new WebhookVerificationError("invalid_payload", "The signed body is not valid JSON.");
  }
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    throw new WebhookVerificationError("invalid_payload", "The signed body is not an event.");
  }
  const eventId = (event as { id?: unknown }).id;
  if (eventId !== found.id) {
    throw new WebhookVerificationError(
      "id_mismatch",
      "The event's id differs from its webhook-id header.",
    );
  }
  return event as WebhookEvent;
}

/** The id and timestamp to sign with (the payload's own `id` when it has one). */
export function signingInputs(
  body: Uint8Array,
  options: SignOptions,
  randomId: () => string,
): { id: string; timestamp: number } {
  let id = options.id;
  if (id === undefined) {
    try {
      const parsed = JSON.parse(new TextDecoder().decode(body)) as { id?: unknown };
      if (typeof parsed?.id === "string") id = parsed.id;
    } catch {
      // not JSON: a random id below
    }
  }
  return {
    id: id ?? randomId(),
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
  };
}

/** The delivery headers, given each secret's MACs (newest secret first, as ClipMix sends). */
export function signedHeaders(
  id: string,
  timestamp: number,
  clipmixMacs: Uint8Array[],
  standardMacs: Uint8Array[],
): Record<string, string> {
  return {
    "X-ClipMix-Signature": clipmixMacs.map((mac) => `sha256=${encodeHex(mac)}`).join(", "),
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": standardMacs.map((mac) => `v1,${encodeBase64(mac)}`).join(" "),
  };
}

export function concatSigned(id: string, timestamp: number, body: Uint8Array): Uint8Array {
  return concat(utf8(`${id}.${timestamp}.`), body);
}
