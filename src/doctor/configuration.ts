import { isDevelopmentUnderProductionEnv, productionIssues } from '../config/production.js';
import type { GatehouseConfig } from '../config/schema.js';
import type { DoctorCheck } from './check.js';

/** `config`: the configuration loaded; what it is, in one line. */
export function configCheck(config: GatehouseConfig): DoctorCheck {
  return {
    id: 'config',
    status: 'ok',
    summary: `configuration loads (mode ${config.mode}, store ${config.store.kind}, ${config.auth.verifiers.length} external verifier(s))`,
  };
}

/**
 * `mode`, only when `NODE_ENV=production` runs an explicit `mode: development`: a warning as loud as the
 * one `gatehouse serve` prints, since development tokens and every production refusal are then off.
 */
export function modeCheck(
  config: GatehouseConfig,
  env: Readonly<Record<string, string | undefined>>,
): DoctorCheck | undefined {
  if (!isDevelopmentUnderProductionEnv(config, env)) return undefined;
  return {
    id: 'mode',
    status: 'warn',
    summary:
      'DEVELOPMENT MODE although NODE_ENV=production: development tokens are accepted and nothing production mode refuses is refused',
    details: { reason: 'development_under_node_env_production', nodeEnv: 'production' },
    hints: ['remove mode: development (config file, GATEHOUSE_MODE) to run in production mode'],
  };
}

/**
 * `production`: what `mode: production` refuses to start with — the one list `assertProductionReady`
 * refuses on (settings, secrets, local files), so `gatehouse doctor` fails exactly what `serve` refuses.
 * A failure in production mode, a warning in development.
 */
export function productionCheck(config: GatehouseConfig): DoctorCheck {
  const issues = productionIssues(config);
  if (issues.length === 0) {
    return { id: 'production', status: 'ok', summary: 'nothing production mode would refuse' };
  }
  const codes = issues.map((issue) => issue.code).join(', ');
  const production = config.mode === 'production';
  return {
    id: 'production',
    status: production ? 'fail' : 'warn',
    summary: production
      ? `production mode refuses to start: ${codes}`
      : `fine for development; production mode would refuse: ${codes}`,
    details: { issues },
    hints: issues.map((issue) => `${issue.path}: ${issue.message}`),
  };
}
