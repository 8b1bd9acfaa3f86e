import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import type { Logger, LogLevel, MetricMeter } from '@temporalio/common';
import type { OutcomeKind } from './domain/types';
import type { Verdict } from './domain/verdicts';

// Logs and metrics of a worker. Logs are one JSON object per line (run, activity, batch, memberId:
// never an email, phone, token or key: nothing logged here carries one); metrics go to Prometheus
// through the Temporal SDK's own runtime, next to the SDK's metrics, when an address is configured.

export interface ObservabilityConfig {
  LOG_LEVEL: LogLevel;
  LOG_FORMAT: 'json' | 'text';
  BACKFILL_METRICS_ADDRESS?: string;
}

/** JSON lines: what log collectors parse without a pattern. BigInts and errors made serialisable. */
export function jsonLogLine(entry: LogEntry): string {
  const { message, level, timestampNanos, meta } = entry;
  const record: Record<string, unknown> = {
    ts: new Date(Number(timestampNanos / 1_000_000n)).toISOString(),
    level,
    message,
  };
  for (const [key, value] of Object.entries(meta ?? {})) {
    record[key] =
      value instanceof Error
        ? { name: value.name, message: value.message }
        : typeof value === 'bigint'
          ? value.toString()
          : value;
  }
  return JSON.stringify(record);
}

/** Must run before any connection is made: the runtime is process-wide. */
export function installRuntime(config: ObservabilityConfig): void {
  const logger =
    config.LOG_FORMAT === 'json'
      ? new DefaultLogger(config.LOG_LEVEL, (entry) => process.stderr.write(`${jsonLogLine(entry)}\n`))
      : new DefaultLogger(config.LOG_LEVEL);
  Runtime.install({
    logger,
    ...(config.BACKFILL_METRICS_ADDRESS
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress: config.BACKFILL_METRICS_ADDRESS, countersTotalSuffix: true } },
          },
        }
      : {}),
  });
}

/** The job's own counters, beside the SDK's. */
export interface JobMetrics {
  /** A repair run's member, by its recorded outcome. */
  outcome(kind: OutcomeKind, detail?: string): void;
  /** A verify run's member, by its verdict (never counted as an outcome: a verify run repairs nothing). */
  verdict(verdict: Verdict): void;
  delivery(result: 'delivered' | 'rejected' | 'deferred'): void;
  apiRateLimited(): void;
  /** An answer carried x-ratelimit-will-be-throttled: true (Channel Talk's grace period). */
  apiThrottleWarning(): void;
}

export function createJobMetrics(meter: MetricMeter): JobMetrics {
  const outcomes = meter.createCounter(
    'backfill_outcomes',
    'members',
    'Members by recorded outcome (decision, failed, skipped)',
  );
  const verdicts = meter.createCounter(
    'backfill_verdicts',
    'members',
    'Members a verify run checked, by verdict (repaired, still differs, still present, changed since, failed)',
  );
  const deliveries = meter.createCounter(
    'backfill_deliveries',
    'requests',
    'Replays by result: delivered, rejected (4xx), deferred to their own activity',
  );
  const rateLimited = meter.createCounter(
    'backfill_api_rate_limited',
    'responses',
    'HTTP 429 answers from the Channel Talk API',
  );
  const throttleWarnings = meter.createCounter(
    'backfill_api_throttle_warnings',
    'responses',
    'Channel Talk API answers carrying x-ratelimit-will-be-throttled: true (over the limit in the grace period)',
  );
  return {
    outcome: (kind, detail) => outcomes.add(1, { outcome: kind, ...(detail ? { detail } : {}) }),
    verdict: (verdict) => verdicts.add(1, { verdict }),
    delivery: (result) => deliveries.add(1, { result }),
    apiRateLimited: () => rateLimited.add(1),
    apiThrottleWarning: () => throttleWarnings.add(1),
  };
}

/** For tests and tools that run without metrics. */
export const noMetrics: JobMetrics = {
  outcome: () => undefined,
  verdict: () => undefined,
  delivery: () => undefined,
  apiRateLimited: () => undefined,
  apiThrottleWarning: () => undefined,
};

/**
 * Whether a debug line given to `logger` can be written: the worker's runtime logger (`Runtime.instance().logger`,
 * where activity log lines end up), asked once when the worker is built. A DefaultLogger's public `level`
 * decides; any other logger: yes (it filters for itself).
 */
export function debugEnabled(logger: Logger): boolean {
  if (logger instanceof DefaultLogger) return logger.level === 'TRACE' || logger.level === 'DEBUG';
  return true;
}
