import { describeAuditStoreContract } from './audit.contract.js';
import { forEachEngine } from './engines.js';

forEachEngine((engine) => describeAuditStoreContract(engine.name, engine.harness, engine.options));
