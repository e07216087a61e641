import { describe, expect, it, vi } from 'vitest';
import { ResumedStream } from '../../../src/bridge/session-relay.js';

const note = (n: number) => ({
  jsonrpc: '2.0' as const,
  method: 'notifications/message',
  params: { data: 'x'.repeat(40), n },
});

async function readAll(response: Response): Promise<string> {
  return await response.text();
}

describe('ResumedStream', () => {
  it('ends, after what is queued, a follow whose client has stopped reading', async () => {
    const stream = new ResumedStream(300);
    const stop = vi.fn();
    stream.following(stop);
    for (let n = 1; n <= 10; n++) stream.event({ id: `log.s.${n}`, message: note(n) });
    expect(stop).toHaveBeenCalledTimes(1);
    const text = await readAll(stream.response());
    const ids = [...text.matchAll(/^id: (.+)$/gm)].map((match) => match[1]);
    // Events up to the one that crossed the bound, in order, and none after it.
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThan(10);
    expect(ids).toEqual(ids.map((_, i) => `log.s.${i + 1}`));
  });

  it('keeps following a client that reads', async () => {
    const stream = new ResumedStream(300);
    const stop = vi.fn();
    stream.following(stop);
    const reader = (stream.response().body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    for (let n = 1; n <= 10; n++) {
      stream.event({ id: `log.s.${n}`, message: note(n) });
      expect(decoder.decode((await reader.read()).value)).toContain(`id: log.s.${n}\n`);
    }
    expect(stop).not.toHaveBeenCalled();
    stream.end();
    expect((await reader.read()).done).toBe(true);
  });
});
