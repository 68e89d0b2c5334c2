import type { Page } from "./types.js";

/** Fetches the page after `startingAfter` (the first page when undefined). */
export type PageFetcher<T> = (startingAfter: string | undefined) => Promise<Page<T>>;

/**
 * Every item of a list, fetching page after page (`starting_after` = the last id of the page
 * before) while `has_more`. Use it with `for await`; pages are fetched only as you iterate.
 *
 * ```ts
 * for await (const job of client.jobs.list({ limit: 50 })) console.log(job.id);
 * ```
 */
export class PageIterator<T extends { id: string }> implements AsyncIterable<T> {
  constructor(
    private readonly fetchPage: PageFetcher<T>,
    private readonly startingAfter?: string,
  ) {}

  /** Page by page instead of item by item. */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let after = this.startingAfter;
    for (;;) {
      const page = await this.fetchPage(after);
      yield page;
      const last = page.data[page.data.length - 1];
      if (!page.has_more || last === undefined) return;
      after = last.id;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) {
      yield* page.data;
    }
  }

  /** Collects the items into an array, stopping after `max` of them. */
  async toArray(max: number = Number.POSITIVE_INFINITY): Promise<T[]> {
    const items: T[] = [];
    if (max <= 0) return items;
    for await (const item of this) {
      items.push(item);
      if (items.length >= max) break;
    }
    return items;
  }
}
