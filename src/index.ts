// The package's public API for receivers of replayed webhooks: checking Standard Webhooks signatures, and the
// shape of what arrives. Importing it loads nothing but node:crypto (no Temporal, no HTTP client).
export {
  verifyWebhookSignature,
  assertWebhookSignature,
  signWebhook,
  signingKey,
  WebhookVerificationError,
  DEFAULT_TOLERANCE_SECONDS,
  SIGNING_SECRET_PREFIX,
  type VerifyWebhookSignatureInput,
  type WebhookVerificationResult,
  type WebhookVerificationFailure,
  type HeaderSource,
} from './webhook/signature';
export type { ReplayPayload } from './webhook/payload';
export type { ChannelUser, WebhookEvent } from './domain/types';
