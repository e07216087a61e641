import type { ClusterBus, ClusterMessage } from '../../src/stores/ports.js';

/**
 * Cluster buses for instances inside one test process: every bus from one hub delivers to all of them
 * (itself included) on a later tick, as the engines do. `disconnect`/`reconnect` play a dropped
 * subscription; while disconnected a bus neither receives nor may publish.
 */
export interface LocalBusHub {
  bus(): LocalBus;
}

export interface LocalBus extends ClusterBus {
  disconnect(): void;
  reconnect(): void;
  readonly published: ClusterMessage[];
}

export function createLocalBusHub(): LocalBusHub {
  const buses = new Set<LocalBus>();
  return {
    bus() {
      const listeners = new Set<(message: ClusterMessage) => void>();
      const watchers = new Set<(connected: boolean) => void>();
      let connected = true;
      const setConnected = (next: boolean) => {
        connected = next;
        for (const watcher of watchers) watcher(next);
      };
      const bus: LocalBus = {
        get connected() {
          return connected;
        },
        published: [],
        async publish(message) {
          if (!connected) throw new Error('bus disconnected');
          bus.published.push(message);
          for (const other of buses) {
            if (!other.connected) continue;
            setImmediate(() => (other as LocalBus & { deliver(m: ClusterMessage): void }).deliver(message));
          }
        },
        subscribe(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        onConnectionChange(watcher) {
          watchers.add(watcher);
          return () => watchers.delete(watcher);
        },
        disconnect: () => setConnected(false),
        reconnect: () => setConnected(true),
        async close() {
          buses.delete(bus);
          connected = false;
        },
      };
      Object.assign(bus, {
        deliver(message: ClusterMessage) {
          if (!connected) return;
          for (const listener of listeners) listener(message);
        },
      });
      buses.add(bus);
      return bus;
    },
  };
}
