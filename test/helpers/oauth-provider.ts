import { type SignInResult, type SignInUser, signIn } from './oauth.js';

/**
 * An in-memory OAuth client provider with the shape both SDK generations expect (`OAuthClientProvider`
 * in `@modelcontextprotocol/sdk/client/auth.js` and `@modelcontextprotocol/client`). When the SDK sends
 * the user to the authorization URL, the form-filling user agent signs in and consents; the test then
 * hands the callback to `transport.finishAuth`.
 */
export class TestOAuthProvider {
  clientInfo: Record<string, unknown> | undefined;
  savedTokens: { access_token: string; refresh_token?: string; [key: string]: unknown } | undefined;
  verifier = '';
  /** The sign-in started by the latest redirect. */
  pending: Promise<SignInResult> | undefined;
  readonly redirects: URL[] = [];
  readonly clientMetadataUrl: string | undefined;

  constructor(
    private readonly user: SignInUser,
    readonly redirectUrl = 'http://127.0.0.1:53682/callback',
    options: { clientMetadataUrl?: string; clientName?: string } = {},
  ) {
    this.clientMetadataUrl = options.clientMetadataUrl;
    this.clientName = options.clientName ?? 'Gatehouse SDK test';
  }
  private readonly clientName: string;

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.clientInfo as never;
  }
  saveClientInformation(info: Record<string, unknown>) {
    this.clientInfo = info;
  }
  tokens() {
    return this.savedTokens as never;
  }
  saveTokens(tokens: { access_token: string; refresh_token?: string }) {
    this.savedTokens = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.redirects.push(url);
    this.pending = signIn(url, this.user);
    // The SDK does not await this; keep the rejection observed until the test awaits `pending`.
    this.pending.catch(() => undefined);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}
