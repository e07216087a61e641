import { forEachEngine } from './engines.js';
import { describeSessionStoreContract } from './sessions.contract.js';

forEachEngine((engine) => describeSessionStoreContract(engine.name, engine.harness, engine.options));
