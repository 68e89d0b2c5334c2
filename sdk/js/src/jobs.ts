import type { RequestOptions, Transport } from "./core.js";
import { sleep } from "./core.js";
import { WaitTimeoutError } from "./errors.js";
import { PageIterator } from "./pagination.js";
import { TERMINAL_STATUSES, type Job, type JobStatus, type Page, type ServiceName } from "./types.js";

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
  get: () => Promise<Job>,
  id: string,
  options: WaitOptions = {},
): Promise<Job> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const maxInterval = options.maxPollIntervalMs ?? 5_000;
  let interval = Math.min(options.pollIntervalMs ?? 500, maxInterval);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await get();
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

  /** Polls the job until it is completed, failed or canceled, and answers it. */
  wait(id: string, options: WaitOptions = {}): Promise<Job> {
    return pollUntilTerminal(() => this.get(id, options.requestOptions), id, options);
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
