import { describe, expect, it } from 'vitest';
import { createSseStream } from '../../../src/net/sse-stream.js';

const decoder = new TextDecoder();

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let out = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    out += decoder.decode(value);
  }
}

describe('createSseStream', () => {
  it('frames events and comments as text/event-stream, one data line per payload line', async () => {
    const sse = createSseStream({ maxQueuedBytes: 1024 });
    expect(sse.event('endpoint', '/messages?sessionId=abc')).toBe(true);
    expect(sse.event('message', 'a\nb')).toBe(true);
    expect(sse.comment('keep-alive\nsneaky')).toBe(true);
    sse.close();
    expect(await readAll(sse.body.getReader())).toBe(
      'event: endpoint\ndata: /messages?sessionId=abc\n\nevent: message\ndata: a\ndata: b\n\n: keep-alive sneaky\n\n',
    );
    expect(sse.isOver()).toBe(true);
  });

  it('counts unread bytes and refuses once the reader is maxQueuedBytes behind', async () => {
    const sse = createSseStream({ maxQueuedBytes: 100 });
    const event = `event: message\ndata: ${'x'.repeat(34)}\n\n`; // 56 bytes
    expect(sse.event('message', 'x'.repeat(34))).toBe(true);
    expect(sse.queuedBytes()).toBe(event.length);
    // 56 < 100: one more is accepted even though it crosses the cap (never more than cap + one event) …
    expect(sse.event('message', 'x'.repeat(34))).toBe(true);
    expect(sse.queuedBytes()).toBe(2 * event.length);
    // … and then nothing more until the reader catches up.
    expect(sse.event('message', 'x'.repeat(34))).toBe(false);
    expect(sse.comment('keep-alive')).toBe(false);
    expect(sse.queuedBytes()).toBe(2 * event.length);

    const reader = sse.body.getReader();
    await reader.read();
    expect(sse.queuedBytes()).toBe(event.length);
    expect(sse.event('message', 'y')).toBe(true);
  });

  it('delivers what is queued before closing, and refuses events after close', async () => {
    const sse = createSseStream({ maxQueuedBytes: 1024 });
    sse.event('message', '1');
    sse.close();
    expect(sse.event('message', '2')).toBe(false);
    expect(sse.isOver()).toBe(false);
    expect(await readAll(sse.body.getReader())).toBe('event: message\ndata: 1\n\n');
    expect(sse.isOver()).toBe(true);
  });

  it('abort drops the backlog and errors the reader', async () => {
    const sse = createSseStream({ maxQueuedBytes: 1024 });
    sse.event('message', 'never read');
    const reader = sse.body.getReader();
    sse.abort(new Error('too slow'));
    expect(sse.queuedBytes()).toBe(0);
    expect(sse.isOver()).toBe(true);
    await expect(reader.read()).rejects.toThrow('too slow');
    expect(sse.event('message', 'late')).toBe(false);
  });

  it('wakes a waiting reader when an event arrives', async () => {
    const sse = createSseStream({ maxQueuedBytes: 1024 });
    const reader = sse.body.getReader();
    const pending = reader.read();
    sse.event('message', 'later');
    const { value } = await pending;
    expect(decoder.decode(value)).toBe('event: message\ndata: later\n\n');
  });

  it('calls onCancel once when the reader goes away, and frees the backlog', async () => {
    let cancelled = 0;
    const sse = createSseStream({
      maxQueuedBytes: 1024,
      onCancel: () => {
        cancelled++;
      },
    });
    sse.event('message', 'unread');
    const reader = sse.body.getReader();
    await reader.cancel();
    expect(cancelled).toBe(1);
    expect(sse.queuedBytes()).toBe(0);
    expect(sse.isOver()).toBe(true);
    sse.abort(new Error('after cancel'));
    expect(cancelled).toBe(1);
  });
});
