import { fileURLToPath } from 'node:url';
import type { CallToolResult, Client, LoggingMessageNotification } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const STDIO_MAIN = fileURLToPath(new URL('../../../src/demo/stdio-main.ts', import.meta.url));
export const CRASHY_SERVER = fileURLToPath(new URL('../../fixtures/crashy-server.ts', import.meta.url));

export const CLIENT_INFO = { name: 'demo-test-client', version: '1.0.0' } as const;

/** The 2026-07-28 revision: pinning it makes `connect()` probe `server/discover` and never fall back. */
export const MODERN = { versionNegotiation: { mode: { pin: '2026-07-28' } } } as const;

/** `_meta` key through which a 2026-07-28 request asks for log notifications (absent means none). */
export const LOG_LEVEL_META_KEY = 'io.modelcontextprotocol/logLevel';

/**
 * Spawns `script` with tsx under exactly `env` (nothing inherited but PATH), collecting its stderr
 * so a failing test can show what the child said.
 */
export function tsxStdio(script: string, env: Record<string, string> = {}) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', script],
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd: REPO_ROOT,
    stderr: 'pipe',
  });
  const stderr: string[] = [];
  transport.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  return { transport, stderr };
}

export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`expected a text result, got ${JSON.stringify(result)}`);
  return first.text;
}

export function errorCodeOf(result: CallToolResult): unknown {
  return result.isError === true
    ? (result.structuredContent as { error?: unknown } | undefined)?.error
    : undefined;
}

/** Collects every `notifications/message` the client receives. */
export function collectLogs(client: Client): LoggingMessageNotification['params'][] {
  const logs: LoggingMessageNotification['params'][] = [];
  client.setNotificationHandler('notifications/message', (notification) => {
    logs.push(notification.params);
  });
  return logs;
}

/** Answers every form elicitation with `answer` and records the messages it was asked. */
export function answerElicitation(
  client: Client,
  answer: { action: 'accept'; content: Record<string, string> } | { action: 'decline' | 'cancel' },
): string[] {
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params.message);
    return answer;
  });
  return asked;
}
