import { z } from 'zod';
import { MEMBER_COLUMNS, type MemberColumn } from '../domain/types';

/**
 * A SQL source's optional `columns`: for each member column (memberId and the compared fields), the name it has in
 * the table, checked by the database's own identifier rule (`columnName`). Unknown keys are rejected.
 */
export function columnMapSchema(columnName: z.ZodType<string>) {
  const shape = Object.fromEntries(MEMBER_COLUMNS.map((column) => [column, columnName.optional()])) as Record<
    MemberColumn,
    z.ZodOptional<z.ZodType<string>>
  >;
  return z.object(shape).strict().optional();
}
