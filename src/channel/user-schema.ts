// The check of Channel Talk's `GET /open/v5/users/@{memberId}` answer (OpenAPI `open.v5.UserView`, whose `user` is
// `open.OpenApiUserDto`). It only checks: the client hands on the user exactly as it came (every key and null, for
// the replay's `entity`, issue 23), so the check builds no copy of it.
//
// The OpenAPI document marks every field optional and none nullable, yet `null` turns up anywhere. So only what the
// repair decides on must parse: the four compared fields, `profile` (their fallback) and `type` (unified users). A
// field it does not use (`name`, `tags`, `createdAt`, `unifiedId`, `avatarUrl`, `web`, ...) may hold anything and is
// not looked at; the change times are read, where they are used, through `changeTime` (src/domain/change-time.ts:
// finite numbers only). A mismatch in a field that must parse will not change on retry: the client fails the member
// once (client.ts).
//
// Why a compiled strip-mode object: the loose one it replaces copied every key of the user into a copy nobody read;
// strip mode copies only the six checked fields, and `z.compile` checks a valid answer in one generated function
// (bench/user-check.ts: a full user 4.8 -> 0.2 µs hot, 57 -> 10 µs cold). A refused answer falls back to zod's
// runtime parser, so its issue (path and code) is exactly the one the plain schema gives.
import { z } from 'zod';
import type { ChannelUser } from '../domain/types';
import { issueAt, type IssueAt } from './zod-issue';

/** The fields of a user that must parse, and what each must be (anything else may hold anything). */
export const channelUserCheck = z.object({
  // A plain string, not the documented enum: an unknown future type must not make every lookup "malformed".
  type: z.string().nullish(),
  // A cleared contact or consent is plausibly serialised as null rather than omitted.
  email: z.string().nullish(),
  mobileNumber: z.string().nullish(),
  unsubscribeEmail: z.boolean().nullish(),
  unsubscribeTexting: z.boolean().nullish(),
  profile: z.record(z.string(), z.unknown()).nullish(),
});

/** A lookup's answer: `online` (an object or null) is read by nothing, so it is not checked; nor are other keys. */
export const userAnswerSchema = z.object({ user: channelUserCheck });

// Compiled once, as this module loads (a unit test checks zod can; one it could not would keep the runtime parser).
const userAnswerCheck = z.compile(userAnswerSchema);

/** A checked answer: the user as it came, or where and how it failed (a path and zod's issue code, never a value). */
export type UserAnswerCheck = { ok: true; user: ChannelUser } | ({ ok: false } & IssueAt);

/** Checks a parsed 200 body of a user lookup. The user handed on is the answer's own object, not a copy. */
export function checkUserAnswer(json: unknown): UserAnswerCheck {
  const parsed = userAnswerCheck.safeParse(json);
  if (parsed.success) return { ok: true, user: (json as { user: ChannelUser }).user };
  return { ok: false, ...issueAt(parsed.error) };
}

// Compile-time guard: a checked user must be usable wherever src/domain/types.ts expects a ChannelUser.
const checkedUserIsChannelUser = (u: z.infer<typeof channelUserCheck>): ChannelUser => u;
void checkedUserIsChannelUser;
