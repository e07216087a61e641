import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createHostPolicy, hostnameOfHost, normaliseHostname } from '../../src/net/host.js';

describe('host policy (DNS rebinding)', () => {
  const loopback = createHostPolicy({ publicUrl: 'http://127.0.0.1:8787', allowedHosts: [] });
  const published = createHostPolicy({ publicUrl: 'https://mcp.example.com', allowedHosts: [] });

  it('a loopback public URL answers to every loopback name, with or without a port', () => {
    for (const host of [
      '127.0.0.1:8787',
      '127.0.0.1',
      'localhost:8787',
      'LOCALHOST',
      '[::1]:8787',
      '[::1]',
    ]) {
      expect(loopback.allows(host), host).toBe(true);
    }
  });

  it('refuses a foreign name, whatever its port', () => {
    for (const host of ['evil.example.com', 'evil.example.com:8787', 'mcp.example.com', '10.0.0.5:8787']) {
      expect(loopback.allows(host), host).toBe(false);
    }
  });

  it('a public URL answers to its own hostname only (case-insensitive, port ignored), not to loopback names', () => {
    for (const host of [
      'mcp.example.com',
      'MCP.Example.COM',
      'mcp.example.com:443',
      'mcp.example.com:8787',
    ]) {
      expect(published.allows(host), host).toBe(true);
    }
    for (const host of [
      'localhost',
      '127.0.0.1:8787',
      '[::1]',
      'evil.example.com',
      'example.com',
      'x.mcp.example.com',
    ]) {
      expect(published.allows(host), host).toBe(false);
    }
  });

  it('allowedHosts adds names, normalised as a browser spells them', () => {
    const policy = createHostPolicy({
      publicUrl: 'https://mcp.example.com',
      allowedHosts: ['MCP.internal.example', '10.0.0.5', '::1'],
    });
    for (const host of ['mcp.internal.example:8787', '10.0.0.5', '[::1]:8787', '[0:0:0:0:0:0:0:1]']) {
      expect(policy.allows(host), host).toBe(true);
    }
    expect(policy.allows('localhost')).toBe(false);
    expect(policy.hostnames).toEqual(['mcp.example.com', 'mcp.internal.example', '10.0.0.5', '[::1]']);
  });

  it('compares addresses as a browser normalises them: another spelling of 127.0.0.1 is 127.0.0.1', () => {
    expect(hostnameOfHost('0x7f.1:8787')).toBe('127.0.0.1');
    expect(loopback.allows('2130706433')).toBe(true);
    expect(published.allows('2130706433')).toBe(false);
  });

  it('a wildcard bind with no public URL is reached as loopback', () => {
    const wildcard = createHostPolicy({ publicUrl: 'http://0.0.0.0:8787', allowedHosts: [] });
    expect(wildcard.allows('localhost:8787')).toBe(true);
    expect(wildcard.allows('evil.example.com:8787')).toBe(false);
    expect(createHostPolicy({ publicUrl: 'http://[::]:8787', allowedHosts: [] }).allows('[::1]')).toBe(true);
  });

  it('refuses malformed Host values rather than guessing a hostname from them', () => {
    for (const host of [
      '',
      ' ',
      'evil.example.com@localhost',
      'localhost/evil',
      'localhost:80:80',
      'localhost:abc',
      'http://localhost',
      'local host',
      'localhost\u0000',
      '[::1',
      'localhost, evil.example.com',
    ]) {
      expect(loopback.allows(host), JSON.stringify(host)).toBe(false);
    }
  });

  it('an allowedHosts entry is a bare hostname or IP address', () => {
    expect(normaliseHostname('Mcp.Example.com')).toBe('mcp.example.com');
    expect(normaliseHostname('[::1]')).toBe('[::1]');
    expect(normaliseHostname('::1')).toBe('[::1]');
    for (const entry of [
      '',
      'https://mcp.example.com',
      'mcp.example.com:443',
      'mcp.example.com/mcp',
      '*',
      '*.example.com',
      'a b',
    ]) {
      expect(normaliseHostname(entry), entry).toBeUndefined();
    }
    expect(() => createHostPolicy({ publicUrl: 'http://127.0.0.1', allowedHosts: ['*'] })).toThrow(
      RangeError,
    );
  });

  it('the configuration refuses a bad server.allowedHosts entry, naming it by path', () => {
    const parsed = configSchema.safeParse({
      server: { allowedHosts: ['mcp.example.com', 'https://mcp.example.com:443'] },
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['server.allowedHosts.1']);
    const ok = configSchema.parse({ server: { allowedHosts: ['mcp.example.com', '10.0.0.5', '[::1]'] } });
    expect(ok.server.allowedHosts).toEqual(['mcp.example.com', '10.0.0.5', '[::1]']);
    expect(configSchema.parse({}).server.allowedHosts).toEqual([]);
  });
});
