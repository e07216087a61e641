import { describe, expect, it } from 'vitest';
import { tokenHash } from '../../../src/crypto/fingerprint.js';
import { OAuthError, type OAuthErrorCode } from '../../../src/errors/oauth-error.js';
import {
  CLIENT_METADATA_LIMITS,
  type ClientMetadataMode,
  parseClientMetadata,
  preRegisteredClientSchema,
  preRegisteredToClientRecord,
  toClientRecord,
  toWireMetadata,
} from '../../../src/oauth/client-metadata.js';

function failure(input: unknown, mode: ClientMetadataMode = 'registration'): OAuthError {
  try {
    parseClientMetadata(input, { mode });
  } catch (error) {
    expect(error).toBeInstanceOf(OAuthError);
    return error as OAuthError;
  }
  throw new Error('expected parseClientMetadata to throw');
}

const web = { redirect_uris: ['https://app.example.com/callback'] };
const long = (n: number): string => 'a'.repeat(n);

describe('parseClientMetadata — valid registrations', () => {
  // req: RFC7591-2-DEFAULT-AUTH-METHOD
  it('applies the RFC 7591 defaults', () => {
    expect(parseClientMetadata(web, { mode: 'registration' })).toEqual({
      redirectUris: ['https://app.example.com/callback'],
      tokenEndpointAuthMethod: 'client_secret_basic',
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      applicationType: 'web',
    });
  });

  // req: RFC7591-2-IGNORE-UNKNOWN
  it('keeps what MCP clients typically send, and ignores unknown fields', () => {
    const metadata = parseClientMetadata(
      {
        redirect_uris: ['http://localhost:6274/oauth/callback', 'http://127.0.0.1:33418/', 'http://[::1]/cb'],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        client_name: '  MCP Inspector ',
        client_uri: 'https://github.com/modelcontextprotocol/inspector',
        logo_uri: 'https://example.com/logo.png',
        scope: 'mcp:tools  mcp:tools offline_access',
        contacts: ['dev@example.com'],
        tos_uri: 'https://example.com/tos',
        policy_uri: 'https://example.com/policy',
        software_id: 'inspector',
        software_version: '0.16.0',
        jwks_uri: 'https://example.com/jwks',
        'client_name#ja': 'ignored',
      },
      { mode: 'registration' },
    );
    expect(metadata).toEqual({
      redirectUris: ['http://localhost:6274/oauth/callback', 'http://127.0.0.1:33418/', 'http://[::1]/cb'],
      tokenEndpointAuthMethod: 'none',
      grantTypes: ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      applicationType: 'native',
      clientName: 'MCP Inspector',
      clientUri: 'https://github.com/modelcontextprotocol/inspector',
      logoUri: 'https://example.com/logo.png',
      scope: 'mcp:tools offline_access',
      contacts: ['dev@example.com'],
      tosUri: 'https://example.com/tos',
      policyUri: 'https://example.com/policy',
      softwareId: 'inspector',
      softwareVersion: '0.16.0',
    });
  });

  it.each([
    ['private-use scheme only → native', ['com.example.app:/oauth2redirect'], undefined, 'native'],
    [
      'private-use with explicit native',
      ['com.example.app://cb', 'https://a.example/cb'],
      'native',
      'native',
    ],
    ['loopback only → native', ['http://127.0.0.1:1234/cb'], undefined, 'native'],
    ['https and loopback → web', ['https://a.example/cb', 'http://localhost/cb'], undefined, 'web'],
    ['explicit web with loopback', ['http://localhost:3000/cb'], 'web', 'web'],
  ])('%s', (_name, redirectUris, applicationType, expected) => {
    const metadata = parseClientMetadata(
      {
        redirect_uris: redirectUris,
        ...(applicationType === undefined ? {} : { application_type: applicationType }),
      },
      { mode: 'registration' },
    );
    expect(metadata.applicationType).toBe(expected);
  });

  it('treats null optional fields as absent', () => {
    const metadata = parseClientMetadata(
      { ...web, client_uri: null, logo_uri: null, scope: null, contacts: null },
      { mode: 'registration' },
    );
    expect(metadata).toEqual(parseClientMetadata(web, { mode: 'registration' }));
  });

  it('accepts the redirect set Cursor registers (an app scheme without a dot, mixed with https and loopback)', () => {
    const metadata = parseClientMetadata(
      {
        client_name: 'Cursor',
        redirect_uris: [
          'cursor://anysphere.cursor-mcp/oauth/callback',
          'https://www.cursor.com/oauth/callback',
          'http://localhost:8787/callback',
        ],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      },
      { mode: 'registration' },
    );
    expect(metadata.redirectUris).toContain('cursor://anysphere.cursor-mcp/oauth/callback');
  });

  it('accepts the body VS Code sends (explicit native with https and bare loopback redirects)', () => {
    const metadata = parseClientMetadata(
      {
        client_name: 'Visual Studio Code',
        client_uri: 'https://code.visualstudio.com',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [
          'https://insiders.vscode.dev/redirect',
          'https://vscode.dev/redirect',
          'http://localhost',
          'http://127.0.0.1',
          'http://localhost:33418',
          'http://127.0.0.1:33418',
        ],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
      { mode: 'registration' },
    );
    expect(metadata.applicationType).toBe('native');
    expect(metadata.redirectUris).toHaveLength(6);
  });

  it('de-duplicates redirect URIs and grant types', () => {
    const metadata = parseClientMetadata(
      {
        redirect_uris: ['https://a.example/cb', 'https://a.example/cb'],
        grant_types: ['authorization_code', 'authorization_code'],
      },
      { mode: 'registration' },
    );
    expect(metadata.redirectUris).toEqual(['https://a.example/cb']);
    expect(metadata.grantTypes).toEqual(['authorization_code']);
  });

  it('accepts every string at its length limit', () => {
    const metadata = parseClientMetadata(
      {
        redirect_uris: Array.from(
          { length: CLIENT_METADATA_LIMITS.redirectUris },
          (_, i) => `https://a.example/${i}/${long(CLIENT_METADATA_LIMITS.uriLength - 25)}`,
        ),
        client_name: long(CLIENT_METADATA_LIMITS.clientNameLength),
      },
      { mode: 'registration' },
    );
    expect(metadata.redirectUris).toHaveLength(CLIENT_METADATA_LIMITS.redirectUris);
  });
});

describe('parseClientMetadata — refused', () => {
  const cases: [string, unknown, OAuthErrorCode, string][] = [
    ['not an object', 'redirect_uris', 'invalid_client_metadata', 'not_an_object'],
    ['null', null, 'invalid_client_metadata', 'not_an_object'],
    ['an array', [web], 'invalid_client_metadata', 'not_an_object'],
    ['no redirect_uris', {}, 'invalid_redirect_uri', 'redirect_uris_missing'],
    ['empty redirect_uris', { redirect_uris: [] }, 'invalid_redirect_uri', 'redirect_uris_invalid'],
    [
      'redirect_uris a string',
      { redirect_uris: 'https://a.example/cb' },
      'invalid_redirect_uri',
      'redirect_uris_invalid',
    ],
    ['non-string redirect', { redirect_uris: [42] }, 'invalid_redirect_uri', 'redirect_uris_invalid'],
    [
      'too many redirects',
      { redirect_uris: Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`) },
      'invalid_redirect_uri',
      'redirect_uris_invalid',
    ],
    [
      'overlong redirect',
      { redirect_uris: [`https://a.example/${long(2000)}`] },
      'invalid_redirect_uri',
      'redirect_uris_invalid',
    ],
    ['relative redirect', { redirect_uris: ['/callback'] }, 'invalid_redirect_uri', 'redirect_uri_invalid'],
    [
      'fragment',
      { redirect_uris: ['https://a.example/cb#frag'] },
      'invalid_redirect_uri',
      'redirect_uri_fragment',
    ],
    [
      'empty fragment',
      { redirect_uris: ['https://a.example/cb#'] },
      'invalid_redirect_uri',
      'redirect_uri_fragment',
    ],
    [
      'wildcard host',
      { redirect_uris: ['https://*.example.com/cb'] },
      'invalid_redirect_uri',
      'redirect_uri_wildcard',
    ],
    [
      'wildcard path',
      { redirect_uris: ['https://a.example/*'] },
      'invalid_redirect_uri',
      'redirect_uri_wildcard',
    ],
    [
      'userinfo',
      { redirect_uris: ['https://good.example@evil.example/cb'] },
      'invalid_redirect_uri',
      'redirect_uri_userinfo',
    ],
    ['space', { redirect_uris: ['https://a.example/c b'] }, 'invalid_redirect_uri', 'redirect_uri_invalid'],
    [
      'http non-loopback',
      { redirect_uris: ['http://app.example.com/cb'] },
      'invalid_redirect_uri',
      'redirect_uri_insecure',
    ],
    [
      'http loopback lookalike',
      { redirect_uris: ['http://localhost.evil.com/cb'] },
      'invalid_redirect_uri',
      'redirect_uri_insecure',
    ],
    [
      'http 127.1 shorthand',
      { redirect_uris: ['http://127.1/cb'] },
      'invalid_redirect_uri',
      'redirect_uri_insecure',
    ],
    [
      'http private IP',
      { redirect_uris: ['http://192.168.1.10/cb'] },
      'invalid_redirect_uri',
      'redirect_uri_insecure',
    ],
    ['javascript', { redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri', 'redirect_uri_scheme'],
    ['data', { redirect_uris: ['data:text/html,hi'] }, 'invalid_redirect_uri', 'redirect_uri_scheme'],
    ['file', { redirect_uris: ['file:///etc/passwd'] }, 'invalid_redirect_uri', 'redirect_uri_scheme'],
    [
      'javascript scheme',
      { redirect_uris: ['javascript:alert(1)'] },
      'invalid_redirect_uri',
      'redirect_uri_scheme',
    ],
    ['data scheme', { redirect_uris: ['data:text/html,x'] }, 'invalid_redirect_uri', 'redirect_uri_scheme'],
    [
      'unknown application_type',
      { ...web, application_type: 'desktop' },
      'invalid_client_metadata',
      'application_type_invalid',
    ],
    [
      'private_key_jwt at registration',
      { ...web, token_endpoint_auth_method: 'private_key_jwt' },
      'invalid_client_metadata',
      'unsupported_auth_method',
    ],
    [
      'client_secret_jwt',
      { ...web, token_endpoint_auth_method: 'client_secret_jwt' },
      'invalid_client_metadata',
      'unsupported_auth_method',
    ],
    [
      'auth method not a string',
      { ...web, token_endpoint_auth_method: 7 },
      'invalid_client_metadata',
      'token_endpoint_auth_method_invalid',
    ],
    [
      'implicit grant',
      { ...web, grant_types: ['implicit'] },
      'invalid_client_metadata',
      'unsupported_grant_type',
    ],
    [
      'client_credentials',
      { ...web, grant_types: ['authorization_code', 'client_credentials'] },
      'invalid_client_metadata',
      'unsupported_grant_type',
    ],
    [
      'refresh_token alone',
      { ...web, grant_types: ['refresh_token'] },
      'invalid_client_metadata',
      'authorization_code_required',
    ],
    ['empty grant_types', { ...web, grant_types: [] }, 'invalid_client_metadata', 'grant_types_invalid'],
    [
      'token response type',
      { ...web, response_types: ['token'] },
      'invalid_client_metadata',
      'unsupported_response_type',
    ],
    [
      'code id_token',
      { ...web, response_types: ['code', 'code id_token'] },
      'invalid_client_metadata',
      'unsupported_response_type',
    ],
    [
      'client_name too long',
      { ...web, client_name: long(201) },
      'invalid_client_metadata',
      'client_name_invalid',
    ],
    [
      'client_name not a string',
      { ...web, client_name: { en: 'x' } },
      'invalid_client_metadata',
      'client_name_invalid',
    ],
    ['client_name blank', { ...web, client_name: '   ' }, 'invalid_client_metadata', 'client_name_invalid'],
    [
      'client_name with control characters',
      { ...web, client_name: 'a\u0000b' },
      'invalid_client_metadata',
      'client_name_invalid',
    ],
    [
      'client_uri javascript',
      { ...web, client_uri: 'javascript:alert(1)' },
      'invalid_client_metadata',
      'client_uri_invalid',
    ],
    [
      'logo_uri http',
      { ...web, logo_uri: 'http://cdn.example/logo.png' },
      'invalid_client_metadata',
      'logo_uri_invalid',
    ],
    ['tos_uri relative', { ...web, tos_uri: '/tos' }, 'invalid_client_metadata', 'tos_uri_invalid'],
    [
      'policy_uri with userinfo',
      { ...web, policy_uri: 'https://a@b.example/p' },
      'invalid_client_metadata',
      'policy_uri_invalid',
    ],
    [
      'overlong client_uri',
      { ...web, client_uri: `https://a.example/${long(2000)}` },
      'invalid_client_metadata',
      'client_uri_invalid',
    ],
    ['scope with a quote', { ...web, scope: 'read "write"' }, 'invalid_client_metadata', 'scope_invalid'],
    ['scope too long', { ...web, scope: long(1001) }, 'invalid_client_metadata', 'scope_invalid'],
    [
      'contacts not an array',
      { ...web, contacts: 'a@b.example' },
      'invalid_client_metadata',
      'contacts_invalid',
    ],
    [
      'too many contacts',
      { ...web, contacts: Array.from({ length: 11 }, (_, i) => `${i}@b.example`) },
      'invalid_client_metadata',
      'contacts_invalid',
    ],
    [
      'software_id too long',
      { ...web, software_id: long(201) },
      'invalid_client_metadata',
      'software_id_invalid',
    ],
    [
      'software_version a number',
      { ...web, software_version: 2 },
      'invalid_client_metadata',
      'software_version_invalid',
    ],
  ];

  // req: RFC7591-3.2.2-ERRORS
  it.each(cases)('%s', (_name, input, code, reason) => {
    const error = failure(input);
    expect(error.code).toBe(code);
    expect(error.status).toBe(400);
    expect(error.reason).toBe(reason);
  });
});

describe('parseClientMetadata — redirect schemes (RFC 8252 §7.1, RFC 9700 §4.11.2)', () => {
  const modes: ClientMetadataMode[] = ['registration', 'metadata-document'];
  const withUri = (uri: string) => ({ client_name: 'App', redirect_uris: [uri] });

  // Handed to the operating system or a browser internal: code execution on a click (CVE-2022-30190
  // ms-msdt, search-ms, ms-officecmd), NTLM leaks (file, smb), or browser internals and extensions.
  it.each([
    'ms-msdt:/id',
    'search-ms:query=x',
    'search:query=x',
    'ms-officecmd:open',
    'ms-settings:privacy',
    'ms-appinstaller:?source=https://attacker.example/a.msix',
    'jar:https://attacker.example/a.jar!/',
    'chrome-extension://abcdefghijklmnop/cb',
    'chrome://settings',
    'moz-extension://abc/cb',
    'edge://settings',
    'microsoft-edge:https://attacker.example/',
    'x-apple.systempreferences:com.apple.preference.security',
    'itms-services://?action=download-manifest',
    'intent://scan/',
    'javascript:alert(1)',
    'vbscript:msgbox',
    'data:text/html,x',
    'file:///etc/passwd',
    'smb://attacker.example/share',
    'shell:startup',
    'hcp://system/x',
    'ms-its:x.chm::/a.htm',
    'web+mastodon://share',
    'view-source:https://a.example',
  ])('refuses %s in both modes', (uri) => {
    for (const mode of modes) {
      const error = failure(withUri(uri), mode);
      expect(error.code, `${uri} (${mode})`).toBe('invalid_redirect_uri');
      expect(error.reason, `${uri} (${mode})`).toBe('redirect_uri_scheme');
    }
  });

  it.each([
    'cursor://anysphere.cursor-mcp/oauth/callback',
    'vscode://vscode.github-authentication/did-authenticate',
    'vscode-insiders://vscode.github-authentication/did-authenticate',
    'windsurf://codeium.windsurf/auth',
    'com.example.app:/oauth2redirect',
    'io.modelcontextprotocol.inspector:/cb',
  ])('accepts the app scheme %s in both modes', (uri) => {
    for (const mode of modes) {
      expect(parseClientMetadata(withUri(uri), { mode }).redirectUris).toEqual([uri]);
    }
  });
});

describe('parseClientMetadata — display text', () => {
  it('strips bidi controls and invisible characters from client_name (RFC 7591 §3.2.1 lets the server replace values)', () => {
    const metadata = parseClientMetadata(
      { ...web, client_name: 'Claude\u202Egnp.exe\u200B', software_id: '\u2066id\u2069' },
      { mode: 'registration' },
    );
    expect(metadata.clientName).toBe('Claudegnp.exe');
    expect(metadata.softwareId).toBe('id');
  });

  it('refuses a client_name that is nothing but invisible characters', () => {
    const error = failure({ ...web, client_name: '\u202E\u200B\uFEFF' });
    expect(error.code).toBe('invalid_client_metadata');
    expect(error.reason).toBe('client_name_invalid');
  });
});

describe('parseClientMetadata — metadata documents', () => {
  const document = {
    client_id: 'https://app.example.com/oauth/client.json',
    client_name: 'Example MCP Client',
    redirect_uris: ['http://127.0.0.1:3000/callback', 'http://localhost:3000/callback'],
  };

  it('defaults to the public method none', () => {
    const metadata = parseClientMetadata(document, { mode: 'metadata-document' });
    expect(metadata.tokenEndpointAuthMethod).toBe('none');
    expect(metadata.applicationType).toBe('native');
  });

  // req: CIMD-NO-SHARED-SECRETS
  it.each([
    [
      'client_secret_basic',
      { ...document, token_endpoint_auth_method: 'client_secret_basic' },
      'secret_auth_in_document',
    ],
    [
      'client_secret_post',
      { ...document, token_endpoint_auth_method: 'client_secret_post' },
      'secret_auth_in_document',
    ],
    [
      'client_secret_jwt',
      { ...document, token_endpoint_auth_method: 'client_secret_jwt' },
      'secret_auth_in_document',
    ],
    [
      'private_key_jwt (not supported yet)',
      { ...document, token_endpoint_auth_method: 'private_key_jwt' },
      'unsupported_auth_method',
    ],
    ['a client_secret', { ...document, client_secret: 'shh' }, 'secret_in_document'],
    ['client_secret_expires_at', { ...document, client_secret_expires_at: 0 }, 'secret_in_document'],
    [
      'no client_name',
      { client_id: document.client_id, redirect_uris: document.redirect_uris },
      'client_name_required',
    ],
  ])('refuses %s', (_name, input, reason) => {
    const error = failure(input, 'metadata-document');
    expect(error.code).toBe('invalid_client_metadata');
    expect(error.reason).toBe(reason);
  });

  it('the same secret-based methods are fine at registration', () => {
    expect(
      parseClientMetadata(
        { ...document, token_endpoint_auth_method: 'client_secret_post' },
        { mode: 'registration' },
      ).tokenEndpointAuthMethod,
    ).toBe('client_secret_post');
  });
});

describe('toClientRecord and toWireMetadata', () => {
  it('round-trips the metadata into a ClientRecord with the wire form kept', () => {
    const metadata = parseClientMetadata(
      { ...web, token_endpoint_auth_method: 'none', client_name: 'A', scope: 'read' },
      { mode: 'registration' },
    );
    const record = toClientRecord(metadata, { clientId: 'abc', createdAt: 1000 });
    expect(record).toEqual({
      clientId: 'abc',
      tokenEndpointAuthMethod: 'none',
      redirectUris: ['https://app.example.com/callback'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      applicationType: 'web',
      clientName: 'A',
      scope: 'read',
      metadata: toWireMetadata(metadata),
      createdAt: 1000,
    });
    expect(record.metadata).toEqual({
      redirect_uris: ['https://app.example.com/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      application_type: 'web',
      client_name: 'A',
      scope: 'read',
    });
    expect('secretHash' in record).toBe(false);
  });
});

describe('preRegisteredClientSchema', () => {
  const secret = 's'.repeat(32);

  it('turns a confidential configured client into a record holding only the secret hash', () => {
    const client = preRegisteredClientSchema.parse({
      clientId: 'internal-tool',
      clientSecret: secret,
      redirectUris: ['https://tool.example/cb'],
      clientName: 'Internal tool',
    });
    const record = preRegisteredToClientRecord(client);
    expect(record.secretHash).toBe(tokenHash(secret));
    expect(JSON.stringify(record)).not.toContain(secret);
    expect(record.tokenEndpointAuthMethod).toBe('client_secret_basic');
    expect(record.grantTypes).toEqual(['authorization_code', 'refresh_token']);
    expect(record.clientName).toBe('Internal tool');
  });

  it('defaults a configured client without a secret to the public method none', () => {
    const record = preRegisteredToClientRecord(
      preRegisteredClientSchema.parse({ clientId: 'cli', redirectUris: ['http://127.0.0.1/cb'] }),
    );
    expect(record.tokenEndpointAuthMethod).toBe('none');
    expect(record.secretHash).toBeUndefined();
    expect(record.applicationType).toBe('native');
  });

  it.each([
    [
      'short secret',
      { clientId: 'a', clientSecret: 'short', redirectUris: ['https://a.example/cb'] },
      'clientSecret',
    ],
    [
      'secret method without secret',
      {
        clientId: 'a',
        tokenEndpointAuthMethod: 'client_secret_post',
        redirectUris: ['https://a.example/cb'],
      },
      'clientSecret',
    ],
    [
      'secret with method none',
      {
        clientId: 'a',
        clientSecret: secret,
        tokenEndpointAuthMethod: 'none',
        redirectUris: ['https://a.example/cb'],
      },
      'clientSecret',
    ],
    [
      'bad redirect',
      { clientId: 'a', redirectUris: ['https://ok.example/cb', 'http://a.example/cb'] },
      'redirectUris.1',
    ],
    ['no redirects', { clientId: 'a', redirectUris: [] }, 'redirectUris'],
    ['empty client id', { clientId: '', redirectUris: ['https://a.example/cb'] }, 'clientId'],
    [
      'client id with control characters',
      { clientId: 'a\nb', redirectUris: ['https://a.example/cb'] },
      'clientId',
    ],
    [
      'unknown grant',
      { clientId: 'a', redirectUris: ['https://a.example/cb'], grantTypes: ['implicit'] },
      'grantTypes.0',
    ],
  ])('reports %s by path', (_name, input, path) => {
    const result = preRegisteredClientSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toContain(path);
  });
});
