// Every kind of member source, registered here and only here: the workflow input's `source` is validated by the
// kind its `type` names, resolved on the worker, read and described through it. A new kind is one module
// implementing MemberSource (./member-source.ts) and one line in SOURCE_KINDS.
import { z } from 'zod';
import type { SourceSpec } from '../../workflows/definitions';
import type { SourceEntry } from '../domain/types';
import { SourceConfigError } from './errors';
import { fileSource } from './file-source';
import type { MemberSource, SourceWorkerSettings } from './member-source';
import { mysqlSource, type MysqlSourceRead } from './mysql-source';
import { postgresSource, type PostgresSourceRead } from './postgres-source';

export const SOURCE_KINDS = [fileSource, postgresSource, mysqlSource] as const;

/** A source as the worker reads it: a file's resolved path, a database's connection string added. */
export type ResolvedSource = SourceSpec | PostgresSourceRead | MysqlSourceRead;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has its own spec types; callers hold the union
type AnyKind = MemberSource<any, any>;

function kindOf(type: unknown): AnyKind | undefined {
  return (SOURCE_KINDS as readonly AnyKind[]).find((kind) => kind.types.includes(type as string));
}

const ALL_TYPES = SOURCE_KINDS.flatMap((kind) => kind.types as readonly string[]);
const quotedTypes = `${ALL_TYPES.slice(0, -1)
  .map((t) => JSON.stringify(t))
  .join(', ')} or ${JSON.stringify(ALL_TYPES.at(-1))}`;

/**
 * The workflow input's `source`, checked by the schema of the kind its `type` names. An unknown or missing type is
 * checked by the first kind's schema (the file source), so a bad type and a missing path are reported together and
 * the message lists every type.
 */
export const sourceInputSchema = z.unknown().transform((raw, ctx): SourceSpec => {
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  const kind = kindOf(type) ?? SOURCE_KINDS[0];
  const result = kind.inputSchema.safeParse(raw);
  if (result.success) return result.data as SourceSpec;
  for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  return z.NEVER;
});

/** The source the worker reads, or the one-line problem that stops the run before anything is created. */
export function resolveSource(spec: SourceSpec, worker: SourceWorkerSettings): ResolvedSource | { problem: string } {
  return kindOf(spec.type)!.resolve(spec, worker) as ResolvedSource | { problem: string };
}

/** How the Web UI's memo names the source. */
export function describeSource(spec: SourceSpec): string {
  return kindOf(spec.type)!.describe(spec);
}

/** The rows of a resolved source in chunks; an unknown type (untyped input that skipped validation) is an error. */
export function readSourceChunks(spec: ResolvedSource): AsyncIterable<SourceEntry[]> {
  const kind = kindOf(spec.type);
  if (!kind) {
    const label = String((spec as { path?: unknown }).path ?? 'source');
    return (async function* () {
      yield* [] as SourceEntry[][];
      throw new SourceConfigError(label, `unknown source type ${JSON.stringify(spec.type)} (expected ${quotedTypes})`);
    })();
  }
  return kind.read(spec);
}
