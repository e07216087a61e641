import { describe, expect, it } from 'vitest';
import { type FederationConfigInput, federationConfigSchema } from '../../../src/config/federation.js';

const BASE = { clientId: 'gatehouse' } as const;

function parse(input: Partial<FederationConfigInput> & { issuer: string }) {
  return federationConfigSchema.parse({ ...BASE, ...input });
}

/** The dotted paths of every issue the schema reports for `input`. */
function issuePaths(input: Record<string, unknown>): string[] {
  const result = federationConfigSchema.safeParse(input);
  expect(result.success).toBe(false);
  return result.success ? [] : result.error.issues.map((issue) => issue.path.join('.'));
}

describe('federationConfigSchema presets', () => {
  it('generic: standard OIDC scopes with offline_access, standard claims, nothing insecure', () => {
    expect(parse({ issuer: 'https://login.example.com' })).toEqual({
      name: 'oidc',
      displayName: 'login.example.com',
      preset: 'generic',
      issuer: 'https://login.example.com',
      clientId: 'gatehouse',
      scopes: ['openid', 'email', 'profile', 'offline_access'],
      extraAuthorizationParams: {},
      claims: { subject: 'sub', email: ['email'], name: ['name'] },
      allowInsecureHttp: false,
      timeoutMs: 10_000,
    });
  });

  it('auth0: offline_access for a refresh token, the audience passed through, org_id', () => {
    const config = parse({
      preset: 'auth0',
      issuer: 'https://acme.eu.auth0.com/',
      clientSecret: 's3cret',
      audience: 'https://api.acme.example',
    });
    expect(config).toMatchObject({
      name: 'auth0',
      displayName: 'Auth0',
      issuer: 'https://acme.eu.auth0.com/',
      clientSecret: 's3cret',
      audience: 'https://api.acme.example',
      scopes: ['openid', 'email', 'profile', 'offline_access'],
      extraAuthorizationParams: {},
    });
    expect(config.claims.organization).toEqual(['org_id']);
  });

  it('workos: offline_access, org_id and roles/role', () => {
    const config = parse({ preset: 'workos', issuer: 'https://acme.authkit.app' });
    expect(config.name).toBe('workos');
    expect(config.scopes).toContain('offline_access');
    expect(config.claims).toEqual({
      subject: 'sub',
      email: ['email'],
      name: ['name'],
      organization: ['org_id'],
      roles: ['roles', 'role'],
    });
  });

  it('supabase: no offline_access (refresh tokens come anyway), roles from app_metadata then role', () => {
    const config = parse({ preset: 'supabase', issuer: 'https://abcdefgh.supabase.co/auth/v1' });
    expect(config.scopes).toEqual(['openid', 'email', 'profile']);
    expect(config.claims.roles).toEqual(['app_metadata.roles', 'role']);
    expect(config.claims.organization).toBeUndefined();
  });

  it('keycloak: name falls back to preferred_username, realm_access.roles', () => {
    const config = parse({ preset: 'keycloak', issuer: 'https://sso.example.com/realms/acme' });
    expect(config.scopes).toEqual(['openid', 'email', 'profile']);
    expect(config.claims.name).toEqual(['name', 'preferred_username']);
    expect(config.claims.roles).toEqual(['realm_access.roles']);
    expect(parse({ preset: 'keycloak', issuer: 'https://sso.example.com/auth/realms/acme' }).issuer).toBe(
      'https://sso.example.com/auth/realms/acme',
    );
  });

  it('google: access_type=offline and prompt=consent instead of offline_access; hd as organization', () => {
    const config = parse({ preset: 'google', issuer: 'https://accounts.google.com' });
    expect(config.scopes).toEqual(['openid', 'email', 'profile']);
    expect(config.extraAuthorizationParams).toEqual({ access_type: 'offline', prompt: 'consent' });
    expect(config.claims.organization).toEqual(['hd']);
    const custom = parse({
      preset: 'google',
      issuer: 'https://accounts.google.com',
      extraAuthorizationParams: { prompt: 'select_account consent', hd: 'acme.example' },
    });
    expect(custom.extraAuthorizationParams).toEqual({
      access_type: 'offline',
      prompt: 'select_account consent',
      hd: 'acme.example',
    });
  });

  it('explicit settings win over the preset, key by key', () => {
    const config = parse({
      preset: 'keycloak',
      name: 'corp-sso',
      displayName: 'Corporate SSO',
      issuer: 'https://sso.example.com/realms/acme',
      scopes: ['openid', 'email', 'email'],
      claims: { subject: 'oid', roles: 'resource_access.gatehouse.roles', email: [] },
      timeoutMs: 2_500,
    });
    expect(config).toMatchObject({ name: 'corp-sso', displayName: 'Corporate SSO', timeoutMs: 2_500 });
    expect(config.scopes).toEqual(['openid', 'email']);
    expect(config.claims).toEqual({
      subject: 'oid',
      email: [],
      name: ['name', 'preferred_username'],
      roles: ['resource_access.gatehouse.roles'],
    });
  });

  it('allows http only for a loopback issuer with allowInsecureHttp', () => {
    const config = parse({ issuer: 'http://127.0.0.1:4000', allowInsecureHttp: true });
    expect(config.allowInsecureHttp).toBe(true);
    expect(parse({ issuer: 'http://localhost:4000/oidc', allowInsecureHttp: true }).issuer).toBe(
      'http://localhost:4000/oidc',
    );
  });
});

describe('federationConfigSchema refuses', () => {
  it('a missing issuer or client id', () => {
    expect(issuePaths({})).toEqual(expect.arrayContaining(['issuer', 'clientId']));
  });

  it('an http issuer, unless allowed and on loopback', () => {
    expect(issuePaths({ ...BASE, issuer: 'http://login.example.com' })).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, issuer: 'http://login.example.com', allowInsecureHttp: true })).toEqual([
      'allowInsecureHttp',
    ]);
    expect(issuePaths({ ...BASE, issuer: 'https://login.example.com', allowInsecureHttp: true })).toEqual([
      'allowInsecureHttp',
    ]);
  });

  it('an issuer that is not a URL, or carries a query or fragment', () => {
    expect(issuePaths({ ...BASE, issuer: 'login.example.com' })).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, issuer: 'ftp://login.example.com' })).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, issuer: 'https://login.example.com/?tenant=a' })).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, issuer: 'https://login.example.com/#a' })).toEqual(['issuer']);
  });

  it('an issuer of the wrong shape for its preset', () => {
    expect(issuePaths({ ...BASE, preset: 'auth0', issuer: 'https://acme.eu.auth0.com' })).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, preset: 'supabase', issuer: 'https://abcdefgh.supabase.co' })).toEqual([
      'issuer',
    ]);
    expect(
      issuePaths({ ...BASE, preset: 'supabase', issuer: 'https://abcdefgh.supabase.co/auth/v1/' }),
    ).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, preset: 'keycloak', issuer: 'https://sso.example.com/acme' })).toEqual([
      'issuer',
    ]);
    expect(
      issuePaths({ ...BASE, preset: 'keycloak', issuer: 'https://sso.example.com/realms/acme/' }),
    ).toEqual(['issuer']);
    expect(issuePaths({ ...BASE, preset: 'google', issuer: 'https://accounts.google.com/' })).toEqual([
      'issuer',
    ]);
  });

  it('scopes without openid, malformed scopes, and offline_access for Google', () => {
    expect(issuePaths({ ...BASE, issuer: 'https://login.example.com', scopes: ['email'] })).toEqual([
      'scopes',
    ]);
    expect(issuePaths({ ...BASE, issuer: 'https://login.example.com', scopes: ['openid', 'a b'] })).toEqual([
      'scopes.1',
    ]);
    expect(
      issuePaths({
        ...BASE,
        preset: 'google',
        issuer: 'https://accounts.google.com',
        scopes: ['openid', 'offline_access'],
      }),
    ).toEqual(['scopes']);
  });

  it('extra authorization parameters that Gatehouse sets itself', () => {
    const paths = issuePaths({
      ...BASE,
      issuer: 'https://login.example.com',
      extraAuthorizationParams: {
        state: 'x',
        code_challenge_method: 'plain',
        audience: 'api',
        login_hint: 'ok',
      },
    });
    expect(paths.sort()).toEqual([
      'extraAuthorizationParams.audience',
      'extraAuthorizationParams.code_challenge_method',
      'extraAuthorizationParams.state',
    ]);
  });

  it('a reserved or malformed provider name, unknown options and a bad timeout', () => {
    const issuer = 'https://login.example.com';
    expect(issuePaths({ ...BASE, issuer, name: 'local' })).toEqual(['name']);
    expect(issuePaths({ ...BASE, issuer, name: 'Corp SSO' })).toEqual(['name']);
    expect(issuePaths({ ...BASE, issuer, preset: 'okta' })).toEqual(['preset']);
    expect(issuePaths({ ...BASE, issuer, clientSecretFile: '/run/secret' })).toEqual(['']);
    expect(issuePaths({ ...BASE, issuer, claims: { groups: 'groups' } })).toEqual(['claims']);
    expect(issuePaths({ ...BASE, issuer, timeoutMs: 0 })).toEqual(['timeoutMs']);
    expect(issuePaths({ ...BASE, issuer, clientSecret: '' })).toEqual(['clientSecret']);
  });
});
