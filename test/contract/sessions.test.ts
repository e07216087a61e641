import { memoryHarness, sqliteHarness } from './harness.js';
import { describeSessionStoreContract } from './sessions.contract.js';

describeSessionStoreContract('memory', memoryHarness);
describeSessionStoreContract('sqlite', sqliteHarness(), { durable: true });
describeSessionStoreContract('sqlite, races across two connections', sqliteHarness(), {
  durable: true,
  twoConnections: true,
});
