// One interface for every kind of member source (a CSV or JSONL file, a PostgreSQL table or query, a MySQL table). Each kind is
// one module implementing MemberSource, registered in ./source-kinds.ts; nothing else switches on `source.type`.
import type { z } from 'zod';
import type { SourceEntry } from '../domain/types';

/** What a source kind may take from the worker (never from the workflow input). */
export interface SourceWorkerSettings {
  /** BACKFILL_SOURCE_DIRS: when set, a file source must lie under one of them. */
  sourceDirs?: readonly string[] | undefined;
  /** BACKFILL_DATABASE_URL: a database source's connection string. */
  databaseUrl?: string | undefined;
  /** BACKFILL_MYSQL_URL: a MySQL/MariaDB source's connection string. */
  mysqlUrl?: string | undefined;
}

export interface MemberSource<Spec extends { type: string }, Resolved extends { type: string }> {
  /** The `type` values of the workflow input this kind reads. */
  readonly types: readonly Spec['type'][];
  /** The input as users write it: the one validation of it, where the workflow input enters (src/workflow-input.ts). */
  readonly inputSchema: z.ZodType<Spec>;
  /**
   * What the worker reads: paths resolved, worker settings added. Checked before anything is created; a problem is
   * one line naming the input key (the run stops with "invalid workflow input: <problem>").
   */
  resolve(spec: Spec, worker: SourceWorkerSettings): Resolved | { problem: string };
  /** The rows in source order, in chunks (see readSource in ./read-source.ts for lines, skips and errors). */
  read(spec: Resolved): AsyncIterable<SourceEntry[]>;
  /** The source in the Web UI's memo: never personal data, SQL text or a connection string. */
  describe(spec: Spec): string;
}
