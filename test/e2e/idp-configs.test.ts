import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FederationConfig } from '../../src/config/federation.js';
import { loadConfig } from '../../src/config/load.js';
import type { GatehouseConfig } from '../../src/config/schema.js';
import { createSealer } from '../../src/crypto/seal.js';
import { skewCheck } from '../../src/doctor/http.js';
import { hs256Check } from '../../src/doctor/shared-secrets.js';
import { tokenCheck } from '../../src/doctor/token.js';
import { GatehouseError } from '../../src/errors/gatehouse-error.js';
import { OAuthError } from '../../src/errors/oauth-error.js';
import { createFederation, discoverIdentityProvider } from '../../src/identity/oidc.js';
import type { Principal } from '../../src/identity/principal.js';
import { systemClock } from '../../src/ops/clock.js';
import { silentLogger } from '../../src/ops/logger.js';
import { createMemoryStores } from '../../src/stores/memory/index.js';
import type { PrincipalSnapshot } from '../../src/stores/ports.js';
import { gatewayVerifiers } from '../../src/tokens/build-verifier.js';
import { createVerificationCache } from '../../src/tokens/cache.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startOidcStandIn, startTokenIssuer, type TokenIssuer } from '../helpers/idp-stand-ins.js';
import { text } from '../helpers/mcp.js';
import { loginAtIdp } from '../helpers/oidc-provider.js';

/*
 * Every configuration block of docs/identity-providers.md, tested: loaded through the real config loader,
 * then run against a stand-in for its provider. Federated sign-in meets a real OpenID provider with the
 * provider's issuer shape and claims; resource-server mode meets tokens of the provider's shape, signed by
 * a local key whose JWKS replaces the provider's URL. The "Common mistakes" table is checked against what
 * the code really says.
 */

const PAGE = readFileSync(join(import.meta.dirname, '../../docs/identity-providers.md'), 'utf8');
const README = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');

/** The fenced blocks marked ```json idp-config=<id>, by id. */
function markedBlocks(text: string): Map<string, string> {
  return new Map(
    [...text.matchAll(/^```json idp-config=([a-z0-9-]+)\n([\s\S]*?)^```$/gm)].map((match) => [
      match[1] as string,
      match[2] as string,
    ]),
  );
}
const BLOCKS = markedBlocks(PAGE);

const FEDERATED = [
  'supabase-federated',
  'workos-federated',
  'auth0-federated',
  'keycloak-federated',
  'google-federated',
  'entra-federated',
] as const;
const RESOURCE_SERVER = [
  'supabase-jwks',
  'supabase-hs256',
  'workos-resource-server',
  'auth0-resource-server',
  'keycloak-resource-server',
  'google-id-tokens',
  'entra-resource-server',
] as const;

/** The paths the documented blocks name for their secrets, and what the test puts there. */
const CLIENT_SECRET_FILE = '/run/secrets/idp-client-secret';
const CLIENT_SECRET = 'client-secret-registered-at-the-stand-in-provider';
const SUPABASE_SECRET_FILE = '/run/secrets/supabase-jwt-secret';
/** The README's resource-server example names this one. */
const README_SUPABASE_SECRET_FILE = '/run/secrets/supabase-jwt';
/** A legacy Supabase JWT secret: used as its UTF-8 bytes, and it happens to look like base64. */
const SUPABASE_SECRET = 'Qm9vdHN0cmFwLXRoZS1sZWdhY3ktc3VwYWJhc2Utand0LXNlY3JldA==';

function block(id: string): string {
  const text = BLOCKS.get(id);
  if (text === undefined) throw new Error(`docs/identity-providers.md has no block idp-config=${id}`);
  return text;
}

/**
 * Loads a documented block as `gatehouse serve --config gatehouse.json` would, with the federated client
 * secret in the file the docs name through the environment and the HS256 secret in its `secretFile`.
 */
function loadDocumented(
  text: string,
  secrets: { readonly supabase?: string; readonly client?: string } = {},
): GatehouseConfig {
  const files: Record<string, string> = {
    'gatehouse.json': text,
    [CLIENT_SECRET_FILE]: `${secrets.client ?? CLIENT_SECRET}\n`,
    [SUPABASE_SECRET_FILE]: `${secrets.supabase ?? SUPABASE_SECRET}\n`,
    [README_SUPABASE_SECRET_FILE]: `${SUPABASE_SECRET}\n`,
  };
  return loadConfig({
    file: 'gatehouse.json',
    env: text.includes('"federation"')
      ? { GATEHOUSE_AUTHORIZATION_SERVER__FEDERATION__CLIENT_SECRET_FILE: CLIENT_SECRET_FILE }
      : {},
    readFile: (path) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return content;
    },
  });
}

function federationOf(config: GatehouseConfig): FederationConfig {
  const federation = config.authorizationServer.federation;
  if (federation === undefined) throw new Error('the block configures no federation');
  return federation;
}

/** A documented message with `…` where values vary, as a pattern. */
function documented(text: string): RegExp {
  const parts = text.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.+?')}$`);
}

/** The messages the "Common mistakes" table quotes (every `code span` of its second column). */
const MISTAKES = PAGE.slice(PAGE.indexOf('## Common mistakes'));
function quotedInMistakes(): string[] {
  const quoted: string[] = [];
  for (const row of MISTAKES.split('\n').filter(
    (line) => line.startsWith('| ') && !line.startsWith('| mistake'),
  )) {
    const said = row.split(' | ')[1] ?? '';
    for (const match of said.matchAll(/`([^`]+)`/g)) quoted.push(match[1] as string);
  }
  return quoted;
}
/** Every quoted message the tests compared with what the code says; checked complete at the end. */
const confirmed = new Set<string>();
function expectQuoted(actual: string, quoted: string): void {
  expect(quotedInMistakes()).toContain(quoted);
  expect(actual).toMatch(documented(quoted));
  confirmed.add(quoted);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

async function refusal(promise: Promise<unknown>): Promise<OAuthError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(OAuthError);
  return error as OAuthError;
}

describe('docs/identity-providers.md: every block loads through the config loader', () => {
  it('holds exactly the documented configurations, each marked for this test', () => {
    expect([...BLOCKS.keys()].sort()).toEqual([...FEDERATED, ...RESOURCE_SERVER].sort());
    // A fenced JSON block without the marker would escape these tests.
    expect(PAGE.match(/^```json$/gm)).toBeNull();
  });

  it("the README's two identity examples load too", () => {
    const readme = markedBlocks(README);
    expect([...readme.keys()].sort()).toEqual(['readme-federated', 'readme-resource-server']);
    const federated = loadDocumented(readme.get('readme-federated') as string);
    expect(federationOf(federated)).toMatchObject({
      preset: 'auth0',
      audience: 'https://api.example.com',
      clientSecret: CLIENT_SECRET,
    });
    const resourceServer = loadDocumented(readme.get('readme-resource-server') as string);
    expect(resourceServer.auth.verifiers.map((verifier) => verifier.name)).toEqual([
      'auth0',
      'keycloak',
      'supabase-legacy',
    ]);
  });

  it.each([...FEDERATED])('%s: federation with the secret from the documented _FILE variable', (id) => {
    const config = loadDocumented(block(id));
    const federation = federationOf(config);
    expect(federation.clientSecret).toBe(CLIENT_SECRET);
    expect(config.authorizationServer.localAccounts).toBe(false);
    expect(config.server.publicUrl).toBe('https://mcp.example.com');
  });

  it.each([...RESOURCE_SERVER])('%s: one verifier, Gatehouse not an authorization server', (id) => {
    const config = loadDocumented(block(id));
    expect(config.authorizationServer.enabled).toBe(false);
    expect(config.auth.verifiers).toHaveLength(1);
    const [verifier] = config.auth.verifiers;
    if (verifier?.kind === 'hs256') expect(verifier.secret).toBe(SUPABASE_SECRET);
  });
});

/* ------------------------------------------------------------------------------------------------
 * Federated sign-in against a stand-in per provider
 * ---------------------------------------------------------------------------------------------- */

interface FederatedCase {
  /** The issuer's path, in the provider's shape. */
  readonly issuerPath: string;
  readonly account: string;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly scopeClaims: Readonly<Record<string, readonly string[]>>;
  /** The principal the docs promise. */
  readonly principal: PrincipalSnapshot;
  /** Checks on the authorization request Gatehouse sent. */
  readonly authorization?: (url: URL) => void;
  readonly refuseResourceParameter?: boolean;
}

const ENTRA_TENANT = '8c4f6a2e-1b3d-4e5f-9a7b-2c1d0e9f8a7b';

const FEDERATED_CASES: Readonly<Record<(typeof FEDERATED)[number], FederatedCase>> = {
  'supabase-federated': {
    issuerPath: '/auth/v1',
    account: '5b0f7a3e-2c1d-4e8f-9a6b-7c5d4e3f2a1b',
    claims: {
      email: 'ada@example.com',
      email_verified: true,
      role: 'authenticated',
      app_metadata: { provider: 'email', providers: ['email'], roles: ['editor'] },
      user_metadata: { roles: ['owner'] },
    },
    scopeClaims: { openid: ['role', 'app_metadata', 'user_metadata'], email: ['email', 'email_verified'] },
    principal: {
      subject: '5b0f7a3e-2c1d-4e8f-9a6b-7c5d4e3f2a1b',
      idp: 'supabase',
      email: 'ada@example.com',
      claims: { roles: ['editor'] },
    },
  },
  'workos-federated': {
    issuerPath: '',
    account: 'user_01HBEQKA6K4QJAS93VPE39W1JT',
    claims: {
      email: 'ada@example.com',
      email_verified: true,
      name: 'Ada Lovelace',
      org_id: 'org_01HRDMC6CM357W30QMHMQ96Q0S',
      role: 'member',
      roles: ['member', 'billing'],
    },
    scopeClaims: {
      openid: ['org_id', 'role', 'roles'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    principal: {
      subject: 'user_01HBEQKA6K4QJAS93VPE39W1JT',
      idp: 'workos',
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      claims: { organization: 'org_01HRDMC6CM357W30QMHMQ96Q0S', roles: ['member', 'billing'] },
    },
  },
  'auth0-federated': {
    issuerPath: '/',
    account: 'auth0|64b7f0c2a1e3d4f5a6b7c8d9',
    claims: {
      email: 'ada@example.com',
      email_verified: true,
      name: 'Ada Lovelace',
      org_id: 'org_9ybM4Jmxl2sLGwYg',
      'https://mcp.example.com/roles': ['admin', 'writer'],
    },
    scopeClaims: {
      openid: ['org_id', 'https://mcp.example.com/roles'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    principal: {
      subject: 'auth0|64b7f0c2a1e3d4f5a6b7c8d9',
      idp: 'auth0',
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      claims: { organization: 'org_9ybM4Jmxl2sLGwYg', roles: ['admin', 'writer'] },
    },
    authorization: (url) => {
      expect(url.searchParams.get('audience')).toBe('https://api.acme.example');
      expect(url.searchParams.get('scope')).toBe('openid email profile offline_access');
    },
  },
  'keycloak-federated': {
    issuerPath: '/realms/team',
    account: 'f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    // No `name`: Keycloak omits it for a user without first and last name.
    claims: {
      email: 'ada@example.com',
      email_verified: true,
      preferred_username: 'ada',
      realm_access: { roles: ['mcp-user', 'offline_access'] },
      resource_access: { account: { roles: ['manage-account'] } },
    },
    scopeClaims: {
      openid: ['realm_access', 'resource_access'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username'],
    },
    principal: {
      subject: 'f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      idp: 'keycloak',
      email: 'ada@example.com',
      name: 'ada',
      claims: { roles: ['mcp-user', 'offline_access'] },
    },
    authorization: (url) => expect(url.searchParams.get('scope')).toBe('openid email profile'),
  },
  'google-federated': {
    issuerPath: '',
    account: '110248495921238986420',
    claims: { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', hd: 'example.com' },
    scopeClaims: { openid: ['hd'], email: ['email', 'email_verified'], profile: ['name'] },
    principal: {
      subject: '110248495921238986420',
      idp: 'google',
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      claims: { organization: 'example.com' },
    },
    authorization: (url) => {
      expect(url.searchParams.get('access_type')).toBe('offline');
      expect(url.searchParams.get('prompt')).toBe('consent');
      expect(url.searchParams.get('scope')).toBe('openid email profile');
    },
  },
  'entra-federated': {
    issuerPath: `/${ENTRA_TENANT}/v2.0`,
    account: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
    claims: {
      email: 'ada@contoso.example',
      name: 'Ada Lovelace',
      preferred_username: 'ada@contoso.example',
      oid: '00000000-0000-0000-66f3-3332eca7ea81',
      tid: ENTRA_TENANT,
      roles: ['Notes.Admin'],
    },
    scopeClaims: {
      openid: ['oid', 'tid', 'roles'],
      email: ['email'],
      profile: ['name', 'preferred_username'],
    },
    principal: {
      subject: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
      idp: 'entra',
      email: 'ada@contoso.example',
      name: 'Ada Lovelace',
      claims: { organization: ENTRA_TENANT, roles: ['Notes.Admin'] },
    },
    authorization: (url) => {
      expect(url.searchParams.has('resource')).toBe(false);
      expect(url.searchParams.has('audience')).toBe(false);
      expect(url.searchParams.get('scope')).toBe('openid email profile offline_access');
    },
    refuseResourceParameter: true,
  },
};

describe.each([...FEDERATED])('%s: federated sign-in at a stand-in for the provider', (id) => {
  const spec = FEDERATED_CASES[id];
  const config = loadDocumented(block(id));
  const documentedFederation = federationOf(config);
  // The redirect URI the docs tell the reader to register: the public URL plus /oauth/callback.
  const callbackUrl = new URL('/oauth/callback', config.server.publicUrl).href;
  let standIn: Awaited<ReturnType<typeof startOidcStandIn>>;

  beforeAll(async () => {
    standIn = await startOidcStandIn({
      issuerPath: spec.issuerPath,
      accounts: { [spec.account]: spec.claims },
      scopeClaims: spec.scopeClaims,
      redirectUri: callbackUrl,
      refuseResourceParameter: spec.refuseResourceParameter ?? false,
    });
  });
  afterAll(() => standIn?.close());

  /** The documented configuration, pointed at the stand-in: only issuer and client change. */
  function federationAt(issuer: string) {
    const requests: { url: string; body: string }[] = [];
    const stores = createMemoryStores();
    const federation = createFederation({
      config: {
        ...documentedFederation,
        issuer,
        clientId: standIn.clientId,
        clientSecret: standIn.clientSecret,
        allowInsecureHttp: true,
      },
      callbackUrl,
      ephemeral: stores.ephemeral,
      upstreamTokens: stores.upstreamTokens,
      sealer: createSealer([new Uint8Array(32).fill(3)]),
      clock: systemClock,
      logger: silentLogger,
      fetch: async (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        requests.push({ url, body: init?.body instanceof URLSearchParams ? init.body.toString() : '' });
        return fetch(input, init);
      },
    });
    return { federation, requests, stores };
  }

  it('signs the user in; the principal carries the documented subject, email, name, organization and roles', async () => {
    const { federation, requests, stores } = federationAt(standIn.issuer);
    const authorizationUrl = await federation.begin('interaction-1');
    spec.authorization?.(authorizationUrl);
    const callback = await loginAtIdp(authorizationUrl, { account: spec.account });
    expect(`${callback.origin}${callback.pathname}`).toBe(callbackUrl);
    const { interactionId, principal } = await federation.complete(callback);
    expect(interactionId).toBe('interaction-1');
    expect(principal).toEqual(spec.principal);
    // Nothing Gatehouse sent the provider carried an RFC 8707 resource (Entra refuses it).
    for (const request of requests) {
      expect(new URL(request.url).searchParams.has('resource')).toBe(false);
      expect(new URLSearchParams(request.body).has('resource')).toBe(false);
    }
    expect(requests.some((request) => request.body.includes('grant_type=authorization_code'))).toBe(true);
    expect(
      await stores.upstreamTokens.get(`${principal.idp}#${principal.subject}`, principal.idp),
    ).toBeDefined();
    federation.close();
  });

  it('refuses an issuer that differs from the discovery document by a trailing slash', async () => {
    const other = standIn.issuer.endsWith('/') ? standIn.issuer.slice(0, -1) : `${standIn.issuer}/`;
    const { federation } = federationAt(other);
    const error = await rejection(federation.begin('interaction-2'));
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('ERR_IDP_RESPONSE_INVALID');
    expect((error as GatehouseError).details).toMatchObject({ check: 'issuer', issuer: standIn.issuer });
    if (id === 'auth0-federated') {
      // The table's example: configured without the slash the provider writes.
      const example = quotedInMistakes().find((quote) => quote.startsWith("The IdP's discovery"));
      const origin = standIn.issuer.slice(0, -1);
      expect(example).toBeDefined();
      expect((error as GatehouseError).message).toBe(
        (example as string).replaceAll('https://idp.example.com', origin),
      );
      confirmed.add(example as string);
    }
    federation.close();
  });

  if (spec.refuseResourceParameter) {
    it('the stand-in refuses an authorization request carrying resource, as Entra does', async () => {
      const { federation } = federationAt(standIn.issuer);
      const url = await federation.begin('interaction-3');
      url.searchParams.set('resource', 'https://mcp.example.com/mcp');
      const answer = await fetch(url, { redirect: 'manual' });
      expect(answer.status).toBe(400);
      expect(await answer.text()).toContain('AADSTS901002');
      federation.close();
    });
  }
});

describe('federated presets refuse what the docs call mistakes', () => {
  it('entra-federated at the common endpoint: its templated issuer is refused at discovery', async () => {
    const documentedEntra = federationOf(loadDocumented(block('entra-federated')));
    const common = { ...documentedEntra, issuer: 'https://login.microsoftonline.com/common/v2.0' };
    let asked = '';
    const error = await rejection(
      discoverIdentityProvider(common, {
        // What Entra's common endpoint publishes (trimmed): the issuer is a template, not a tenant.
        fetch: async (input) => {
          asked = input instanceof Request ? input.url : String(input);
          return Response.json({
            issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0',
            authorization_endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/authorize',
            token_endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
            jwks_uri: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
          });
        },
      }),
    );
    expect(asked).toBe('https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration');
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('ERR_IDP_RESPONSE_INVALID');
    expect((error as GatehouseError).details).toMatchObject({ check: 'issuer' });
  });

  it('Auth0 issuer without the trailing slash: the loader prints the documented line', () => {
    const text = block('auth0-federated').replace(
      '"https://acme.eu.auth0.com/"',
      '"https://acme.eu.auth0.com"',
    );
    let printed = '';
    try {
      loadDocumented(text);
    } catch (error) {
      expect(error).toBeInstanceOf(GatehouseError);
      expect((error as GatehouseError).code).toBe('ERR_CONFIG_INVALID');
      // What `gatehouse serve` prints under "gatehouse: invalid configuration".
      printed = (error as GatehouseError).message;
    }
    const line = printed
      .split('\n')
      .find((entry) => entry.startsWith('authorizationServer.federation.issuer'));
    expectQuoted(
      line ?? '',
      'authorizationServer.federation.issuer: Auth0 issuers end with "/" (https://<tenant>.<region>.auth0.com/) (file gatehouse.json)',
    );
  });
});

/* ------------------------------------------------------------------------------------------------
 * Resource-server mode: tokens of each provider's shape
 * ---------------------------------------------------------------------------------------------- */

/** The documented block's verifiers, the JWKS URL replaced by the local issuer's (issuer and audience unchanged). */
function verifiersAt(config: GatehouseConfig, jwksUrl: string) {
  const patched: GatehouseConfig = {
    ...config,
    auth: {
      ...config.auth,
      verifiers: config.auth.verifiers.map((verifier) =>
        verifier.kind === 'jwks' ? { ...verifier, jwksUrl } : verifier,
      ),
    },
  };
  const { all } = gatewayVerifiers(patched, undefined, systemClock);
  const cache = createVerificationCache({
    verifiers: all,
    maxEntries: 0,
    maxTtlMs: 60_000,
    clock: systemClock,
  });
  return {
    all,
    verify: async (token: string): Promise<Principal> => (await cache.verify(token)).principal,
  };
}

function expectScopes(principal: Principal, config: GatehouseConfig): void {
  for (const scope of config.auth.requiredScopes) expect(principal.scopes).toContain(scope);
}

describe('resource-server mode: each documented verifier with tokens of its provider’s shape', () => {
  let idp: TokenIssuer;
  beforeAll(async () => {
    idp = await startTokenIssuer();
  });
  afterAll(() => idp?.close());

  const SUPABASE_ISSUER = 'https://abcdefghijklmnop.supabase.co/auth/v1';
  const supabaseClaims = {
    iss: SUPABASE_ISSUER,
    sub: '5b0f7a3e-2c1d-4e8f-9a6b-7c5d4e3f2a1b',
    aud: 'authenticated',
    role: 'authenticated',
    email: 'ada@example.com',
    phone: '',
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    aal: 'aal1',
    amr: [{ method: 'password', timestamp: 1_700_000_000 }],
    session_id: '0c4a6f1e-8b2d-4c3e-9f5a-1b2c3d4e5f6a',
    is_anonymous: false,
  };
  const hs256 = (claims: Record<string, unknown>, secret = SUPABASE_SECRET) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(secret));
  };

  it('supabase-jwks: accepts a session token (sub = user uuid, email, role in the claims); refuses anon keys and another audience', async () => {
    const config = loadDocumented(block('supabase-jwks'));
    const { verify } = verifiersAt(config, idp.jwksUrl);
    const principal = await verify(await idp.sign(supabaseClaims));
    expect(principal).toMatchObject({
      subject: supabaseClaims.sub,
      issuer: SUPABASE_ISSUER,
      email: 'ada@example.com',
      verifier: 'supabase',
    });
    expect(principal.claims).toMatchObject({ role: 'authenticated', session_id: supabaseClaims.session_id });
    // The project's anon key: no sub, no aud, iss "supabase".
    const anon = await idp.sign({ iss: 'supabase', ref: 'abcdefghijklmnop', role: 'anon' });
    expect((await refusal(verify(anon))).reason).toBe('unknown_issuer');
    const otherAudience = await idp.sign({ ...supabaseClaims, aud: 'anon' });
    expect((await refusal(verify(otherAudience))).reason).toBe('wrong_audience');
  });

  it('supabase-hs256: accepts a token signed with the secret as written; refuses it base64-decoded, and ES256 tokens', async () => {
    const config = loadDocumented(block('supabase-hs256'));
    const { verify, all } = verifiersAt(config, idp.jwksUrl);
    const principal = await verify(await hs256(supabaseClaims));
    expect(principal).toMatchObject({ subject: supabaseClaims.sub, email: 'ada@example.com' });

    // Mistake: the operator base64-decoded the secret (it looks like base64) before configuring it.
    const decoded = Buffer.from(SUPABASE_SECRET, 'base64').toString('utf8');
    const misconfigured = loadDocumented(block('supabase-hs256'), { supabase: decoded });
    const wrong = verifiersAt(misconfigured, idp.jwksUrl);
    const token = await hs256(supabaseClaims);
    const refused = await refusal(wrong.verify(token));
    expect(refused.reason).toBe('bad_signature');
    expectQuoted(refused.description ?? '', 'The token signature does not verify.');
    const [verifierConfig] = misconfigured.auth.verifiers;
    if (verifierConfig?.kind !== 'hs256') throw new Error('expected the hs256 verifier');
    const check = await tokenCheck(token, {
      verifiers: wrong.all,
      hs256: new Map([['supabase', hs256Check(verifierConfig).secret]]),
      expectations: new Map(),
      clock: systemClock,
    });
    expect(check.status).toBe('fail');
    expectQuoted(
      check.summary.split(';')[0] ?? '',
      'signature does not match the configured secret of verifier supabase (… bytes, sha256:…)',
    );

    // Mistake: the project moved to asymmetric keys; an hs256 verifier meets an ES256 token.
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const es256 = await new SignJWT({ ...supabaseClaims, iat: now, exp: now + 300 })
      .setProtectedHeader({ alg: 'ES256', kid: 'new-key' })
      .sign(privateKey);
    const asymmetric = await refusal(verify(es256));
    expect(asymmetric.reason).toBe('alg_not_allowed');
    expectQuoted(asymmetric.description ?? '', 'The token is signed with an algorithm that is not accepted.');
    expect(all).toHaveLength(1);
  });

  it('supabase-jwks and supabase-hs256 together (moving to asymmetric keys): tokens of both kinds pass', async () => {
    const asymmetric = loadDocumented(block('supabase-jwks'));
    const legacy = loadDocumented(block('supabase-hs256'));
    const both: GatehouseConfig = {
      ...asymmetric,
      auth: { ...asymmetric.auth, verifiers: [...asymmetric.auth.verifiers, ...legacy.auth.verifiers] },
    };
    const { verify } = verifiersAt(both, idp.jwksUrl);
    await expect(verify(await idp.sign(supabaseClaims))).resolves.toMatchObject({ verifier: 'supabase' });
    await expect(verify(await hs256(supabaseClaims))).resolves.toMatchObject({ subject: supabaseClaims.sub });
    expect((await refusal(verify(await hs256(supabaseClaims, `${SUPABASE_SECRET}x`)))).reason).toBe(
      'bad_signature',
    );
  });

  it('supabase-hs256: a secret shorter than 32 bytes stops the loader with the documented line', () => {
    let printed = '';
    try {
      loadDocumented(block('supabase-hs256'), { supabase: 'f6d2c9a1-3b4e-4d5f' });
    } catch (error) {
      // What `gatehouse serve` prints under "gatehouse: invalid configuration".
      printed = (error as GatehouseError).message;
    }
    const line = printed.split('\n').find((entry) => entry.startsWith('auth.verifiers[0].secret'));
    expectQuoted(
      line ?? '',
      'auth.verifiers[0].secret: must be at least 32 bytes (value hidden; … characters) (file gatehouse.json)',
    );
  });

  it('workos-resource-server: accepts an AuthKit MCP token bound to the resource; refuses a session token without aud', async () => {
    const config = loadDocumented(block('workos-resource-server'));
    const { verify } = verifiersAt(config, idp.jwksUrl);
    const claims = {
      iss: 'https://acme-42.authkit.app',
      sub: 'user_01HBEQKA6K4QJAS93VPE39W1JT',
      aud: 'https://mcp.example.com/mcp',
      sid: 'session_01HQSXZGF8FHF7A9ZZFCW4387R',
      org_id: 'org_01HRDMC6CM357W30QMHMQ96Q0S',
      role: 'member',
      roles: ['member'],
      permissions: ['posts:read'],
      jti: '01HQSXZXPPFPKMDD32RKTFY6PV',
      client_id: 'client_01J8ZQ4Y7V6X5W4T3S2R1Q0P9N',
    };
    const principal = await verify(await idp.sign(claims));
    expect(principal).toMatchObject({ subject: claims.sub, clientId: claims.client_id });
    expect(principal.email).toBeUndefined();
    expect(principal.claims).toMatchObject({ org_id: claims.org_id, roles: ['member'] });

    const { aud: _aud, ...session } = claims;
    const refused = await refusal(verify(await idp.sign(session)));
    expect(refused.reason).toBe('missing_claim');
    expectQuoted(refused.description ?? '', 'The token lacks the required "aud" claim.');
  });

  it('auth0-resource-server: accepts an RBAC token with an audience array; refuses opaque tokens and an issuer without its slash', async () => {
    const config = loadDocumented(block('auth0-resource-server'));
    const { verify, all } = verifiersAt(config, idp.jwksUrl);
    const claims = {
      iss: 'https://acme.eu.auth0.com/',
      sub: 'auth0|64b7f0c2a1e3d4f5a6b7c8d9',
      aud: ['https://mcp.example.com/mcp', 'https://acme.eu.auth0.com/userinfo'],
      azp: 'Xk2mV9pQ7rT4sW1yZ3bN6cJ8dF5gH0aL',
      scope: 'openid profile email notes:read',
      permissions: ['notes:read'],
    };
    const principal = await verify(await idp.sign(claims, { typ: 'at+jwt' }));
    expect(principal).toMatchObject({ subject: claims.sub, clientId: claims.azp });
    expectScopes(principal, config);
    expect(principal.claims.permissions).toEqual(['notes:read']);

    // Auth0 without `audience`: an encrypted (JWE, five segments) token nobody but Auth0 reads.
    const opaque =
      'eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIiwiaXNzIjoiaHR0cHM6Ly9hY21lLmV1LmF1dGgwLmNvbS8ifQ..mZ3kTq0b.Zk9x.QmFy';
    const malformed = await refusal(verify(opaque));
    expect(malformed.reason).toBe('malformed');
    expectQuoted(malformed.description ?? '', 'The token is not a well-formed JWT.');
    const doctor = await tokenCheck(opaque, {
      verifiers: all,
      hs256: new Map(),
      expectations: new Map(),
      clock: systemClock,
    });
    expectQuoted(doctor.summary, 'not a well-formed JWT');

    // The issuer configured without Auth0's trailing slash.
    const noSlash = loadDocumented(
      block('auth0-resource-server').replace(
        '"issuer": "https://acme.eu.auth0.com/"',
        '"issuer": "https://acme.eu.auth0.com"',
      ),
    );
    const strict = verifiersAt(noSlash, idp.jwksUrl);
    const token = await idp.sign(claims);
    const unknown = await refusal(strict.verify(token));
    expect(unknown.reason).toBe('unknown_issuer');
    expectQuoted(unknown.description ?? '', 'No configured verifier accepts tokens from this issuer.');
    const diagnosed = await tokenCheck(token, {
      verifiers: strict.all,
      hs256: new Map(),
      expectations: new Map(),
      clock: systemClock,
    });
    expectQuoted(
      diagnosed.summary,
      'no verifier accepts issuer https://acme.eu.auth0.com/ (reason unknown_issuer)',
    );
  });

  it('keycloak-resource-server: accepts a token with the audience mapper (client from azp); refuses the default aud "account"', async () => {
    const config = loadDocumented(block('keycloak-resource-server'));
    const { verify, all } = verifiersAt(config, idp.jwksUrl);
    const claims = {
      iss: 'https://sso.example.com/realms/team',
      sub: 'f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      aud: ['mcp-gateway', 'account'],
      azp: 'claude-desktop',
      typ: 'Bearer',
      scope: 'openid email profile',
      email: 'ada@example.com',
      preferred_username: 'ada',
      realm_access: { roles: ['mcp-user', 'offline_access'] },
      resource_access: { account: { roles: ['manage-account'] } },
    };
    const principal = await verify(await idp.sign(claims));
    expect(principal).toMatchObject({
      subject: claims.sub,
      email: 'ada@example.com',
      clientId: 'claude-desktop',
    });
    expect(principal.scopes).toEqual(['openid', 'email', 'profile']);
    expect(principal.claims.realm_access).toEqual({ roles: ['mcp-user', 'offline_access'] });

    const token = await idp.sign({ ...claims, aud: 'account' });
    const refused = await refusal(verify(token));
    expect(refused.reason).toBe('wrong_audience');
    expectQuoted(refused.description ?? '', 'The token\'s "aud" claim is not accepted.');
    const doctor = await tokenCheck(token, {
      verifiers: all,
      hs256: new Map(),
      expectations: new Map(),
      clock: systemClock,
    });
    expectQuoted(doctor.summary, 'rejected by keycloak: wrong_audience; expires in … s');
  });

  it('google-id-tokens: accepts an ID token for the client id; refuses access tokens and ID tokens of other clients', async () => {
    const config = loadDocumented(block('google-id-tokens'));
    const { verify } = verifiersAt(config, idp.jwksUrl);
    const clientId = '123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com';
    const claims = {
      iss: 'https://accounts.google.com',
      azp: clientId,
      aud: clientId,
      sub: '110248495921238986420',
      hd: 'example.com',
      email: 'ada@example.com',
      email_verified: true,
      at_hash: 'HK6E_P6Dh8Y93mRNtsDB1Q',
      name: 'Ada Lovelace',
    };
    const principal = await verify(await idp.sign(claims));
    expect(principal).toMatchObject({ subject: claims.sub, email: 'ada@example.com', name: 'Ada Lovelace' });
    expect(principal.scopes).toEqual([]);
    expect(config.auth.requiredScopes).toEqual([]);
    const other = await idp.sign({ ...claims, aud: '999999999999-other.apps.googleusercontent.com' });
    expect((await refusal(verify(other))).reason).toBe('wrong_audience');
    const accessToken = 'ya29.a0AfB_byC3kXqj9Lm2Vt7wQpZr8sN4yH6uK1oE5iT0gD';
    expect((await refusal(verify(accessToken))).reason).toBe('malformed');
    // Some Google flows write the issuer without https://: refused unless a second verifier names it.
    const bare = await idp.sign({ ...claims, iss: 'accounts.google.com' });
    expect((await refusal(verify(bare))).reason).toBe('unknown_issuer');
  });

  it('entra-resource-server: accepts a v2.0 token (scp, azp, tid, roles); refuses a v1.0 token and another audience', async () => {
    const config = loadDocumented(block('entra-resource-server'));
    const { verify } = verifiersAt(config, idp.jwksUrl);
    const appId = '0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f';
    const claims = {
      iss: `https://login.microsoftonline.com/${ENTRA_TENANT}/v2.0`,
      aud: appId,
      sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
      oid: '00000000-0000-0000-66f3-3332eca7ea81',
      tid: ENTRA_TENANT,
      azp: '5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b',
      azpacr: '0',
      scp: 'Notes.Read Notes.Write',
      roles: ['Notes.Admin'],
      preferred_username: 'ada@contoso.example',
      name: 'Ada Lovelace',
      ver: '2.0',
    };
    const principal = await verify(await idp.sign(claims));
    expect(principal).toMatchObject({ subject: claims.sub, clientId: claims.azp, name: 'Ada Lovelace' });
    expect(principal.scopes).toEqual(['Notes.Read', 'Notes.Write']);
    expectScopes(principal, config);
    expect(principal.claims).toMatchObject({ tid: ENTRA_TENANT, roles: ['Notes.Admin'] });

    const v1 = await idp.sign({
      ...claims,
      iss: `https://sts.windows.net/${ENTRA_TENANT}/`,
      aud: `api://${appId}`,
      ver: '1.0',
    });
    expect((await refusal(verify(v1))).reason).toBe('unknown_issuer');
    const graph = await idp.sign({ ...claims, aud: '00000003-0000-0000-c000-000000000000' });
    expect((await refusal(verify(graph))).reason).toBe('wrong_audience');
  });

  it('clock skew: the documented messages for a token that expired or is not yet valid by the gateway clock', async () => {
    const config = loadDocumented(block('keycloak-resource-server'));
    const { verify } = verifiersAt(config, idp.jwksUrl);
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: 'https://sso.example.com/realms/team', sub: 'u', aud: 'mcp-gateway' };
    // The gateway's clock runs 10 minutes ahead of the IdP's: a fresh 5-minute token is already expired.
    const expired = await refusal(verify(await idp.sign({ ...base, iat: now - 600, exp: now - 300 })));
    expect(expired.reason).toBe('token_expired');
    expectQuoted(expired.description ?? '', 'The token has expired.');
    // The gateway's clock runs behind: the token's nbf is still in the future beyond the tolerance.
    const early = await refusal(
      verify(await idp.sign({ ...base, iat: now + 60, nbf: now + 60, exp: now + 360 })),
    );
    expect(early.reason).toBe('not_yet_valid');
    expectQuoted(early.description ?? '', 'The token\'s "nbf" claim is not accepted.');
    // Within auth.clockToleranceSeconds (default 5 s) the same token passes.
    expect(config.auth.clockToleranceSeconds).toBe(5);
    await expect(verify(await idp.sign({ ...base, nbf: now + 2, exp: now + 300 }))).resolves.toMatchObject({
      subject: 'u',
    });
    const skew = skewCheck('clock:keycloak', 'keycloak', 45_000, 30_000);
    expect(skew.status).toBe('warn');
    expectQuoted(skew.summary, 'clock skew: … clock is … s ahead of this machine (more than 30 s)');
  });
});

describe('auth0-resource-server through the whole gateway', () => {
  it('names Auth0 in protected-resource metadata, answers whoami as the Auth0 user, refuses a wrong audience with the documented 401', async () => {
    const idp = await startTokenIssuer();
    const input = JSON.parse(block('auth0-resource-server')) as {
      server?: unknown;
      auth: { verifiers: { jwksUrl: string }[] };
    };
    for (const verifier of input.auth.verifiers) verifier.jwksUrl = idp.jwksUrl;
    // The gateway listens on loopback; the verifier still expects the documented audience.
    delete input.server;
    const gw = await startTestGateway({ ...(input as object), store: { kind: 'memory' } });
    try {
      const metadata = (await (
        await fetch(new URL('/.well-known/oauth-protected-resource/mcp', gw.mcpUrl))
      ).json()) as { authorization_servers: string[] };
      expect(metadata.authorization_servers).toEqual(['https://acme.eu.auth0.com/']);

      const claims = {
        iss: 'https://acme.eu.auth0.com/',
        sub: 'auth0|64b7f0c2a1e3d4f5a6b7c8d9',
        aud: ['https://mcp.example.com/mcp', 'https://acme.eu.auth0.com/userinfo'],
        azp: 'Xk2mV9pQ7rT4sW1yZ3bN6cJ8dF5gH0aL',
        scope: 'openid notes:read',
      };
      const initialize = (token: string) =>
        fetch(gw.mcpUrl, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              clientInfo: { name: 't', version: '1' },
            },
          }),
        });
      const token = await idp.sign(claims);
      const accepted = await initialize(token);
      expect(accepted.status).toBe(200);
      await accepted.body?.cancel();
      // The upstream sees the Auth0 user: sub, issuer and scopes from the verified token.
      const client = new Client({ name: 'idp-configs', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(gw.mcpUrl, { authProvider: { token: async () => token } }),
      );
      const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))) as Record<
        string,
        unknown
      >;
      await client.close();
      expect(who).toMatchObject({
        userId: 'auth0|64b7f0c2a1e3d4f5a6b7c8d9',
        issuer: 'https://acme.eu.auth0.com/',
        scopes: ['openid', 'notes:read'],
      });

      const withoutScope = await initialize(await idp.sign({ ...claims, scope: 'openid' }));
      expect(withoutScope.status).toBe(403);
      expect(withoutScope.headers.get('www-authenticate')).toContain('insufficient_scope');
      await withoutScope.body?.cancel();

      const wrongAudience = await initialize(await idp.sign({ ...claims, aud: 'https://api.acme.example' }));
      expect(wrongAudience.status).toBe(401);
      const body = (await wrongAudience.json()) as { error: string; error_description: string };
      expect(body.error).toBe('invalid_token');
      expectQuoted(body.error_description, 'The token\'s "aud" claim is not accepted.');
    } finally {
      await gw.close();
      await idp.close();
    }
  });
});

describe('the "Common mistakes" table', () => {
  it('quotes only messages the tests above confirmed', () => {
    expect(quotedInMistakes().filter((quote) => !confirmed.has(quote))).toEqual([]);
  });
});
