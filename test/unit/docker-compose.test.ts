import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { envSchema, loadConfig } from '../../src/config';
import { findTemporalCli, freePort, waitForPort } from '../../dev/temporal-cli';
import { DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTES } from '../../workflows/definitions';
import { shippedWorkerCommand } from '../../dev/shipped-worker-command';

// docker-compose.yml is what users with Docker start: Temporal persisted in PostgreSQL, the Web UI,
// the search-attribute registration, and the worker built from the Dockerfile. There is no Docker
// engine here, so this reads the file as Compose would (YAML, `${VAR...}` interpolation) and checks
// its services, ports and wiring against the code: the worker's config schema, the search attributes
// the workflow publishes and the default task queue. The registration script itself is then run
// against a real Temporal dev server with the same CLI commands.

const ROOT = path.resolve(__dirname, '../..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  entrypoint?: string | string[];
  command?: string | string[];
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

function loadCompose(): Compose {
  const doc = parseDocument(readFileSync(COMPOSE_FILE, 'utf8'), { uniqueKeys: true });
  if (doc.errors.length)
    throw new Error(`docker-compose.yml is not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  return doc.toJS() as Compose;
}

const compose = loadCompose();

function service(name: string): Service {
  const s = compose.services[name];
  if (!s)
    throw new Error(`docker-compose.yml has no service "${name}" (has: ${Object.keys(compose.services).join(', ')})`);
  return s;
}

/** A service's environment as written (map or KEY=VALUE list), values as strings. */
function envOf(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line) => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Compose's interpolation: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?err}`, `${NAME?err}`. */
function interpolate(value: string, host: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (whole === '$$') return '$';
      if (bare) return host[bare] ?? '';
      const v = host[name!];
      const unset = colon ? v === undefined || v === '' : v === undefined;
      if (op === '-') return unset ? arg! : v!;
      if (op === '?') {
        if (unset) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return v!;
      }
      return v ?? '';
    },
  );
}

/** The host variable a `${NAME...}` value reads, if the whole value is one such reference. */
function hostVariable(value: string): { name: string; required: boolean } | undefined {
  const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])[^}]*)?\}$/.exec(value);
  return m ? { name: m[1]!, required: m[3] === '?' } : undefined;
}

function dependsOn(s: Service): Record<string, string | undefined> {
  const d = s.depends_on ?? [];
  return Array.isArray(d)
    ? Object.fromEntries(d.map((n) => [n, undefined]))
    : Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v?.condition]));
}

interface PortBinding {
  hostIp: string | undefined;
  published: string | undefined;
  target: number;
}
function portsOf(s: Service): PortBinding[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object')
      return {
        hostIp: p.host_ip,
        published: p.published === undefined ? undefined : String(p.published),
        target: p.target,
      };
    const parts = String(p)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    if (parts.length === 3) return { hostIp: parts[0], published: parts[1], target: Number(parts[2]) };
    if (parts.length === 2) return { hostIp: undefined, published: parts[0], target: Number(parts[1]) };
    return { hostIp: undefined, published: undefined, target: Number(parts[0]) };
  });
}

function volumesOf(s: Service): { source: string | undefined; target: string; readOnly: boolean }[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'object') return { source: v.source, target: v.target, readOnly: v.read_only === true };
    const [source, target, mode] = v.split(':');
    return target === undefined
      ? { source: undefined, target: source!, readOnly: false }
      : { source, target, readOnly: (mode ?? '').split(',').includes('ro') };
  });
}

/** What the container runs as one shell script (entrypoint `sh -c` + command), or undefined. */
function shellScript(s: Service): string | undefined {
  const entry = s.entrypoint === undefined ? [] : Array.isArray(s.entrypoint) ? s.entrypoint : [s.entrypoint];
  const cmd = s.command === undefined ? [] : Array.isArray(s.command) ? s.command : [s.command];
  const argv = [...entry, ...cmd];
  const c = argv.indexOf('-c');
  if (c >= 1 && /(^|\/)(ba)?sh$/.test(argv[0]!)) return argv[c + 1];
  return argv.length ? argv.join(' ') : undefined;
}

/** Each `temporal operator search-attribute create` in a script, as name -> type (repeatable flags). */
function createdSearchAttributes(script: string): Record<string, string> {
  const out: Record<string, string> = {};
  const commands = script
    .replace(/\\\n/g, ' ')
    .split(/\n|&&|\|\||;/)
    .filter((c) => /\btemporal\s+operator\s+search-attribute\s+create\b/.test(c));
  for (const c of commands) {
    const names = [...c.matchAll(/--name[=\s]+["']?([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
    const types = [...c.matchAll(/--type[=\s]+["']?([A-Za-z]+)/g)].map((m) => m[1]!);
    expect(types.length, `one --type per --name in: ${c.trim()}`).toBe(names.length);
    names.forEach((n, i) => (out[n] = types[i]!));
  }
  return out;
}

const registration = Object.entries(compose.services).filter(([, s]) =>
  /search-attribute\s+create/.test(shellScript(s) ?? ''),
);

describe('docker-compose.yml: the services', () => {
  it('is valid YAML with the five services a user needs', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['postgresql', 'temporal', 'temporal-ui', 'worker']),
    );
    expect(
      registration.map(([name]) => name),
      'exactly one service registers the search attributes',
    ).toHaveLength(1);
  });

  it('runs PostgreSQL with a health check that the Temporal server waits for', () => {
    const pg = service('postgresql');
    expect(pg.image).toMatch(/^postgres:\d+/);
    expect(envOf(pg).POSTGRES_USER).toBeTruthy();
    expect(JSON.stringify((pg as { healthcheck?: unknown }).healthcheck)).toContain('pg_isready');
    expect(volumesOf(pg).map((v) => v.target)).toContain('/var/lib/postgresql/data');
  });

  it('persists the Temporal server in that PostgreSQL', () => {
    const temporal = service('temporal');
    const pgEnv = envOf(service('postgresql'));
    const env = envOf(temporal);
    expect(temporal.image).toMatch(/^temporalio\/auto-setup:/);
    expect(env.DB).toBe('postgres12');
    expect(env.POSTGRES_SEEDS, 'POSTGRES_SEEDS names the postgresql service').toBe('postgresql');
    expect(env.DB_PORT).toBe('5432');
    expect(env.POSTGRES_USER).toBe(pgEnv.POSTGRES_USER);
    expect(env.POSTGRES_PWD).toBe(pgEnv.POSTGRES_PASSWORD);
    expect(dependsOn(temporal)).toHaveProperty('postgresql', 'service_healthy');
    // The frontend, for the Temporal CLI on the host: loopback only.
    expect(portsOf(temporal)).toContainEqual({ hostIp: '127.0.0.1', published: '7233', target: 7233 });
    for (const p of portsOf(temporal)) expect(p.hostIp, `port ${p.target} of temporal`).toBe('127.0.0.1');
  });

  it('serves the Web UI from the Temporal server on 127.0.0.1:8080 only', () => {
    const ui = service('temporal-ui');
    expect(ui.image).toMatch(/^temporalio\/ui:/);
    expect(envOf(ui).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(Object.keys(dependsOn(ui))).toContain('temporal');
    expect(portsOf(ui)).toEqual([{ hostIp: '127.0.0.1', published: '8080', target: 8080 }]);
  });
});

describe('docker-compose.yml: the search attributes are registered at start', () => {
  const [name, s] = registration[0] ?? ['(none)', {} as Service];
  const script = shellScript(s) ?? '';

  it('creates exactly the search attributes the workflow publishes, with their types', () => {
    expect(createdSearchAttributes(script)).toEqual({ ...SEARCH_ATTRIBUTES });
    expect(createdSearchAttributes(script)).toEqual({
      BackfillStatus: 'Keyword',
      BackfillProcessed: 'Int',
      BackfillFailed: 'Int',
    });
  });

  it('talks to the temporal service once it is healthy, and the worker waits for it to finish', () => {
    expect(s.image, `${name} runs the Temporal admin tools (they hold the temporal CLI)`).toMatch(
      /^temporalio\/admin-tools:/,
    );
    const address = envOf(s).TEMPORAL_ADDRESS ?? /--address[=\s]+(\S+)/.exec(script)?.[1];
    expect(address).toBe('temporal:7233');
    expect(dependsOn(s)).toHaveProperty('temporal', 'service_healthy');
    expect(dependsOn(service('worker'))).toHaveProperty(name, 'service_completed_successfully');
    // A `$` Compose would interpolate (instead of passing `$$` through to the shell) breaks the script.
    expect(script.replace(/\$\$/g, '')).not.toContain('$');
  });
});

describe('docker-compose.yml: the worker', () => {
  const worker = service('worker');
  const env = envOf(worker);
  const hostEnv: Record<string, string> = {
    CHANNEL_ACCESS_KEY: 'key-from-host',
    CHANNEL_ACCESS_SECRET: 'secret-from-host',
    WEBHOOK_URL: 'https://hooks.example.test/channel',
    WEBHOOK_TOKEN: 'token-from-host',
  };
  /**
   * The worker's environment as the container sees it, with each path that names a file mounted into the
   * container replaced by the file on the host it comes from (the mount's source, interpolated like the rest),
   * so the worker's own config loader reads what the container would.
   */
  const resolve = (host: Record<string, string | undefined>) => {
    const mounts = volumesOf(worker).map((m) => ({ ...m, source: interpolate(m.source ?? '', host) }));
    const onHost = (value: string) => {
      const mount = mounts.find((m) => value === m.target || value.startsWith(`${m.target}/`));
      if (!mount || !/^[./]/.test(mount.source)) return value; // a named volume has no host path
      return path.resolve(ROOT, mount.source) + value.slice(mount.target.length);
    };
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, onHost(interpolate(v, host))]));
  };

  it('is built from this repository and serves the default task queue on the temporal service', () => {
    const build = typeof worker.build === 'string' ? worker.build : worker.build?.context;
    expect(build).toBe('.');
    // The compose Temporal is the default profile of the mounted compose/temporal.toml, not a variable's
    // default: a variable would win over a profile the host asks for.
    expect(env.TEMPORAL_ADDRESS).toBe('${TEMPORAL_ADDRESS:-}');
    expect(loadConfig(resolve({ ...hostEnv })).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(env.BACKFILL_TASK_QUEUE).toBe(DEFAULT_TASK_QUEUE);
    expect(DEFAULT_TASK_QUEUE).toBe('webhook-backfill');
    expect(dependsOn(worker)).toHaveProperty('temporal', 'service_healthy');
  });

  it('takes the Channel Talk and webhook settings from the host environment, never from the file', () => {
    for (const variable of [
      'CHANNEL_ACCESS_KEY',
      'CHANNEL_ACCESS_SECRET',
      'CHANNEL_API_URL',
      'CHANNEL_RATE_LIMIT',
      'WEBHOOK_URL',
      'WEBHOOK_TOKEN',
    ]) {
      expect(env[variable], `${variable} is passed to the worker`).toBeDefined();
      expect(hostVariable(env[variable]!)?.name, `${variable} is read from the host's ${variable}`).toBe(variable);
    }
    // The values reach the worker as the host has them.
    const resolved = resolve(hostEnv);
    for (const [k, v] of Object.entries(hostEnv)) expect(resolved[k]).toBe(v);
  });

  it('takes BACKFILL_MYSQL_URL from the host; the example MariaDB is only started when asked for (profile mysql)', () => {
    expect(hostVariable(env.BACKFILL_MYSQL_URL!)?.name).toBe('BACKFILL_MYSQL_URL');
    expect(resolve(hostEnv).BACKFILL_MYSQL_URL, 'unset on the host: no mysql source').toBe('');
    const mysql = service('mysql') as Service & { profiles?: string[] };
    expect(mysql.profiles).toEqual(['mysql']);
    expect(Object.keys(dependsOn(worker))).not.toContain('mysql');
  });

  it("passes the host's Temporal connection variables through; unset on the host, the worker sees them unset and uses the compose Temporal", () => {
    const passed = [
      'TEMPORAL_PROFILE',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
      'TEMPORAL_API_KEY',
      'TEMPORAL_TLS',
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      'TEMPORAL_TLS_CLIENT_CERT_DATA',
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      'TEMPORAL_TLS_CLIENT_KEY_DATA',
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
      'TEMPORAL_TLS_SERVER_NAME',
    ];
    for (const variable of passed)
      expect(hostVariable(env[variable] ?? '')?.name, `${variable} is read from the host's ${variable}`).toBe(variable);
    // Compose gives an unset host variable as an empty string: the worker treats that as not set.
    expect(loadConfig(resolve(hostEnv)).temporal.options).toEqual({ address: 'temporal:7233' });
    const cloud = loadConfig(
      resolve({
        ...hostEnv,
        TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
        TEMPORAL_NAMESPACE: 'ns.acct',
        TEMPORAL_API_KEY: 'api-key-from-host',
      }),
    );
    expect(cloud.TEMPORAL_NAMESPACE).toBe('ns.acct');
    expect(cloud.temporal.options).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', apiKey: 'api-key-from-host' });
    expect(cloud.temporal.options.tls, 'an API key turns TLS on').toBeTruthy();
  });

  it("mounts the host's TEMPORAL_CONFIG_FILE (compose/temporal.toml without one) where the worker reads its profiles", () => {
    expect(env.TEMPORAL_CONFIG_FILE, 'a fixed path inside the container').toMatch(/^\/[^$]*$/);
    const mount = volumesOf(worker).find((m) => m.target === env.TEMPORAL_CONFIG_FILE);
    expect(mount, `a volume mounted at ${env.TEMPORAL_CONFIG_FILE}`).toBeDefined();
    expect(mount!.readOnly).toBe(true);
    expect(mount!.source).toBe('${TEMPORAL_CONFIG_FILE:-./compose/temporal.toml}');
    expect(existsSync(path.join(ROOT, 'compose/temporal.toml'))).toBe(true);

    // The host's own file and profile: its address, namespace, API key and gRPC headers reach the worker.
    const dir = mkdtempSync(path.join(tmpdir(), 'compose-profile-'));
    try {
      const file = path.join(dir, 'temporal.toml');
      writeFileSync(
        file,
        [
          '[profile.default]',
          'address = "localhost:7233"',
          '[profile.prod]',
          'address = "prod.acct.tmprl.cloud:7233"',
          'namespace = "prod.acct"',
          'api_key = "api-key-in-profile"',
          '[profile.prod.grpc_meta]',
          'x-team = "repairs"',
          '',
        ].join('\n'),
      );
      const prod = loadConfig(resolve({ ...hostEnv, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' }));
      expect(prod.TEMPORAL_ADDRESS).toBe('prod.acct.tmprl.cloud:7233');
      expect(prod.TEMPORAL_NAMESPACE).toBe('prod.acct');
      expect(prod.temporal.options).toMatchObject({ apiKey: 'api-key-in-profile', metadata: { 'x-team': 'repairs' } });
      // A variable on the host still wins over the profile, as with the Temporal CLI.
      const overridden = loadConfig(
        resolve({ ...hostEnv, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'other' }),
      );
      expect(overridden.TEMPORAL_NAMESPACE).toBe('other');
      // Without TEMPORAL_PROFILE the host file's default profile applies, not the compose Temporal.
      expect(loadConfig(resolve({ ...hostEnv, TEMPORAL_CONFIG_FILE: file })).TEMPORAL_ADDRESS).toBe('localhost:7233');
      // A profile the file does not have stops the worker, naming it.
      expect(() =>
        loadConfig(resolve({ ...hostEnv, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' })),
      ).toThrow(/TEMPORAL_PROFILE staging: no such profile/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // compose/temporal.toml has no profile but the default one: TEMPORAL_PROFILE alone is refused, not ignored.
    expect(() => loadConfig(resolve({ ...hostEnv, TEMPORAL_PROFILE: 'prod' }))).toThrow(
      /TEMPORAL_PROFILE prod: no such profile/,
    );
  });

  it('is given every variable src/config.ts requires, and Compose refuses to start without them', () => {
    const shape = envSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    const required = Object.keys(shape).filter((k) => !shape[k]!.safeParse(undefined).success);
    expect(required).toEqual(expect.arrayContaining(['CHANNEL_ACCESS_KEY', 'CHANNEL_ACCESS_SECRET']));
    for (const k of required) {
      expect(env[k], `${k} (required by src/config.ts) is passed to the worker`).toBeDefined();
      const ref = hostVariable(env[k]!);
      if (ref)
        expect(ref.required, `${k} uses \${${ref.name}:?...} so a missing value stops "docker compose up"`).toBe(true);
      if (ref) {
        const without = { ...hostEnv };
        delete without[ref.name];
        expect(() => resolve(without), `without ${ref.name} on the host`).toThrow(new RegExp(ref.name));
        expect(() => resolve({ ...hostEnv, [ref.name]: '' }), `with ${ref.name} empty on the host`).toThrow(
          new RegExp(ref.name),
        );
      }
    }
    // Everything in the worker's environment is a variable the worker reads, and it validates.
    for (const k of Object.keys(env)) expect(Object.keys(shape), `${k} is a variable src/config.ts knows`).toContain(k);
    const config = loadConfig(resolve(hostEnv));
    expect(config).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'default',
      BACKFILL_TASK_QUEUE: DEFAULT_TASK_QUEUE,
      CHANNEL_ACCESS_KEY: hostEnv.CHANNEL_ACCESS_KEY,
      WEBHOOK_URL: hostEnv.WEBHOOK_URL,
      CHANNEL_API_URL: 'https://api.channel.io',
    });
    // Without WEBHOOK_URL on the host the worker still starts (dry runs, channel-webhooks runs).
    const { WEBHOOK_URL: _url, WEBHOOK_TOKEN: _token, ...credentialsOnly } = hostEnv;
    expect(loadConfig(resolve(credentialsOnly)).WEBHOOK_URL).toBeUndefined();
  });

  it('keeps its audit log and work files on a named volume, and reads members files from ./data', () => {
    const dataDir = env.BACKFILL_DATA_DIR!;
    expect(dataDir).toMatch(/^\//);
    const mounts = volumesOf(worker);
    const data = mounts.find((m) => m.target === dataDir);
    expect(data, `a volume mounted at BACKFILL_DATA_DIR (${dataDir})`).toBeDefined();
    expect(Object.keys(compose.volumes ?? {}), 'the data volume is a named volume, kept across restarts').toContain(
      data!.source,
    );
    expect(data!.readOnly).toBe(false);
    expect(mounts).toContainEqual({ source: './data', target: '/data', readOnly: true });
  });
});

describe('Dockerfile', () => {
  const file = path.join(ROOT, 'Dockerfile');

  it('exists and its final image runs the built worker, dist/src/worker.js', () => {
    expect(existsSync(file), 'Dockerfile next to docker-compose.yml (the worker is `build: .`)').toBe(true);
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const lastStage = lines.slice(lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true));
    const cmds = lastStage.filter((l) => /^CMD\s/i.test(l));
    expect(cmds.length, 'the final stage has a CMD').toBeGreaterThan(0);
    const cmd = cmds.at(-1)!.replace(/^CMD\s+/i, '');
    const argv = cmd.startsWith('[') ? (JSON.parse(cmd) as string[]) : cmd.split(/\s+/);
    // Exactly what `npm start` runs (what the benchmark measures): same node options, entry and environment.
    const shipped = shippedWorkerCommand();
    expect(shipped.entry).toBe('dist/src/worker.js');
    expect(argv).toEqual(['node', ...shipped.nodeArgs, shipped.entry]);
    expect(
      shipped.nodeArgs.some((a) => /^--max-old-space-size=\d+$/.test(a)),
      'a heap cap',
    ).toBe(true);
    const envs = Object.fromEntries(
      lastStage
        .filter((l) => /^ENV\s/i.test(l))
        .flatMap((l) =>
          [...l.replace(/^ENV\s+/i, '').matchAll(/([A-Z_][A-Z0-9_]*)=(\S*)/g)].map((m) => [m[1]!, m[2]!]),
        ),
    );
    for (const [name, value] of Object.entries(shipped.env))
      expect(envs[name], `the image sets ${name} as npm start does`).toBe(value);
    // It is what `npm run build` produces from src/worker.ts (tsconfig outDir "dist", rootDir ".").
    const tsconfig = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    expect(tsconfig.compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    expect(existsSync(path.join(ROOT, 'src/worker.ts'))).toBe(true);
    // The build stage copies every directory the build compiles.
    const build = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const copied = lines
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    for (const dir of build.include)
      expect(copied, `the Dockerfile copies ${dir}/ before npm run build`).toContain(dir);
  });
});

describe('the registration script against a real Temporal server', () => {
  it('registers the three search attributes, and running it again (the next `docker compose up`) is harmless', async () => {
    const [, s] = registration[0]!;
    // The script as the container's shell gets it (Compose turns `$$` into `$`).
    const script = interpolate(shellScript(s)!, {});
    const cli = findTemporalCli({ build: true, log: (l) => console.log(l) });
    if (!cli) throw new Error('no Temporal CLI: set TEMPORAL_CLI or install Go so the tests can build it (see README)');
    // A dev server WITHOUT the attributes (startDevServer would register them itself).
    const port = await freePort();
    const server = spawn(
      cli.path,
      [
        'server',
        'start-dev',
        '--headless',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--http-port',
        String(await freePort()),
        '--metrics-port',
        String(await freePort()),
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitForPort(port, 60_000);
      // `temporal` on PATH is the same CLI the admin-tools image carries.
      const env = {
        ...process.env,
        ...envOf(s),
        TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
        PATH: `${path.dirname(cli.path)}${path.delimiter}${process.env.PATH}`,
      };
      const list = () => {
        const out = spawnSync(
          cli.path,
          ['operator', 'search-attribute', 'list', '--address', `127.0.0.1:${port}`, '-o', 'json'],
          { encoding: 'utf8' },
        );
        expect(out.status, out.stderr).toBe(0);
        return JSON.parse(out.stdout) as unknown;
      };
      const before = JSON.stringify(list());
      for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(before).not.toContain(name);
      for (const round of [1, 2]) {
        const run = spawnSync('/bin/sh', ['-c', script], { env, encoding: 'utf8', timeout: 30_000 });
        expect(run.status, `round ${round}: ${run.stderr}`).toBe(0);
      }
      const attributes = list() as { customAttributes?: Record<string, string> };
      const custom = attributes.customAttributes ?? {};
      const shortType = (t: string) => t.replace(/^INDEXED_VALUE_TYPE_/, '').toLowerCase();
      for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES))
        expect(shortType(custom[name] ?? 'missing'), name).toBe(type.toLowerCase());
    } finally {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
  }, 90_000);
});
