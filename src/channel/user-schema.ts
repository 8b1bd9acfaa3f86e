// The shape of Channel Talk's `GET /open/v5/users/@{memberId}` answer (OpenAPI `open.v5.UserView`, whose
// `user` is `open.OpenApiUserDto`). Only the fields the repair reads are typed; the objects are loose so every
// other field survives untouched into the replayed webhook's `entity`.
import { z } from 'zod';
import type { ChannelUser } from '../types';

// Fields the OpenAPI document lists but marks neither required nor nullable. `null` is accepted wherever the
// repair compares a value, because a cleared contact or consent is plausibly serialised as null rather than omitted.
export const channelUserSchema = z.looseObject({
  id: z.string().optional(),
  channelId: z.string().optional(),
  memberId: z.string().optional(),
  veilId: z.string().optional(),
  unifiedId: z.string().optional(),
  // A plain string, not the documented enum: an unknown future type must not make every lookup "malformed".
  type: z.string().optional(),
  name: z.string().optional(),
  email: z.string().nullable().optional(),
  mobileNumber: z.string().nullable().optional(),
  unsubscribeEmail: z.boolean().nullable().optional(),
  unsubscribeTexting: z.boolean().nullable().optional(),
  unsubscribeEmailUpdatedAt: z.number().optional(),
  unsubscribeTextingUpdatedAt: z.number().optional(),
  createdAt: z.number().optional(),
  updatedAt: z.number().optional(),
  profile: z.record(z.string(), z.unknown()).nullable().optional(),
  tags: z.array(z.string()).optional(),
});

export const userResponseSchema = z.looseObject({
  user: channelUserSchema,
  // `online` is an object or null; nothing reads it, so it is not checked.
  online: z.unknown().optional(),
});

export type ChannelUserParsed = z.infer<typeof channelUserSchema>;
export type UserResponse = z.infer<typeof userResponseSchema>;

// Compile-time guard: a parsed user must be usable wherever src/types.ts expects a ChannelUser.
const parsedUserIsChannelUser = (u: ChannelUserParsed): ChannelUser => u;
void parsedUserIsChannelUser;
