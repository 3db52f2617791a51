// Type-level check, run by `npm run typecheck`: prom-client's Registry (both content types)
// must fit the MetricsRegistry interface the published types declare instead of importing it.
import type { OpenMetricsContentType, Registry } from 'prom-client';
import type { MetricsRegistry } from '../../lib/index.js';

type Assert<T extends true> = T;
export type PromRegistryFits = Assert<
  Registry extends MetricsRegistry ? (Registry<OpenMetricsContentType> extends MetricsRegistry ? true : false) : false
>;
