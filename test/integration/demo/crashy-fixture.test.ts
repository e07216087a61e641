import { Client, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_INFO, CRASHY_SERVER, textOf, tsxStdio } from './support.js';

describe('crashy fixture server', () => {
  const clients: Client[] = [];

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));
  });

  it('echoes, then dies mid-call so the pending request fails instead of hanging', async () => {
    const client = new Client(CLIENT_INFO);
    clients.push(client);
    const { transport, stderr } = tsxStdio(CRASHY_SERVER);
    const closed = new Promise<void>((resolve) => {
      client.onclose = resolve;
    });
    await client.connect(transport);
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still alive' } }))).toBe(
      'still alive',
    );

    const failure = await client.callTool({ name: 'crash' }, { timeout: 10_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SdkError);
    expect((failure as SdkError).code).toBe(SdkErrorCode.ConnectionClosed);
    await closed;
    expect(stderr.join('')).toContain('crashing on purpose');
  });
});
