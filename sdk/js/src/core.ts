import {
  APIConnectionError,
  APITimeoutError,
  APIServerError,
  ClipMixError,
  IdempotencyKeyInUseError,
  RateLimitedError,
  errorFromResponse,
  parseRetryAfterSeconds,
  type ApiErrorBody,
} from "./errors.js";
import { VERSION } from "./version.js";

export const DEFAULT_BASE_URL = "https://api.clipmix.example";
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRIES = 3;
// Backoff between attempts: 0.5 s, 1 s, 2 s, … capped at 8 s, each jittered down to half so
// that many clients failing together do not come back together.
const INITIAL_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 8_000;
// A Retry-After longer than this is not waited for: the error is thrown instead.
const MAX_RETRY_AFTER_MS = 60_000;

/** The part of `fetch` the SDK uses (lets tests and unusual runtimes pass their own). */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

export interface RetryInfo {
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
  error: ClipMixError;
  method: string;
  path: string;
  idempotencyKey: string | undefined;
}

export interface ClipMixOptions {
  /** `sk_test_…`/`sk_live_…`, or a restricted `rk_test_…`/`rk_live_…`; defaults to the
   * `CLIPMIX_API_KEY` environment variable. */
  apiKey?: string | undefined;
  /** Defaults to `CLIPMIX_BASE_URL`, then `https://api.clipmix.example`. */
  baseUrl?: string | undefined;
  /** Deadline of each HTTP attempt in milliseconds (default 30,000, as the Python SDK). */
  timeoutMs?: number | undefined;
  /** How many times a failed request is retried (default 3, as the Python SDK; 0: none). */
  maxRetries?: number | undefined;
  /** A `fetch` implementation; defaults to the global one. */
  fetch?: FetchFunction | undefined;
  /** Called before each retry, e.g. to log it. */
  onRetry?: ((info: RetryInfo) => void) | undefined;
}

/** Options every call accepts as its last argument. */
export interface RequestOptions {
  /** Overrides the client's `timeoutMs` for this call (per attempt). */
  timeoutMs?: number | undefined;
  /** Overrides the client's `maxRetries` for this call. */
  maxRetries?: number | undefined;
  /** Aborts the call (no retry follows an abort). */
  signal?: AbortSignal | undefined;
  /** POST only: the Idempotency-Key to send; one is generated per call otherwise. */
  idempotencyKey?: string | undefined;
  /** Extra request headers. */
  headers?: Record<string, string> | undefined;
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Query | undefined;
  body?: unknown;
  headers?: Record<string, string> | undefined;
  options?: RequestOptions | undefined;
  /** A conditional read (`If-None-Match` in `headers`): answered with this when the API says
   * `304 Not Modified`. */
  notModified?: unknown;
  /** Sees the headers of a successful answer (an `ETag`, say). */
  onAnswer?: ((headers: Record<string, string>) => void) | undefined;
}

/** Reads an environment variable where there is one (Node, Bun, Deno with permission). */
export function readEnv(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  try {
    const value = g.process?.env?.[name];
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}

/** A random v4 UUID: one Idempotency-Key per call, reused by that call's retries. */
export function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  // Runtimes without WebCrypto (Node 18 without the global): unique enough for a key.
  const hex = (n: number) =>
    Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${Date.now().toString(16).padStart(12, "0")}`;
}

function isRetryable(error: ClipMixError): boolean {
  return (
    error instanceof APIConnectionError ||
    error instanceof IdempotencyKeyInUseError ||
    error instanceof RateLimitedError ||
    error instanceof APIServerError
  );
}

/** Milliseconds to wait before retry number `retry` (1-based), or undefined: do not retry. */
export function retryDelayMs(retry: number, error: ClipMixError): number | undefined {
  const exponential = Math.min(MAX_RETRY_DELAY_MS, INITIAL_RETRY_DELAY_MS * 2 ** (retry - 1));
  const jittered = exponential / 2 + (Math.random() * exponential) / 2;
  const retryAfter = parseRetryAfterSeconds(error.headers["retry-after"]);
  if (retryAfter === undefined) return jittered;
  const honoured = retryAfter * 1000;
  if (honoured > MAX_RETRY_AFTER_MS) return undefined;
  // Never sooner than the server asked; a little jitter on top spreads the herd.
  return honoured + Math.random() * Math.min(250, jittered);
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function headersRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name.toLowerCase()] = value;
  });
  return out;
}

function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${error.message}: ${typeof code === "string" ? `${code} ` : ""}${cause.message}`;
  }
  return error.message;
}

class TimeoutSignal extends Error {}

/** The HTTP layer: auth, JSON, errors, per-attempt deadlines and the retry policy. */
export class Transport {
  // A private field: util.inspect / console.log of a client never print the key.
  readonly #apiKey: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  private readonly fetchFn: FetchFunction;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(options: ClipMixOptions = {}) {
    const apiKey = options.apiKey ?? readEnv("CLIPMIX_API_KEY");
    if (!apiKey) {
      throw new ClipMixError({
        message:
          "No API key: pass new ClipMix({ apiKey }) or set the CLIPMIX_API_KEY environment variable.",
        code: "missing_api_key",
      });
    }
    this.#apiKey = apiKey;
    this.baseUrl = (options.baseUrl ?? readEnv("CLIPMIX_BASE_URL") ?? DEFAULT_BASE_URL).replace(
      /\/+$/,
      "",
    );
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = Math.max(0, Math.floor(options.maxRetries ?? DEFAULT_MAX_RETRIES));
    const fetchFn = options.fetch ?? (globalThis.fetch as FetchFunction | undefined);
    if (typeof fetchFn !== "function") {
      throw new ClipMixError({
        message: "No global fetch in this runtime (Node >= 18 has one): pass { fetch }.",
        code: "missing_fetch",
      });
    }
    this.fetchFn = fetchFn;
    this.onRetry = options.onRetry;
  }

  url(path: string, query?: Query): string {
    let url = this.baseUrl + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) {
        if (value !== undefined && value !== null) params.append(name, String(value));
      }
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    return url;
  }

  /** Sends the request, retrying what is safe to retry; answers the parsed JSON body. */
  async request<T>(spec: RequestSpec): Promise<T> {
    const options = spec.options ?? {};
    const maxRetries = Math.max(0, Math.floor(options.maxRetries ?? this.maxRetries));
    const idempotencyKey =
      spec.method === "POST" ? (options.idempotencyKey ?? newIdempotencyKey()) : undefined;
    for (let retry = 0; ; retry++) {
      try {
        return await this.attempt<T>(spec, idempotencyKey);
      } catch (error) {
        if (!(error instanceof ClipMixError) || !isRetryable(error) || retry >= maxRetries) {
          throw error;
        }
        const delayMs = retryDelayMs(retry + 1, error);
        if (delayMs === undefined) throw error;
        this.onRetry?.({
          retry: retry + 1,
          delayMs,
          error,
          method: spec.method,
          path: spec.path,
          idempotencyKey,
        });
        await sleep(delayMs, options.signal);
      }
    }
  }

  /**
   * Opens a streamed GET (live progress): the response once its head is in, its body unread;
   * `undefined` for 204 No Content. An error answer throws the API's error; a failed connection
   * throws `APIConnectionError`. No retries here: the stream's caller resumes.
   */
  async open(
    path: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response | undefined> {
    let response: Response;
    try {
      response = await this.fetchFn(this.url(path), {
        method: "GET",
        headers: { ...this.headers({ method: "GET", path }, undefined), ...headers },
        signal,
      });
    } catch (error) {
      throw new APIConnectionError({
        message: `Connection error on GET ${path}: ${describeCause(error)}`,
        code: "connection_error",
        cause: error,
      });
    }
    if (response.status === 204) return undefined;
    const type = response.headers.get("content-type") ?? "";
    if (response.ok && response.body && type.startsWith("text/event-stream")) return response;
    if (response.ok) {
      // Something between us and the API answered without streaming: the caller polls.
      await response.body?.cancel().catch(() => undefined);
      throw new ClipMixError({
        message: `GET ${path} answered HTTP ${response.status} (${type || "no type"}), not an event stream.`,
        code: "not_an_event_stream",
        status: response.status,
        headers: headersRecord(response.headers),
      });
    }
    const text = await response.text().catch(() => "");
    const parsed = parseJson(text);
    const errorBody =
      parsed !== null && typeof parsed === "object" && "error" in parsed
        ? ((parsed as { error: ApiErrorBody }).error ?? undefined)
        : undefined;
    throw errorFromResponse(response.status, errorBody, headersRecord(response.headers));
  }

  private headers(spec: RequestSpec, idempotencyKey: string | undefined): Record<string, string> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#apiKey}`,
      Accept: "application/json",
    };
    // Browsers refuse or ignore a script's User-Agent; everywhere else it names the SDK.
    if (typeof (globalThis as { document?: unknown }).document === "undefined") {
      headers["User-Agent"] = `clipmix-js/${VERSION}`;
    }
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey !== undefined) headers["Idempotency-Key"] = idempotencyKey;
    return { ...headers, ...spec.headers, ...spec.options?.headers };
  }

  private async attempt<T>(spec: RequestSpec, idempotencyKey: string | undefined): Promise<T> {
    const options = spec.options ?? {};
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const controller = new AbortController();
    const userSignal = options.signal;
    if (userSignal?.aborted) throw userSignal.reason;
    const onUserAbort = () => controller.abort(userSignal?.reason);
    userSignal?.addEventListener("abort", onUserAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new TimeoutSignal()), timeoutMs);
    try {
      const init: RequestInit = {
        method: spec.method,
        headers: this.headers(spec, idempotencyKey),
        signal: controller.signal,
      };
      if (spec.body !== undefined) init.body = JSON.stringify(spec.body);
      const response = await this.fetchFn(this.url(spec.path, spec.query), init);
      // The body is read under the same deadline: a stalled answer is a timeout too.
      const text = await response.text();
      const headers = headersRecord(response.headers);
      if (response.status === 304 && spec.notModified !== undefined) {
        return spec.notModified as T;
      }
      const parsed = parseJson(text);
      if (response.ok) {
        if (parsed === INVALID) {
          throw new ClipMixError({
            message: `${spec.method} ${spec.path} answered HTTP ${response.status} with a body that is not JSON.`,
            code: "invalid_response",
            status: response.status,
            requestId: headers["request-id"],
            headers,
          });
        }
        spec.onAnswer?.(headers);
        return parsed as T;
      }
      const errorBody =
        parsed !== null && typeof parsed === "object" && "error" in parsed
          ? ((parsed as { error: ApiErrorBody }).error ?? undefined)
          : undefined;
      throw errorFromResponse(response.status, errorBody, headers);
    } catch (error) {
      if (error instanceof ClipMixError) throw error;
      if (controller.signal.aborted && controller.signal.reason instanceof TimeoutSignal) {
        throw new APITimeoutError({
          message: `No answer from ${spec.method} ${spec.path} within ${timeoutMs} ms.`,
          code: "timeout",
          cause: error,
        });
      }
      if (userSignal?.aborted) throw userSignal.reason;
      throw new APIConnectionError({
        message: `Connection error on ${spec.method} ${spec.path}: ${describeCause(error)}`,
        code: "connection_error",
        cause: error,
      });
    } finally {
      clearTimeout(timer);
      userSignal?.removeEventListener("abort", onUserAbort);
    }
  }
}

const INVALID = Symbol("invalid JSON");

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return INVALID;
  }
}
