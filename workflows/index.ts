// The worker bundles this file: it lists every workflow the task queue serves.
export { backfillWebhooks } from './backfill';
