// How a member source is named in the Web UI's memo and the CLI's summary: its type and its file or table, never
// SQL text, a connection string or personal data. Pure, so the workflow names a run prepared before sources named
// themselves (PreparedBackfill.sourceLabel) with the same words.

/** `csv: /data/members.csv`, `postgres: public.members`, `postgres: query`, `mysql: members`. */
export function sourceLabel(spec: { type: string; path?: string; table?: string }): string {
  return `${spec.type}: ${spec.path ?? spec.table ?? 'query'}`;
}
