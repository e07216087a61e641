import type { RateLimiter, RateLimiterOptions, Stores } from '../stores/ports.js';
import { errorType, markFailed, SpanKind, type Tracing } from './tracing.js';

/** The `db.system` value of each store kind (OpenTelemetry's well-known names where there is one). */
const DB_SYSTEMS: Readonly<Record<string, string>> = {
  postgres: 'postgresql',
  sqlite: 'sqlite',
  redis: 'redis',
};

/**
 * `stores` with one client span per port method call, named `store <port>.<method>` (`store
 * sessions.open`), with `db.system` the store's engine, for calls made inside a recorded span (a request's);
 * background calls with no trace around them (the sweeper, revocation polls) are not recorded. Arguments and results are never recorded: they
 * hold token hashes, codes and sealed secrets. Ports added later are traced too: every object-valued
 * member of `stores` is wrapped. The bus is not (its messages are hints, not store work). With tracing
 * off, `stores` itself is returned.
 */
export function traceStores(stores: Stores, tracing: Tracing): Stores {
  if (!tracing.enabled) return stores;
  const system = DB_SYSTEMS[stores.kind] ?? stores.kind;
  const ports = new Map<PropertyKey, unknown>();

  function traced<A extends unknown[], R>(target: object, name: string, method: (...args: A) => R) {
    const spanName = `store ${name}`;
    const attributes = { 'db.system': system, 'db.operation.name': name };
    return (...args: A): R => {
      // Only inside a recorded trace: background work (sweeps, polls) would otherwise start a trace per call.
      if (!tracing.activeSpan().isRecording()) return method.apply(target, args);
      const span = tracing.startSpan(spanName, { kind: SpanKind.CLIENT, attributes });
      let result: R;
      try {
        result = tracing.withSpan(span, () => method.apply(target, args));
      } catch (error) {
        markFailed(span, errorType(error));
        span.end();
        throw error;
      }
      if (!isThenable(result)) {
        span.end();
        return result;
      }
      return result.then(
        (value) => {
          span.end();
          return value;
        },
        (error: unknown) => {
          markFailed(span, errorType(error));
          span.end();
          throw error;
        },
      ) as R;
    };
  }

  function tracePort<T extends object>(port: T, portName: string): T {
    const methods = new Map<PropertyKey, unknown>();
    return new Proxy(port, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        let wrapped = methods.get(property);
        if (wrapped === undefined) {
          wrapped = traced(target, `${portName}.${property}`, value as (...args: unknown[]) => unknown);
          methods.set(property, wrapped);
        }
        return wrapped;
      },
    });
  }

  const rateLimiter = (options: RateLimiterOptions): RateLimiter =>
    tracePort(stores.rateLimiter(options), 'rateLimiter');

  return new Proxy(stores, {
    get(target, property, receiver) {
      if (property === 'rateLimiter') return rateLimiter;
      const value = Reflect.get(target, property, receiver);
      if (property === 'bus' || typeof property !== 'string' || typeof value !== 'object' || value === null) {
        return value;
      }
      let port = ports.get(property);
      if (port === undefined) {
        port = tracePort(value, property);
        ports.set(property, port);
      }
      return port;
    },
  });
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}
