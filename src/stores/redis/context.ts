import type { Redis } from 'ioredis';
import type { KeySpace } from './keys.js';
import { storeError, unavailable } from './store-error.js';

/** One Lua script: `keys` become `KEYS`, `args` become `ARGV`. Runs through `EVALSHA` (see `defineCommand`). */
export type Script = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

/** What every port of the Redis adapter works through. */
export interface RedisContext {
  readonly keys: KeySpace;
  /**
   * Runs one command against the command client, mapping its failure through {@link storeError}. Rejects
   * with `ERR_STORE_UNAVAILABLE` once the stores are closed (also when the caller still owns the client),
   * and at once when the connection drops while the command waits for its reply: whether it ran is then
   * unknown, and ioredis would otherwise leave it waiting for the command timeout.
   */
  run<T>(command: (client: Redis) => Promise<T>): Promise<T>;
  /**
   * Defines a Lua script on the client (`defineCommand`: `EVALSHA`, falling back to `EVAL` after a server
   * restart emptied the script cache) and returns it, run as {@link RedisContext.run} runs a command.
   */
  script(name: string, lua: string): Script;
  /** Stops watching the client's connection (when the stores close). */
  detach(): void;
}

type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;

/** A context over `client`; `isClosed` tells whether the stores were closed. */
export function createRedisContext(client: Redis, keys: KeySpace, isClosed: () => boolean): RedisContext {
  const waiting = new Set<(error: unknown) => void>();
  const dropped = (): void => {
    const error = unavailable(undefined, 'The Redis connection was lost before the reply.');
    for (const fail of [...waiting]) fail(error);
  };
  client.on('close', dropped);

  const run = <T>(command: (client: Redis) => Promise<T>): Promise<T> => {
    if (isClosed()) return Promise.reject(unavailable(undefined, 'The Redis stores are closed.'));
    return new Promise<T>((resolve, reject) => {
      const fail = (error: unknown): void => {
        waiting.delete(fail);
        reject(error);
      };
      waiting.add(fail);
      let sent: Promise<T>;
      try {
        sent = command(client);
      } catch (error) {
        fail(storeError(error));
        return;
      }
      sent.then(
        (value) => {
          waiting.delete(fail);
          resolve(value);
        },
        (error: unknown) => fail(storeError(error)),
      );
    });
  };

  return {
    keys,
    run,
    script(name, lua) {
      // One name per script body: stores sharing a caller's client define the same scripts again, harmlessly.
      const command = `gatehouse_${name}`;
      client.defineCommand(command, { lua });
      return (scriptKeys, args) =>
        run((redis) => {
          const call = (redis as unknown as Record<string, ScriptCommand>)[command];
          if (call === undefined) throw new Error(`The script ${command} is not defined on this client.`);
          return call.call(redis, scriptKeys.length, ...scriptKeys, ...args);
        });
    },
    detach() {
      client.off('close', dropped);
    },
  };
}
