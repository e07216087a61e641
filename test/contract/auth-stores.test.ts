import { describeClientStoreContract } from './clients.contract.js';
import { describeAuthorizationCodeStoreContract } from './codes.contract.js';
import { describeConsentStoreContract } from './consents.contract.js';
import { describeCounterStoreContract } from './counters.contract.js';
import { describeEphemeralStoreContract } from './ephemeral.contract.js';
import { describeGrantStoreContract } from './grants.contract.js';
import { memoryHarness, type StoreContractOptions, type StoresHarness, sqliteHarness } from './harness.js';
import { describeRevocationStoreContract } from './revocations.contract.js';
import { describeSigningKeyStoreContract } from './signing-keys.contract.js';
import { describeUpstreamTokenStoreContract } from './upstream-tokens.contract.js';
import { describeUserStoreContract } from './users.contract.js';

type Contract = (
  name: string,
  makeStores: () => Promise<StoresHarness>,
  options?: StoreContractOptions,
) => void;

/** Every authorization-server port; each runs against every adapter below. */
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
  describeCounterStoreContract,
];

for (const describeContract of CONTRACTS) {
  describeContract('memory', memoryHarness);
  describeContract('sqlite', sqliteHarness(), { durable: true });
  describeContract('sqlite, races across two connections', sqliteHarness(), {
    durable: true,
    twoConnections: true,
  });
  describeContract(
    'sqlite, caller connection defaulting to BigInt',
    sqliteHarness({ bigIntConnection: true }),
    {
      durable: true,
    },
  );
}
