// What the integration tests run for real besides Node: PostgreSQL and MariaDB servers, Chromium (Debian's
// packages) and the official Temporal CLI. `npm test` (vitest's globalSetup, test/support/global-setup.ts) and
// `.ci/run` (this file run as a script) call ensurePrerequisites() before any test: whatever is missing is
// installed when this machine allows it (Debian's packages with apt-get as root, the CLI built with Go into
// ~/.cache/webhook-backfill/bin), else the run stops at once with one line naming what to install, instead of
// every test that needs it failing with the same hint.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CLI_CACHE_DIR, findTemporalCli, type FoundCli } from '../../dev/temporal-cli';
import { findMariaDb } from './mariadb';
import { findPostgresBin } from './postgres';

/** Debian's Chromium, driven by playwright-core (which never downloads a browser of its own here). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface DebianPrerequisite {
  what: string;
  /** Debian's package that provides it. */
  debianPackage: string;
  /** Found where the tests look for it (test/support/postgres.ts, mariadb.ts, browser.ts). */
  present(): boolean;
}

const found = (find: () => unknown) => () => {
  try {
    find();
    return true;
  } catch {
    return false;
  }
};

const DEBIAN_PREREQUISITES: DebianPrerequisite[] = [
  { what: 'PostgreSQL server', debianPackage: 'postgresql', present: found(findPostgresBin) },
  { what: 'MariaDB server', debianPackage: 'mariadb-server', present: found(findMariaDb) },
  { what: `Chromium (${CHROMIUM})`, debianPackage: 'chromium', present: () => existsSync(CHROMIUM) },
];

/** The run cannot start: `message` is the one line naming what to install. Printed without a stack. */
export class MissingPrerequisites extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingPrerequisites';
    this.stack = message;
  }
}

const canInstallDebianPackages = () => process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');

function aptGet(args: string[]): boolean {
  const result = spawnSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return result.status === 0;
}

function installDebianPackages(packages: string[], log: (line: string) => void): void {
  log(`installing ${packages.join(', ')} from Debian's packages for the tests (first run only)`);
  // A fresh image has no package lists; a stale list can name versions the mirror no longer has.
  if (!aptGet(['update'])) log('apt-get update failed; trying the install with the lists there are');
  if (!aptGet(['install', '-y', '--no-install-recommends', ...packages])) log('apt-get install failed');
}

/** The Temporal CLI, built with Go when it is nowhere (a few minutes, once); else a problem is added. */
function temporalCli(log: (line: string) => void, problems: string[]): FoundCli | undefined {
  try {
    const cli = findTemporalCli({ build: true, log });
    if (cli) return cli;
    problems.push(`the Temporal CLI (install Go so that it is built into ${CLI_CACHE_DIR}, or set TEMPORAL_CLI)`);
  } catch (err) {
    problems.push((err as Error).message); // TEMPORAL_CLI names a file that does not exist
  }
  return undefined;
}

/**
 * Installs what is missing when it can (Debian's packages as root, the Temporal CLI with Go) and throws
 * MissingPrerequisites naming the rest. Returns what it found, one line each, for a log.
 */
export function ensurePrerequisites(log: (line: string) => void = (line) => console.log(line)): string[] {
  const problems: string[] = [];
  let missing = DEBIAN_PREREQUISITES.filter((p) => !p.present());
  if (missing.length > 0 && canInstallDebianPackages()) {
    installDebianPackages(
      missing.map((p) => p.debianPackage),
      log,
    );
    missing = missing.filter((p) => !p.present());
  }
  if (missing.length > 0) {
    const packages = missing.map((p) => p.debianPackage).join(' ');
    problems.push(
      `${missing.map((p) => p.what).join(', ')} (Debian: apt-get install -y ${packages}, as root, or run npm test as root)`,
    );
  }
  const cli = temporalCli(log, problems);
  if (problems.length > 0) throw new MissingPrerequisites(`the tests need ${problems.join('; and ')}`);
  return [
    ...DEBIAN_PREREQUISITES.map((p) => `${p.what}: installed (${p.debianPackage})`),
    `Temporal CLI ${cli!.path} (${cli!.how})`,
  ];
}

// `.ci/run` runs this file: the same check and installs, then the lines of what was found.
if (require.main === module) {
  try {
    for (const line of ensurePrerequisites()) console.log(`== ${line}`);
  } catch (err) {
    console.error(err instanceof MissingPrerequisites ? err.message : err);
    process.exit(1);
  }
}
