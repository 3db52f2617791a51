// `koa-sse-server/testing`: what a user needs to test code of their own against this package,
// kept out of the main entry (it loads node:assert).
export { runStoreContract, storeContract } from './qos/store-contract.js';
export type { MakeStore, StoreContractCaps, StoreContractCase } from './qos/store-contract.js';
