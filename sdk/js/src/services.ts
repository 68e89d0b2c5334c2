import type { RequestOptions, Transport } from "./core.js";
import { readIfChanged, waitForJob, type WaitOptions } from "./jobs.js";
import type { Job, Quote } from "./types.js";

/** How a sandbox (sk_test_ or rk_test_) job should behave; see "Sandbox scenarios" in the API docs. */
export type SandboxScenario =
  | string
  | {
      /** Stay `processing` this many seconds (0–60), then settle. */
      delay?: number | undefined;
      /** Fail with this error code, e.g. `provider_timeout`. */
      fail?: string | undefined;
    };

/** Options of every create, next to the service's own fields. */
export interface CreateOptions {
  /** Makes the create safe to repeat: the same key answers the same job (kept 24 h). A key
   * is generated per call when you leave it out, so the SDK's own retries are safe anyway. */
  idempotencyKey?: string | undefined;
  /** Sandbox keys only: the `ClipMix-Sandbox-Scenario` header. */
  sandboxScenario?: SandboxScenario | undefined;
  /** `Prefer: wait=N`: the server holds the answer up to N seconds (0–60) until the job is
   * final. For longer jobs use `wait(id)`, which follows the job's live stream. */
  wait?: number | undefined;
  /** A quote of this input (`quote()`, `client.quotes.create`) still valid: the job is charged
   * exactly its credits (the `ClipMix-Quote-Id` header; a quote pays for one job). */
  quoteId?: string | undefined;
}

export interface MusicCreateParams extends CreateOptions {
  prompt: string;
  lyrics?: string | undefined;
  /** 5–300, default 60. */
  durationSeconds?: number | undefined;
  style?: string | undefined;
  vocals?: "none" | "female" | "male" | "duet" | undefined;
}

export interface TranslationCreateParams extends CreateOptions {
  videoUrl: string;
  /** 1–10 ISO 639-1 codes. */
  targetLanguages: string[];
  tier: "standard" | "premium";
  voiceClone?: boolean | undefined;
  sourceLanguage?: string | undefined;
  /** 1–7200; live jobs without it are measured from the video. */
  durationSeconds?: number | undefined;
}

export interface FamilyVideoCreateParams extends CreateOptions {
  photoUrls: string[];
  mode: "moment" | "story" | "album" | "chronicle";
  musicJobId?: string | undefined;
  musicUrl?: string | undefined;
  aspectRatio?: "16:9" | "9:16" | "1:1" | "4:5" | undefined;
}

export interface AvatarCreateParams extends CreateOptions {
  kind: "faceswap" | "talking_head";
  tier: "economy" | "balanced" | "premium";
  faceImageUrl: string;
  durationSeconds: number;
  /** faceswap */
  targetVideoUrl?: string | undefined;
  /** talking_head: exactly one of `script` and `audioUrl`. */
  script?: string | undefined;
  audioUrl?: string | undefined;
}

const OPTION_FIELDS = new Set(["idempotencyKey", "sandboxScenario", "wait", "quoteId"]);

/** `durationSeconds` → `duration_seconds`; names already in snake_case pass unchanged. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The wire body of a create: the service's fields in snake_case, options and undefined out. */
export function createBody(params: object): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && !OPTION_FIELDS.has(name)) body[snakeCase(name)] = value;
  }
  return body;
}

/** The `ClipMix-Sandbox-Scenario` header value. */
export function scenarioHeader(scenario: SandboxScenario): string {
  if (typeof scenario === "string") return scenario;
  const parts: string[] = [];
  if (scenario.delay !== undefined) parts.push(`delay=${scenario.delay}`);
  if (scenario.fail !== undefined) parts.push(`fail=${scenario.fail}`);
  return parts.join(", ");
}

/** One service's jobs: `client.music`, `client.translations`, … */
export class ServiceJobs<P extends CreateOptions> {
  constructor(
    private readonly transport: Transport,
    /** e.g. `/api/v1/music` */
    readonly path: string,
  ) {}

  /** Creates a job; answers it as accepted (or as it stands after `wait` seconds). */
  create(params: P, options: RequestOptions = {}): Promise<Job> {
    const headers: Record<string, string> = {};
    if (params.sandboxScenario !== undefined) {
      headers["ClipMix-Sandbox-Scenario"] = scenarioHeader(params.sandboxScenario);
    }
    if (params.quoteId !== undefined) headers["ClipMix-Quote-Id"] = params.quoteId;
    let timeoutMs = options.timeoutMs;
    if (params.wait !== undefined) {
      headers["Prefer"] = `wait=${params.wait}`;
      // The server holds the answer up to `wait` seconds: unless this call sets its own
      // deadline, the client's is stretched to outlast the wait.
      timeoutMs ??= Math.max(this.transport.timeoutMs, params.wait * 1000 + 10_000);
    }
    return this.transport.request<Job>({
      method: "POST",
      path: this.path,
      body: createBody(params),
      headers,
      options: {
        ...options,
        timeoutMs,
        idempotencyKey: params.idempotencyKey ?? options.idempotencyKey,
      },
    });
  }

  /**
   * What `create(params)` would reserve, to the credit, and how long such jobs take now
   * (`?dry_run=true`): nothing is created or charged. Cite the quote with `quoteId`.
   */
  quote(params: Omit<P, keyof CreateOptions>, options: RequestOptions = {}): Promise<Quote> {
    return this.transport.request<Quote>({
      method: "POST",
      path: this.path,
      query: { dry_run: true },
      body: createBody(params),
      options,
    });
  }

  /** A job of this service (a job of another service is 404 here; `client.jobs.get` reads
   * any). */
  get(id: string, options?: RequestOptions): Promise<Job> {
    return this.transport.request<Job>({
      method: "GET",
      path: `${this.path}/${encodeURIComponent(id)}`,
      options,
    });
  }

  /** Waits until the job is completed, failed or canceled (following its live stream, or
   * polling), and answers it. */
  wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const path = `${this.path}/${encodeURIComponent(id)}`;
    const get = (known: Job | undefined) =>
      readIfChanged(this.transport, path, known, options.requestOptions);
    return waitForJob(this.transport, get, id, options);
  }

  /** Cancels a running job (`409 job_not_cancelable` once it is final). */
  cancel(id: string, options?: RequestOptions): Promise<Job> {
    return this.transport.request<Job>({
      method: "POST",
      path: `/api/v1/jobs/${encodeURIComponent(id)}/cancel`,
      options,
    });
  }
}
