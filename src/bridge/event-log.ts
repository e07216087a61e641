import { randomBytes } from 'node:crypto';
import {
  type EventId,
  type EventStore,
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type RequestId,
  type StreamId,
} from '@modelcontextprotocol/server';

/** The session's standalone (GET) stream, whichever HTTP exchange carried it. */
export const STANDALONE_STREAM = 'standalone';

/** How many events one session keeps for clients that reconnect; older ones are dropped first. */
export const DEFAULT_MAX_EVENTS = 500;
/** How many bytes of events one session keeps (tool results can be large); older ones are dropped first. */
export const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

export interface LoggedEvent {
  readonly id: EventId;
  readonly message: JSONRPCMessage;
}

/** A resumed client stream: what is stored for its stream after the replay, then `end` once. */
export interface EventFollower {
  event(event: LoggedEvent): void;
  /** The stream's requests are all answered, or the stream was interrupted: the client reconnects. */
  end(): void;
}

/** Why a `Last-Event-ID` cannot be resumed: never issued by this session, or events after it were dropped. */
export type ResumeRefusal = 'last_event_id_unknown' | 'events_dropped';

interface StoredEvent extends LoggedEvent {
  readonly seq: number;
  readonly streamId: StreamId;
  /** Its message's serialized length, what keeping it costs. */
  readonly bytes: number;
}

/**
 * The events a 2025-era session sent its client on its SSE streams, kept in memory so a client that
 * reconnects with `Last-Event-ID` (SEP-1699 polling, or a dropped connection) gets what it missed and then
 * what follows, until the stream's requests are answered. One log per session, dropped with it.
 *
 * Event ids are `<log>.<stream>.<seq>`: the stream is read from the id itself, and the log's random part
 * makes an id from another session (or a made-up one) unknown here rather than a lookup elsewhere.
 */
export class SessionEventLog {
  private readonly prefix = randomBytes(12).toString('base64url');
  private readonly events: StoredEvent[] = [];
  private seq = 0;
  private bytes = 0;
  /** Events kept per stream, so a stream's bookkeeping goes when its last event does. */
  private readonly counts = new Map<StreamId, number>();
  /** Streams whose requests are all answered: a resume ends after the replay. */
  private readonly finished = new Set<StreamId>();
  private readonly followers = new Map<StreamId, EventFollower>();

  constructor(
    private readonly maxEvents = DEFAULT_MAX_EVENTS,
    private readonly maxBytes = DEFAULT_MAX_BYTES,
  ) {}

  /** An `EventStore` for one client HTTP exchange (a POST's stream, or a standalone GET's). */
  forExchange(standalone: boolean): ExchangeEvents {
    return new ExchangeEvents(this, standalone);
  }

  /** Stores one event; `final` when it answers the last open request of its stream. */
  store(streamId: StreamId, message: JSONRPCMessage, final = false): EventId {
    const seq = ++this.seq;
    const bytes = JSON.stringify(message).length;
    const event: StoredEvent = { id: `${this.prefix}.${streamId}.${seq}`, seq, streamId, message, bytes };
    this.events.push(event);
    this.bytes += bytes;
    this.counts.set(streamId, (this.counts.get(streamId) ?? 0) + 1);
    // The newest event always stays: a client that reconnects at once still gets it.
    while (this.events.length > 1 && (this.events.length > this.maxEvents || this.bytes > this.maxBytes)) {
      this.dropOldest();
    }
    if (final) this.finished.add(streamId);
    const follower = this.followers.get(streamId);
    if (follower !== undefined) {
      follower.event(event);
      if (final) this.interrupt(streamId);
    }
    return event.id;
  }

  /** The stream an event id of this log belongs to, or `undefined` for one it never issued. */
  streamOf(eventId: EventId): StreamId | undefined {
    return this.parse(eventId)?.streamId;
  }

  /**
   * Replays to `follower` the events of `lastEventId`'s stream stored after it, then follows the stream
   * live until its requests are answered. One follower per stream: a newer resume replaces an older one
   * (whose client evidently lost it). Returns a function that stops following, or why it cannot resume.
   */
  resume(lastEventId: EventId, follower: EventFollower): (() => void) | ResumeRefusal {
    const after = this.after(lastEventId);
    if (typeof after === 'string') return after;
    const { streamId, events } = after;
    this.interrupt(streamId);
    for (const event of events) follower.event(event);
    if (this.finished.has(streamId)) {
      follower.end();
      return () => {};
    }
    this.followers.set(streamId, follower);
    return () => {
      if (this.followers.get(streamId) === follower) this.followers.delete(streamId);
    };
  }

  /** Ends the stream's follower, if any, without finishing the stream. */
  interrupt(streamId: StreamId): void {
    const follower = this.followers.get(streamId);
    if (follower === undefined) return;
    this.followers.delete(streamId);
    follower.end();
  }

  /** Ends every follower and forgets every event: the session is over. */
  close(): void {
    for (const streamId of [...this.followers.keys()]) this.interrupt(streamId);
    this.events.length = 0;
    this.counts.clear();
    this.finished.clear();
  }

  /** The stream of `lastEventId` and its events stored after it, or why there is no such thing. */
  after(lastEventId: EventId): { streamId: StreamId; events: LoggedEvent[] } | ResumeRefusal {
    const parsed = this.parse(lastEventId);
    if (parsed === undefined) return 'last_event_id_unknown';
    const first = this.events[0]?.seq ?? this.seq + 1;
    // Something after the client's last event is gone: replaying the rest would hide the gap.
    if (parsed.seq + 1 < first) return 'events_dropped';
    const own = this.events[parsed.seq - first];
    if (own !== undefined && own.streamId !== parsed.streamId) return 'last_event_id_unknown';
    const events = this.events.filter(
      (event) => event.seq > parsed.seq && event.streamId === parsed.streamId,
    );
    return { streamId: parsed.streamId, events };
  }

  private parse(eventId: EventId): { streamId: StreamId; seq: number } | undefined {
    const [prefix, streamId, seq, ...rest] = eventId.split('.');
    if (prefix !== this.prefix || streamId === undefined || seq === undefined || rest.length > 0) {
      return undefined;
    }
    const number = Number(seq);
    if (!Number.isSafeInteger(number) || number < 1 || number > this.seq) return undefined;
    return { streamId, seq: number };
  }

  private dropOldest(): void {
    const dropped = this.events.shift();
    if (dropped === undefined) return;
    this.bytes -= dropped.bytes;
    const left = (this.counts.get(dropped.streamId) ?? 1) - 1;
    if (left > 0) {
      this.counts.set(dropped.streamId, left);
      return;
    }
    this.counts.delete(dropped.streamId);
    this.finished.delete(dropped.streamId);
  }
}

/**
 * The session log as one exchange's SDK transport sees it. It maps the SDK's per-transport standalone
 * stream onto the session's one, and knows which requests the exchange carries, so the event answering
 * the last of them marks the stream finished.
 */
export class ExchangeEvents implements EventStore {
  /** The stream this exchange's client holds event ids of, once one was stored (it can resume). */
  streamId: StreamId | undefined;
  /** The stream opened with a priming event (SEP-1699): its client expects it may end before its answer. */
  primed = false;
  private readonly awaiting = new Set<RequestId>();

  constructor(
    private readonly log: SessionEventLog,
    private readonly standalone: boolean,
  ) {}

  /** A request of the client that this exchange's stream answers. */
  expect(requestId: RequestId): void {
    this.awaiting.add(requestId);
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const stream = this.standalone ? STANDALONE_STREAM : streamId;
    // The SDK stores its priming event as an empty message, before anything else of the stream.
    if (this.streamId === undefined && Object.keys(message).length === 0) this.primed = true;
    this.streamId = stream;
    let final = false;
    if (!this.standalone && (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message))) {
      if (message.id !== undefined) this.awaiting.delete(message.id);
      final = this.awaiting.size === 0;
    }
    return this.log.store(stream, message, final);
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.log.streamOf(eventId);
  }

  /** The SDK's own replay (the relay serves resuming GETs itself, following the stream live). */
  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const after = this.log.after(lastEventId);
    if (typeof after === 'string') throw new Error(after);
    for (const event of after.events) await send(event.id, event.message);
    return after.streamId;
  }
}
