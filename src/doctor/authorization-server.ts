import { isLoopbackHost } from '../config/production.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { GatewayUrls } from '../config/urls.js';
import type { DoctorCheck } from './check.js';

/** `authorizationServer`: the URLs Gatehouse's own authorization server publishes, and whether clients can trust them. */
export function authorizationServerCheck(config: GatehouseConfig, urls: GatewayUrls): DoctorCheck {
  const publicUrl = new URL(urls.publicUrl);
  const problems: string[] = [];
  if (publicUrl.protocol !== 'https:' && !isLoopbackHost(publicUrl.hostname)) {
    problems.push(`public URL ${urls.publicUrl} is not https`);
  }
  if (!urls.issuer.startsWith(urls.publicUrl)) {
    problems.push(`issuer ${urls.issuer} is not under the public URL ${urls.publicUrl}`);
  }
  if (config.server.publicUrl === undefined) {
    problems.push('server.publicUrl is not set (derived from host and port)');
  }
  return {
    id: 'authorizationServer',
    status: problems.length > 0 ? 'warn' : 'ok',
    summary: problems.length > 0 ? problems.join('; ') : `issuer ${urls.issuer}, resource ${urls.resource}`,
    details: { publicUrl: urls.publicUrl, issuer: urls.issuer, resource: urls.resource },
  };
}
