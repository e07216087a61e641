import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { type LoggedEvent, SessionEventLog, STANDALONE_STREAM } from '../../../src/bridge/event-log.js';

const note = (n: number): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/progress',
  params: { progressToken: 't', progress: n },
});
const answer = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: {} });

function recorder() {
  const seen: LoggedEvent[] = [];
  let ended = 0;
  return {
    seen,
    ended: () => ended,
    follower: { event: (event: LoggedEvent) => seen.push(event), end: () => void ended++ },
  };
}

describe('SessionEventLog', () => {
  it('replays what followed an event on its own stream, then follows it live until it is finished', () => {
    const log = new SessionEventLog();
    const first = log.store('a', note(1));
    log.store('b', note(100));
    const second = log.store('a', note(2));
    expect(log.streamOf(first)).toBe('a');

    const client = recorder();
    const stop = log.resume(first, client.follower);
    expect(typeof stop).toBe('function');
    expect(client.seen.map((event) => event.id)).toEqual([second]);

    log.store('b', note(101));
    log.store('a', note(3));
    log.store('a', answer(1), true);
    log.store('a', note(4));
    expect(client.seen.map((event) => event.message)).toEqual([note(2), note(3), answer(1)]);
    expect(client.ended()).toBe(1);
  });

  it('ends a resume of a finished stream after its replay', () => {
    const log = new SessionEventLog();
    const priming = log.store('a', {} as JSONRPCMessage);
    log.store('a', answer(1), true);
    const client = recorder();
    log.resume(priming, client.follower);
    expect(client.seen.map((event) => event.message)).toEqual([answer(1)]);
    expect(client.ended()).toBe(1);
  });

  it('lets a newer resume of a stream replace the older one, and stops following on request', () => {
    const log = new SessionEventLog();
    const priming = log.store('a', note(1));
    const older = recorder();
    const newer = recorder();
    log.resume(priming, older.follower);
    const stop = log.resume(priming, newer.follower);
    expect(older.ended()).toBe(1);
    if (typeof stop !== 'function') throw new Error(stop);
    stop();
    log.store('a', note(2));
    expect(newer.seen).toEqual([]);
    expect(newer.ended()).toBe(0);
  });

  // req: MCP-TRANSPORT-SSE-RESUME
  it('knows no id it did not issue: another log, made up, never reached, on another stream', () => {
    const log = new SessionEventLog();
    const other = new SessionEventLog();
    const mine = log.store('a', note(1));
    log.store('b', note(2));
    const theirs = other.store('a', note(1));
    const [prefix] = mine.split('.');
    expect(log.streamOf(theirs)).toBeUndefined();
    for (const id of [
      theirs,
      'made-up',
      `${prefix}.a.99`,
      `${prefix}.b.1`,
      `${prefix}.a.1.1`,
      `${prefix}.a.x`,
    ]) {
      expect(log.resume(id, recorder().follower)).toBe('last_event_id_unknown');
    }
  });

  it('keeps a bounded number of events and refuses a resume whose next events were dropped', () => {
    const log = new SessionEventLog(3);
    const ids = [1, 2, 3, 4, 5].map((n) => log.store('a', note(n)));
    expect(log.resume(ids[0] as string, recorder().follower)).toBe('events_dropped');
    // The client's own last event is gone, but nothing after it: nothing is missing.
    const client = recorder();
    expect(typeof log.resume(ids[1] as string, client.follower)).toBe('function');
    expect(client.seen.map((event) => event.id)).toEqual(ids.slice(2));
  });

  it('keeps a bounded number of bytes too, never dropping the newest event', () => {
    const size = JSON.stringify(note(1)).length;
    const log = new SessionEventLog(100, size);
    const ids = [1, 2, 3].map((n) => log.store('a', note(n)));
    expect(log.resume(ids[0] as string, recorder().follower)).toBe('events_dropped');
    const client = recorder();
    expect(typeof log.resume(ids[1] as string, client.follower)).toBe('function');
    expect(client.seen.map((event) => event.id)).toEqual([ids[2]]);
    const tiny = new SessionEventLog(100, 1);
    const only = tiny.store('b', note(9));
    const late = recorder();
    expect(typeof tiny.resume(only, late.follower)).toBe('function');
  });

  it('ends every follower when the session closes', () => {
    const log = new SessionEventLog();
    const a = recorder();
    const standalone = recorder();
    log.resume(log.store('a', note(1)), a.follower);
    log.resume(log.store(STANDALONE_STREAM, note(2)), standalone.follower);
    log.close();
    expect([a.ended(), standalone.ended()]).toEqual([1, 1]);
  });
});

describe('ExchangeEvents', () => {
  it('finishes a stream when the last request it carries is answered', async () => {
    const log = new SessionEventLog();
    const exchange = log.forExchange(false);
    const priming = await exchange.storeEvent('s1', {} as JSONRPCMessage);
    exchange.expect(1);
    exchange.expect(2);
    expect(exchange.streamId).toBe('s1');
    const client = recorder();
    log.resume(priming, client.follower);
    await exchange.storeEvent('s1', answer(2));
    expect(client.ended()).toBe(0);
    await exchange.storeEvent('s1', answer(1));
    expect(client.ended()).toBe(1);
  });

  it("puts a GET exchange's events on the session's one standalone stream, never finished", async () => {
    const log = new SessionEventLog();
    const first = await log.forExchange(true).storeEvent('_GET_stream', note(1));
    expect(log.streamOf(first)).toBe(STANDALONE_STREAM);
    const client = recorder();
    log.resume(first, client.follower);
    const second = log.forExchange(true);
    await second.storeEvent('_GET_stream', note(2));
    expect(client.seen.map((event) => event.message)).toEqual([note(2)]);
    expect(client.ended()).toBe(0);
  });
});
