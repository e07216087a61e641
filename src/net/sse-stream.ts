/** One server-sent-events response body whose unread backlog is bounded. */
export interface SseStream {
  /** The response body: `text/event-stream` bytes. */
  readonly body: ReadableStream<Uint8Array>;
  /**
   * Queues one event (with its `id`, when given, for `Last-Event-ID`). Returns `false`, queuing nothing,
   * when the reader is already `maxQueuedBytes` behind (or the stream is over): the caller then gives up
   * on the reader rather than buffer more.
   */
  event(name: string, data: string, id?: string): boolean;
  /** Queues a comment line (keep-alive); same contract as `event`. */
  comment(text: string): boolean;
  /** Bytes queued and not yet taken by the reader. */
  queuedBytes(): number;
  /** Ends the stream once the reader has taken what is queued. */
  close(): void;
  /** Ends the stream now, dropping what is queued (the reader sees an error). */
  abort(reason: Error): void;
  /** `true` once closed, aborted or cancelled by the reader. */
  isOver(): boolean;
}

export interface SseStreamOptions {
  /** Unread bytes beyond which `event` refuses; memory per stream stays under this plus one event. */
  readonly maxQueuedBytes: number;
  /** Called once when the reader cancels the body (the HTTP client went away). */
  readonly onCancel?: () => void;
}

const encoder = new TextEncoder();

/**
 * A pull-based SSE body: chunks wait in this stream's own queue until the HTTP layer reads them, which it
 * does only as fast as the socket drains, so `queuedBytes` is exactly what a slow client costs the gateway.
 *
 * @example
 * ```ts
 * const sse = createSseStream({ maxQueuedBytes: 1 << 20, onCancel: () => cleanup() });
 * sse.event('endpoint', '/messages?sessionId=abc');
 * if (!sse.event('message', JSON.stringify(message))) sse.abort(new Error('slow reader'));
 * return new Response(sse.body, { headers: { 'content-type': 'text/event-stream' } });
 * ```
 */
export function createSseStream(options: SseStreamOptions): SseStream {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let state: 'open' | 'closing' | 'over' = 'open';
  let wake: (() => void) | undefined;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;

  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      async pull(c) {
        while (queue.length === 0 && state === 'open') {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        const chunk = queue.shift();
        if (chunk !== undefined) {
          queued -= chunk.byteLength;
          c.enqueue(chunk);
          return;
        }
        if (state === 'closing') {
          state = 'over';
          c.close();
        }
      },
      cancel() {
        if (state === 'over') return;
        drop();
        options.onCancel?.();
      },
    },
    { highWaterMark: 0 },
  );

  function drop(): void {
    state = 'over';
    queue.length = 0;
    queued = 0;
    wake?.();
  }

  function push(text: string): boolean {
    if (state !== 'open' || queued >= options.maxQueuedBytes) return false;
    const chunk = encoder.encode(text);
    queue.push(chunk);
    queued += chunk.byteLength;
    wake?.();
    return true;
  }

  return {
    body,
    event(name, data, id) {
      // A data line cannot hold a line break: each line of the payload gets its own `data:` field.
      const lines = data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`);
      const idLine = id === undefined ? '' : `id: ${id.replace(/[\r\n]+/g, '')}\n`;
      return push(`event: ${name}\n${idLine}${lines.join('')}\n`);
    },
    comment(text) {
      return push(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
    },
    queuedBytes: () => queued,
    close() {
      if (state !== 'open') return;
      state = 'closing';
      wake?.();
    },
    abort(reason) {
      if (state === 'over') return;
      drop();
      try {
        controller?.error(reason);
      } catch {
        // Already closed by the reader.
      }
    },
    isOver: () => state === 'over',
  };
}
