import type { RequestOptions, Transport } from "./core.js";
import { sleep } from "./core.js";
import {
  APIConnectionError,
  APIServerError,
  APITimeoutError,
  ClipMixError,
  RateLimitedError,
  WaitTimeoutError,
} from "./errors.js";
import { PageIterator } from "./pagination.js";
import { streamJob, type JobStreamOptions } from "./stream.js";
import {
  TERMINAL_STATUSES,
  type Job,
  type JobStatus,
  type JobStreamEvent,
  type Page,
  type ServiceName,
} from "./types.js";

export interface WaitOptions {
  /** Give up after this long (default 600,000 ms = 10 min) with a `WaitTimeoutError`. */
  timeoutMs?: number | undefined;
  /** First pause between polls (default 500 ms); it grows 1.5× per poll … */
  pollIntervalMs?: number | undefined;
  /** … up to this (default 5,000 ms). */
  maxPollIntervalMs?: number | undefined;
  /** Stops waiting (the promise rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
  /** Options for each GET. */
  requestOptions?: RequestOptions | undefined;
  /** Follow the job's live progress stream (default true); polls when it is refused (e.g.
   * 429 `too_many_job_streams`) or with `false`. */
  stream?: boolean | undefined;
  /** Sees every state of the job read (streamed or polled; a poll answered 304 is none). */
  onUpdate?: ((job: Job) => void) | undefined;
  /** Sees every live progress event (queue positions and delivered languages included). */
  onEvent?: ((event: JobStreamEvent) => void) | undefined;
}

export interface JobListParams {
  /** Jobs per page, 1–100 (the API's default is 10). */
  limit?: number | undefined;
  /** Start after this job id (the list is newest first). */
  startingAfter?: string | undefined;
  service?: ServiceName | undefined;
  status?: JobStatus | undefined;
  /** Created at or after this time (inclusive). */
  createdGte?: Date | string | undefined;
  /** Created at or before this time (inclusive). */
  createdLte?: Date | string | undefined;
}

/** True once the job can no longer change: completed, failed or canceled. */
export function isTerminal(job: Pick<Job, "status">): boolean {
  return TERMINAL_STATUSES.includes(job.status);
}

function rfc3339(value: Date | string | undefined): string | undefined {
  return value instanceof Date ? value.toISOString() : value;
}

/**
 * Polls `get` until the job is final. Pauses grow from `pollIntervalMs` by 1.5× up to
 * `maxPollIntervalMs`, never past the deadline.
 */
export async function pollUntilTerminal(
  get: (known: Job | undefined) => Promise<Job>,
  id: string,
  options: WaitOptions = {},
): Promise<Job> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const maxInterval = options.maxPollIntervalMs ?? 5_000;
  let interval = Math.min(options.pollIntervalMs ?? 500, maxInterval);
  const deadline = Date.now() + timeoutMs;
  let job: Job | undefined;
  for (;;) {
    const read = await get(job);
    if (read !== job) options.onUpdate?.(read);
    job = read;
    if (isTerminal(job)) return job;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new WaitTimeoutError(
        `Job ${id} is still ${job.status} after ${timeoutMs} ms of waiting.`,
        job,
      );
    }
    await sleep(Math.min(interval, left), options.signal);
    interval = Math.min(interval * 1.5, maxInterval);
  }
}

// The ETag each job read came with (a job is plain JSON: its answer's headers are kept here).
const etags = new WeakMap<Job, string>();

/**
 * Reads the job at `path`, sending the ETag of `known` (`If-None-Match`): while the job has not
 * changed the API answers `304` without a body, and `known` itself is answered.
 */
export async function readIfChanged(
  transport: Transport,
  path: string,
  known: Job | undefined,
  options?: RequestOptions,
): Promise<Job> {
  const etag = known === undefined ? undefined : etags.get(known);
  let seen: string | undefined;
  const job = await transport.request<Job>({
    method: "GET",
    path,
    options,
    headers: etag === undefined ? undefined : { "If-None-Match": etag },
    notModified: etag === undefined ? undefined : known,
    onAnswer: (headers) => {
      seen = headers["etag"];
    },
  });
  if (seen !== undefined && job !== known) etags.set(job, seen);
  return job;
}

function isFallback(error: unknown): boolean {
  return (
    error instanceof RateLimitedError ||
    error instanceof APIServerError ||
    error instanceof APIConnectionError ||
    error instanceof APITimeoutError ||
    (error instanceof ClipMixError && error.code === "not_an_event_stream")
  );
}

/**
 * Waits for the job to settle following its live stream; when the stream is refused or fails
 * (or `stream: false`), polls `get` until the deadline.
 */
export async function waitForJob(
  transport: Transport,
  get: (known: Job | undefined) => Promise<Job>,
  id: string,
  options: WaitOptions = {},
): Promise<Job> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const started = Date.now();
  if (options.stream ?? true) {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new WaitTimeoutSignal()), timeoutMs);
    const user = options.signal;
    const onUserAbort = () => deadline.abort(user?.reason);
    user?.addEventListener("abort", onUserAbort, { once: true });
    try {
      for await (const event of streamJob(transport, id, { signal: deadline.signal })) {
        options.onEvent?.(event);
        if (!("job" in event)) continue;
        options.onUpdate?.(event.job);
        if (isTerminal(event.job)) return event.job;
      }
    } catch (error) {
      if (user?.aborted) throw user.reason;
      if (!(deadline.signal.reason instanceof WaitTimeoutSignal) && !isFallback(error)) throw error;
    } finally {
      clearTimeout(timer);
      user?.removeEventListener("abort", onUserAbort);
    }
  }
  const left = Math.max(0, timeoutMs - (Date.now() - started));
  return pollUntilTerminal(get, id, { ...options, timeoutMs: left });
}

class WaitTimeoutSignal extends Error {}

/** `client.jobs`: every service's jobs. */
export class Jobs {
  constructor(private readonly transport: Transport) {}

  /** A job of any service. */
  get(id: string, options?: RequestOptions): Promise<Job> {
    return this.transport.request<Job>({
      method: "GET",
      path: `/api/v1/jobs/${encodeURIComponent(id)}`,
      options,
    });
  }

  /** One page of jobs, newest first. */
  listPage(params: JobListParams = {}, options?: RequestOptions): Promise<Page<Job>> {
    return this.transport.request<Page<Job>>({
      method: "GET",
      path: "/api/v1/jobs",
      query: {
        limit: params.limit,
        starting_after: params.startingAfter,
        service: params.service,
        status: params.status,
        "created[gte]": rfc3339(params.createdGte),
        "created[lte]": rfc3339(params.createdLte),
      },
      options,
    });
  }

  /** Every job matching `params`, newest first, fetched page by page as you iterate. */
  list(params: JobListParams = {}, options?: RequestOptions): PageIterator<Job> {
    return new PageIterator<Job>(
      (startingAfter) => this.listPage({ ...params, startingAfter }, options),
      params.startingAfter,
    );
  }

  /** Waits until the job is completed, failed or canceled (following its live stream, or
   * polling), and answers it. */
  wait(id: string, options: WaitOptions = {}): Promise<Job> {
    const path = `/api/v1/jobs/${encodeURIComponent(id)}`;
    const get = (known: Job | undefined) =>
      readIfChanged(this.transport, path, known, options.requestOptions);
    return waitForJob(this.transport, get, id, options);
  }

  /**
   * The job's live progress (`GET /api/v1/jobs/{id}/events`): every event so far, then each as
   * it happens, until the final one (`job.completed`, `job.failed`, `job.canceled`). A dropped
   * or quiet connection is resumed with `Last-Event-ID`, so nothing is missed or repeated.
   *
   * ```ts
   * for await (const event of client.jobs.stream(job.id)) {
   *   if (event.type === "job.language_completed") publish(event.language);
   * }
   * ```
   */
  stream(id: string, options: JobStreamOptions = {}): AsyncGenerator<JobStreamEvent, void, undefined> {
    return streamJob(this.transport, id, options);
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
