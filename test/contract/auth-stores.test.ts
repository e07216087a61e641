import { describeClusterBusContract } from './bus.contract.js';
import { describeClientStoreContract } from './clients.contract.js';
import { describeAuthorizationCodeStoreContract } from './codes.contract.js';
import { describeConsentStoreContract } from './consents.contract.js';
import { describeCounterStoreContract } from './counters.contract.js';
import { forEachEngine } from './engines.js';
import { describeEphemeralStoreContract } from './ephemeral.contract.js';
import { describeGrantStoreContract } from './grants.contract.js';
import type { StoreContractOptions, StoresHarness } from './harness.js';
import { describeRateLimiterContract } from './rate-limiters.contract.js';
import { describeRevocationStoreContract } from './revocations.contract.js';
import { describeSigningKeyStoreContract } from './signing-keys.contract.js';
import { describeUpstreamTokenStoreContract } from './upstream-tokens.contract.js';
import { describeUserStoreContract } from './users.contract.js';

type Contract = (
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options?: StoreContractOptions,
) => void;

/** Every authorization-server port; each runs against every engine (see `engines.ts`). */
const CONTRACTS: readonly Contract[] = [
  describeUserStoreContract,
  describeClientStoreContract,
  describeAuthorizationCodeStoreContract,
  describeGrantStoreContract,
  describeRevocationStoreContract,
  describeConsentStoreContract,
  describeUpstreamTokenStoreContract,
  describeSigningKeyStoreContract,
  describeEphemeralStoreContract,
];

forEachEngine((engine) => {
  for (const describeContract of CONTRACTS) describeContract(engine.name, engine.harness, engine.options);
  describeCounterStoreContract(engine.name, engine.harness, {
    ...engine.options,
    withoutSweep: engine.nativeExpiry === true,
  });
  describeRateLimiterContract(engine.name, engine.harness, { ...engine.options, perProcess: !engine.shared });
  // The bus needs two connections to the same data, so it runs once per shared engine.
  if (engine.shared && engine.options.twoConnections) describeClusterBusContract(engine.name, engine.harness);
});
