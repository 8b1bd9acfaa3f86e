// vitest's globalSetup (vitest.config.mts): runs once before any test file, in vitest's own process.
import { ensurePrerequisites } from './prerequisites';

export default function setup(): void {
  // Installs what is missing when it can; else stops the run here with one line naming what to install.
  ensurePrerequisites();
}
