import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type ClientOptions, type Progress } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as V1StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  answerElicitation,
  CLIENT_INFO,
  collectLogs,
  errorCodeOf,
  LOG_LEVEL_META_KEY,
  MODERN,
  REPO_ROOT,
  STDIO_MAIN,
  textOf,
  tsxStdio,
} from './support.js';

const ALICE = {
  GATEHOUSE_USER_ID: 'user-alice',
  GATEHOUSE_USER_EMAIL: 'alice@example.com',
  GATEHOUSE_SCOPES: 'notes:read notes:write',
  GATEHOUSE_ISSUER: 'https://gatehouse.test',
  GATEHOUSE_SESSION_ID: 'sess-alice-1',
};
const BOB = {
  GATEHOUSE_USER_ID: 'user-bob',
  GATEHOUSE_USER_EMAIL: 'bob@example.com',
  GATEHOUSE_SCOPES: 'notes:read',
};

type Era = 'legacy' | 'modern';

/**
 * The SDK client dispatches notifications a microtask late but settles responses at once, so a
 * progress notification read in the same chunk as the result is dropped as "unknown token". Every
 * step but the last is paced apart from the result, so all but the last must have arrived, in order.
 */
function expectProgressPrefix(progress: Progress[], to: number): void {
  const expected = Array.from({ length: to }, (_, index) => [index + 1, to]);
  expect(progress.length).toBeGreaterThanOrEqual(to - 1);
  expect(progress.map((update) => [update.progress, update.total])).toEqual(
    expected.slice(0, progress.length),
  );
}

describe('demo notes server over stdio', () => {
  const clients: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));
  });

  async function connect(env: Record<string, string>, options: { era?: Era; elicitation?: boolean } = {}) {
    const clientOptions: ClientOptions = {
      ...(options.era === 'modern' && MODERN),
      ...(options.elicitation === true && { capabilities: { elicitation: { form: {} } } }),
    };
    const client = new Client(CLIENT_INFO, clientOptions);
    const { transport, stderr } = tsxStdio(STDIO_MAIN, env);
    clients.push(client);
    try {
      await client.connect(transport);
    } catch (error) {
      throw new Error(`connect failed; child stderr:\n${stderr.join('')}`, { cause: error });
    }
    expect(client.getProtocolEra()).toBe(options.era ?? 'legacy');
    return client;
  }

  describe.each<Era>(['legacy', 'modern'])('%s era', (era) => {
    it('reports the identity from the environment', async () => {
      const alice = await connect(ALICE, { era });
      const result = await alice.callTool({ name: 'whoami' });
      expect(JSON.parse(textOf(result))).toEqual({
        userId: 'user-alice',
        email: 'alice@example.com',
        scopes: ['notes:read', 'notes:write'],
        issuer: 'https://gatehouse.test',
        sessionId: 'sess-alice-1',
        pid: expect.any(Number),
      });
    });

    it("adds and lists the caller's notes, and another user's child sees none of them", async () => {
      const alice = await connect(ALICE, { era });
      expect(textOf(await alice.callTool({ name: 'notes_add', arguments: { text: 'alice secret' } }))).toBe(
        '1',
      );
      expect(textOf(await alice.callTool({ name: 'notes_add', arguments: { text: 'alice second' } }))).toBe(
        '2',
      );
      const aliceList = await alice.callTool({ name: 'notes_list' });
      expect(aliceList.structuredContent).toEqual({ notes: ['alice secret', 'alice second'] });

      const bob = await connect(BOB, { era });
      const bobList = await bob.callTool({ name: 'notes_list' });
      expect(bobList.structuredContent).toEqual({ notes: [] });
      expect(textOf(bobList)).not.toContain('alice');
    });

    it('rejects a note outside 1..2000 characters', async () => {
      const alice = await connect(ALICE, { era });
      const empty = await alice.callTool({ name: 'notes_add', arguments: { text: '' } });
      const huge = await alice.callTool({ name: 'notes_add', arguments: { text: 'x'.repeat(2001) } });
      expect(empty.isError).toBe(true);
      expect(huge.isError).toBe(true);
      expect((await alice.callTool({ name: 'notes_list' })).structuredContent).toEqual({ notes: [] });
    });

    it('sends progress and log notifications for every step of count_slowly', async () => {
      const alice = await connect(ALICE, { era });
      const logs = collectLogs(alice);
      const progress: Progress[] = [];
      const result = await alice.callTool(
        // On 2026-07-28 a request gets log notifications only if its envelope names a level.
        { name: 'count_slowly', arguments: { to: 4, delayMs: 20 }, _meta: { [LOG_LEVEL_META_KEY]: 'debug' } },
        { onprogress: (update) => progress.push(update) },
      );
      expect(textOf(result)).toBe('counted to 4');
      expectProgressPrefix(progress, 4);
      await expect
        .poll(() => logs.map((log) => log.data))
        .toEqual([1, 2, 3, 4].map((step) => ({ step, of: 4 })));
      expect(logs.every((log) => log.level === 'info' && log.logger === 'count_slowly')).toBe(true);
    });

    it('asks the client for a name through elicitation', async () => {
      const alice = await connect(ALICE, { era, elicitation: true });
      const asked = answerElicitation(alice, { action: 'accept', content: { name: 'Alice' } });
      expect(textOf(await alice.callTool({ name: 'ask_name' }))).toBe('hello Alice');
      expect(asked).toEqual(['What is your name?']);
    });

    it('reports a declined elicitation', async () => {
      const alice = await connect(ALICE, { era, elicitation: true });
      answerElicitation(alice, { action: 'decline' });
      const result = await alice.callTool({ name: 'ask_name' });
      expect(result.isError).not.toBe(true);
      expect(textOf(result)).toBe('declined');
    });

    it('refuses ask_name when the client did not declare elicitation', async () => {
      const alice = await connect(ALICE, { era });
      expect(errorCodeOf(await alice.callTool({ name: 'ask_name' }))).toBe('elicitation_unsupported');
    });

    it('refuses every tool for a child started without a user', async () => {
      const nobody = await connect({ GATEHOUSE_USER_EMAIL: 'ghost@example.com' }, { era, elicitation: true });
      answerElicitation(nobody, { action: 'accept', content: { name: 'Ghost' } });
      const calls = [
        { name: 'whoami' },
        { name: 'notes_add', arguments: { text: 'hello' } },
        { name: 'notes_list' },
        { name: 'count_slowly', arguments: { to: 1 } },
        { name: 'ask_name' },
      ];
      for (const call of calls) {
        expect(errorCodeOf(await nobody.callTool(call)), call.name).toBe('anonymous');
      }
    });
  });

  it('lists the five tools with their input schemas', async () => {
    const alice = await connect(ALICE);
    const { tools } = await alice.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([
      'ask_name',
      'count_slowly',
      'notes_add',
      'notes_list',
      'whoami',
    ]);
    const add = tools.find((tool) => tool.name === 'notes_add');
    expect(add?.inputSchema.properties).toMatchObject({
      text: { type: 'string', minLength: 1, maxLength: 2000 },
    });
  });

  it('serves a v1 SDK client', async () => {
    const client = new V1Client(CLIENT_INFO);
    const transport = new V1StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', STDIO_MAIN],
      env: { PATH: process.env.PATH ?? '', ...BOB },
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    clients.push(client);
    await client.connect(transport);
    const added = await client.callTool({ name: 'notes_add', arguments: { text: 'from v1' } });
    expect(added.content).toEqual([{ type: 'text', text: '1' }]);
    const whoami = await client.callTool({ name: 'whoami' });
    expect(whoami.content).toMatchObject([
      { type: 'text', text: expect.stringContaining('"userId":"user-bob"') },
    ]);
  });

  describe('with GATEHOUSE_DEMO_NOTES_DIR', () => {
    let directory: string;

    beforeEach(async () => {
      directory = await mkdtemp(join(tmpdir(), 'gatehouse-demo-notes-'));
    });

    afterEach(async () => {
      await rm(directory, { recursive: true, force: true });
    });

    it("keeps a user's notes across sessions and never shows them to another user", async () => {
      const first = await connect({ ...ALICE, GATEHOUSE_DEMO_NOTES_DIR: directory });
      await first.callTool({ name: 'notes_add', arguments: { text: 'remember me' } });
      await first.close();

      const bob = await connect({ ...BOB, GATEHOUSE_DEMO_NOTES_DIR: directory });
      expect((await bob.callTool({ name: 'notes_list' })).structuredContent).toEqual({ notes: [] });
      await bob.callTool({ name: 'notes_add', arguments: { text: 'bob only' } });

      const second = await connect({ ...ALICE, GATEHOUSE_DEMO_NOTES_DIR: directory }, { era: 'modern' });
      expect((await second.callTool({ name: 'notes_list' })).structuredContent).toEqual({
        notes: ['remember me'],
      });

      const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
      expect((await readdir(directory)).sort()).toEqual(
        [`${sha256('user-alice')}.jsonl`, `${sha256('user-bob')}.jsonl`].sort(),
      );
      const aliceFile = await readFile(join(directory, `${sha256('user-alice')}.jsonl`), 'utf8');
      expect(aliceFile).toContain('remember me');
      expect(aliceFile).not.toContain('bob only');
    });
  });
});
