import { randomBytes } from 'node:crypto';
import type {
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthClientInformation,
  StoredOAuthTokens,
} from '@modelcontextprotocol/client';

export interface RecordingOAuthProviderOptions {
  /** The client's redirect URI. */
  readonly redirectUrl: string;
  /** `client_name` in the registration. Default `Gatehouse SDK test`. */
  readonly clientName?: string;
  /** An https URL with a path: the SDK then uses it as `client_id` when the server supports CIMD. */
  readonly clientMetadataUrl?: string;
  /** "Opens the browser" at the authorization URL (a Chromium page, say). Default: only record it. */
  readonly open?: (url: URL) => Promise<unknown>;
}

/**
 * A typed v2 (`@modelcontextprotocol/client`) `OAuthClientProvider` kept in memory. It sends a `state`,
 * persists discovery state (so v2 checks on the callback leg that the code comes from the issuer the flow
 * started with), records every authorization URL and hands it to `open`.
 */
export class RecordingOAuthProvider implements OAuthClientProvider {
  clientInfo: StoredOAuthClientInformation | undefined;
  savedTokens: StoredOAuthTokens | undefined;
  discovery: OAuthDiscoveryState | undefined;
  verifier = '';
  readonly authorizationUrls: URL[] = [];
  readonly stateValue = randomBytes(16).toString('base64url');
  readonly redirectUrl: string;
  readonly clientMetadataUrl: string | undefined;
  private readonly clientName: string;
  private readonly open: ((url: URL) => Promise<unknown>) | undefined;

  constructor(options: RecordingOAuthProviderOptions) {
    this.redirectUrl = options.redirectUrl;
    this.clientMetadataUrl = options.clientMetadataUrl;
    this.clientName = options.clientName ?? 'Gatehouse SDK test';
    this.open = options.open;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return this.stateValue;
  }
  clientInformation() {
    return this.clientInfo;
  }
  saveClientInformation(info: StoredOAuthClientInformation) {
    this.clientInfo = info;
  }
  tokens() {
    return this.savedTokens;
  }
  saveTokens(tokens: StoredOAuthTokens) {
    this.savedTokens = tokens;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    await this.open?.(url);
  }
}
