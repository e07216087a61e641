import { pageLimit } from '../list-page.js';
import type { ListPage } from '../ports.js';
import type { Script } from './context.js';
import { toList } from './replies.js';

/** Members one listing script reads at most: the batch that keeps Redis responsive between scripts. */
const LIST_BATCH = 200;

/**
 * One page of an operator's listing through the `LIST_PAGE` script over the creation index `index`: the
 * records `read` turns into live records (`undefined` for one expired at the listing's time), in
 * (`createdAt`, id) order, strictly after `page.after`, at most `page.limit`. Reads in bounded batches
 * until the page is full or the index ends, so expired records still indexed never shorten a page.
 */
export async function listPage<T>(
  script: Script,
  index: string,
  stem: string,
  storage: 'hash' | 'string',
  page: ListPage,
  read: (stored: unknown) => T | undefined,
): Promise<T[]> {
  const limit = pageLimit(page.limit);
  const found: T[] = [];
  let cursor =
    page.after === undefined ? undefined : { createdAt: String(page.after.createdAt), id: page.after.id };
  while (found.length < limit) {
    const count = Math.min(LIST_BATCH, limit - found.length);
    const batch = toList(
      await script([index], [stem, cursor?.createdAt ?? '', cursor?.id ?? '', count, storage]),
    );
    for (const item of batch) {
      const [id, createdAt, stored] = toList(item);
      cursor = { createdAt: String(createdAt), id: String(id) };
      if (stored === null || stored === undefined) continue;
      const record = read(stored);
      if (record !== undefined && found.length < limit) found.push(record);
    }
    if (batch.length < count) break;
  }
  return found;
}
