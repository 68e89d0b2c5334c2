/**
 * Every error the SDK throws is a `ClipMixError`. API errors carry the fields of the API's
 * error object (`type`, `code`, `message`, `param`) plus the HTTP `status` and the
 * `Request-Id` of the answer; pick a subclass with `instanceof`.
 */

/** The `error` object of an API error answer, as sent (extra fields such as `needed` kept). */
export interface ApiErrorBody {
  type?: string;
  code?: string;
  message?: string;
  param?: string | null;
  request_id?: string;
  [field: string]: unknown;
}

export interface ClipMixErrorInit {
  message: string;
  type?: string | undefined;
  code?: string | undefined;
  param?: string | null | undefined;
  status?: number | undefined;
  requestId?: string | undefined;
  headers?: Record<string, string> | undefined;
  body?: ApiErrorBody | undefined;
  cause?: unknown;
}

export class ClipMixError extends Error {
  /** The API's error type, e.g. `invalid_request_error`; `undefined` for client-side errors. */
  readonly type: string | undefined;
  /** The API's error code, e.g. `parameter_invalid`, `insufficient_credits`. */
  readonly code: string | undefined;
  /** The request field at fault, when the API names one (dotted path for nested values). */
  readonly param: string | null | undefined;
  /** The HTTP status; `undefined` when no answer arrived. */
  readonly status: number | undefined;
  /** The `Request-Id` of the answer: quote it when asking for support. */
  readonly requestId: string | undefined;
  /** The answer's headers (lower-case names). */
  readonly headers: Record<string, string>;
  /** The API's error object as sent. */
  readonly body: ApiErrorBody | undefined;

  constructor(init: ClipMixErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.type = init.type;
    this.code = init.code;
    this.param = init.param;
    this.status = init.status;
    this.requestId = init.requestId;
    this.headers = init.headers ?? {};
    this.body = init.body;
  }
}

/** 400 (and 413, 415, other 422s): the request is malformed; `param` names the field. */
export class InvalidRequestError extends ClipMixError {}

/** 401: the API key is missing, malformed, unknown, revoked or expired. */
export class AuthenticationError extends ClipMixError {}

/** 402: the account has too few credits; `needed` and `available` say how many. */
export class InsufficientCreditsError extends ClipMixError {
  readonly needed: number | undefined;
  readonly available: number | undefined;

  constructor(init: ClipMixErrorInit) {
    super(init);
    this.needed = numberOrUndefined(init.body?.["needed"]);
    this.available = numberOrUndefined(init.body?.["available"]);
  }
}

/**
 * 403: the key may not do this. `code` `permission_denied`: a restricted key (`rk_live_…`,
 * `rk_test_…`) lacks the permission named in `permission` (e.g. `"jobs:write"`); other codes,
 * e.g. `live_mode_not_enabled` before the first purchase, leave `permission` undefined.
 */
export class PermissionDeniedError extends ClipMixError {
  readonly permission: string | undefined;

  constructor(init: ClipMixErrorInit) {
    super(init);
    const permission = init.body?.["permission"];
    this.permission = typeof permission === "string" ? permission : undefined;
  }
}

/** 404: no such job, endpoint or route for this key (another account's ids are 404 too). */
export class NotFoundError extends ClipMixError {}

/** 409 other than an Idempotency-Key in use, e.g. `job_not_cancelable`. */
export class ConflictError extends ClipMixError {}

/** 409 `idempotency_key_in_use`: a request with this key is still running. Retried. */
export class IdempotencyKeyInUseError extends ConflictError {}

/** 422 `idempotency_key_reuse`: the key was used with a different request. Use a new key. */
export class IdempotencyKeyReuseError extends ClipMixError {}

/** 429: the key's rate limit; `retryAfter` is the answer's `Retry-After`, in seconds. */
export class RateLimitedError extends ClipMixError {
  readonly retryAfter: number | undefined;

  constructor(init: ClipMixErrorInit) {
    super(init);
    this.retryAfter = parseRetryAfterSeconds(init.headers?.["retry-after"]);
  }
}

/** 5xx: something failed on the API's side; retried, and safe to retry again later. */
export class APIServerError extends ClipMixError {}

/** No answer: the connection failed, was reset or closed before the answer arrived. */
export class APIConnectionError extends ClipMixError {}

/** No answer within the per-request deadline (`timeoutMs`). */
export class APITimeoutError extends APIConnectionError {}

/** `wait()` gave up before the job reached a final status; `job` is the last state seen. */
export class WaitTimeoutError extends ClipMixError {
  readonly job: unknown;

  constructor(message: string, job: unknown) {
    super({ message, code: "wait_timeout" });
    this.job = job;
  }
}

/**
 * A webhook delivery failed verification. `code` says why: `missing_header`,
 * `invalid_timestamp`, `timestamp_too_old`, `timestamp_in_future`, `no_matching_signature`,
 * `id_mismatch` or `invalid_payload`.
 */
export class WebhookVerificationError extends ClipMixError {
  constructor(code: string, message: string) {
    super({ message, code, type: "webhook_verification_error" });
  }
}

/** Seconds from a `Retry-After` value (delta-seconds or an HTTP date); undefined if absent. */
export function parseRetryAfterSeconds(
  value: string | null | undefined,
  nowMs: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (at - nowMs) / 1000);
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

/** The error class for an API answer, from its status and code. */
export function errorFromResponse(
  status: number,
  body: ApiErrorBody | undefined,
  headers: Record<string, string>,
): ClipMixError {
  const init: ClipMixErrorInit = {
    message: body?.message ?? `The API answered HTTP ${status}.`,
    type: body?.type,
    code: body?.code,
    param: body?.param,
    status,
    requestId: headers["request-id"] ?? body?.request_id,
    headers,
    body,
  };
  if (status === 409 && init.code === "idempotency_key_in_use") {
    return new IdempotencyKeyInUseError(init);
  }
  if (status === 422 && init.code === "idempotency_key_reuse") {
    return new IdempotencyKeyReuseError(init);
  }
  if (status >= 500) return new APIServerError(init);
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 422:
      return new InvalidRequestError(init);
    case 401:
      return new AuthenticationError(init);
    case 402:
      return new InsufficientCreditsError(init);
    case 403:
      return new PermissionDeniedError(init);
    case 404:
      return new NotFoundError(init);
    case 409:
      return new ConflictError(init);
    case 429:
      return new RateLimitedError(init);
    default:
      return new ClipMixError(init);
  }
}
