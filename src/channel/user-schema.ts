// The shape of Channel Talk's `GET /open/v5/users/@{memberId}` answer (OpenAPI `open.v5.UserView`, whose
// `user` is `open.OpenApiUserDto`). Only the fields the repair reads are typed; the objects are loose so every
// other field survives untouched into the replayed webhook's `entity`.
//
// The OpenAPI document marks every field optional and none nullable, yet `null` turns up anywhere. So only what the
// repair decides on must parse: the four compared fields, `profile` (their fallback) and `type` (unified users). A
// field it does not use (`name`, `tags`, `createdAt`, `unifiedId`, `avatarUrl`, `web`, ...) is passed through as
// it came, whatever it holds; the change times a report reads are kept when they are numbers and dropped otherwise.
// The parsed copy only checks: the client hands on the user exactly as it came (every key and null, for the
// replay's `entity`), and the repair reads its change times through a number check.
// A mismatch in a field that must parse will not change on retry: the client fails the member once (client.ts).
import { z } from 'zod';
import type { ChannelUser } from '../domain/types';

/** An epoch-ms change time, or undefined when missing, null or not a finite number (never a reason to fail). */
const changeTime = z
  .unknown()
  .transform((v): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined))
  .optional();

export const channelUserSchema = z.looseObject({
  // A plain string, not the documented enum: an unknown future type must not make every lookup "malformed".
  // null = no type, as absent.
  type: z
    .string()
    .nullish()
    .transform((v) => v ?? undefined),
  // A cleared contact or consent is plausibly serialised as null rather than omitted.
  email: z.string().nullable().optional(),
  mobileNumber: z.string().nullable().optional(),
  unsubscribeEmail: z.boolean().nullable().optional(),
  unsubscribeTexting: z.boolean().nullable().optional(),
  profile: z.record(z.string(), z.unknown()).nullable().optional(),
  updatedAt: changeTime,
  unsubscribeEmailUpdatedAt: changeTime,
  unsubscribeTextingUpdatedAt: changeTime,
});

export const userResponseSchema = z.looseObject({
  user: channelUserSchema,
  // `online` is an object or null; nothing reads it, so it is not checked.
  online: z.unknown().optional(),
});

export type ChannelUserParsed = z.infer<typeof channelUserSchema>;
export type UserResponse = z.infer<typeof userResponseSchema>;

/** The fields of a user that must parse (anything else may hold anything). */
export const PARSED_USER_FIELDS = [
  'type',
  'email',
  'mobileNumber',
  'unsubscribeEmail',
  'unsubscribeTexting',
  'profile',
] as const;

// Compile-time guard: a parsed user must be usable wherever src/domain/types.ts expects a ChannelUser.
const parsedUserIsChannelUser = (u: ChannelUserParsed): ChannelUser => u;
void parsedUserIsChannelUser;
