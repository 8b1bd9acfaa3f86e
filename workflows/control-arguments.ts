// Validators of the pause and resume updates: an argument the run would misread is rejected before it reaches the
// run (a rejected update leaves nothing in the history). The signals keep their lenient reading (a reason that is
// not a string is ignored; only a literal `true` confirms deletes), since a signal cannot answer.

export function validatePauseArgument(reason?: unknown): void {
  if (reason !== undefined && reason !== null && typeof reason !== 'string')
    throw new TypeError('pause takes an optional reason: a JSON string, e.g. --input \'"receiver maintenance"\'');
}

export function validateResumeArgument(options?: unknown): void {
  if (options === undefined || options === null) return;
  const valid =
    typeof options === 'object' &&
    !Array.isArray(options) &&
    Object.entries(options).every(([key, value]) => key === 'confirmDeletes' && typeof value === 'boolean');
  if (!valid) throw new TypeError('resume takes an optional {"confirmDeletes": true|false}, nothing else');
}
