import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveTemporalConnection, TemporalSettingsError } from '../../src/temporal/connect-config';

// The connection the worker, the CLI and the demo build from the Temporal CLI's variables and temporal.toml
// profiles (through @temporalio/envconfig), and the one-line errors for bad settings. Real files in a temp dir;
// the handshake itself is tested against real TLS fronts in test/integration/secure-temporal.test.ts.

const dir = mkdtempSync(path.join(os.tmpdir(), 'temporal-connect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const CERT = file('client.pem', '-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n');
const KEY = file('client.key', '-----BEGIN PRIVATE KEY-----\nkey-material-5e1\n-----END PRIVATE KEY-----\n');
const CA = file('ca.pem', '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n');
const MISSING = path.join(dir, 'missing.pem');
const API_KEY = 'api-key-unit-3f9c';
const TOML = file(
  'temporal.toml',
  `[profile.default]\naddress = "default.example:7233"\n\n[profile.cloud]\naddress = "ns.acct.tmprl.cloud:7233"\nnamespace = "ns.acct"\napi_key = "${API_KEY}"\n`,
);
// No HOME: the default temporal.toml location of whoever runs the tests never plays in.
const base = { HOME: dir, XDG_CONFIG_HOME: '' };

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    resolveTemporalConnection({ ...base, ...env });
  } catch (err) {
    if (err instanceof TemporalSettingsError) return err.problems;
    throw err;
  }
  throw new Error('expected a TemporalSettingsError');
}

describe('resolveTemporalConnection: what connects', () => {
  it.each([
    ['nothing set: the dev-server defaults', {}, { address: 'localhost:7233' }, 'default'],
    [
      'empty strings count as unset (docker-compose passes unset variables so)',
      { TEMPORAL_ADDRESS: '', TEMPORAL_API_KEY: ' ', TEMPORAL_TLS: '', TEMPORAL_TLS_CLIENT_CERT_PATH: '' },
      { address: 'localhost:7233' },
      'default',
    ],
    [
      'address and namespace',
      { TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'backfill' },
      { address: 'temporal.internal:7233' },
      'backfill',
    ],
    [
      'an API key turns TLS on',
      { TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: API_KEY },
      { address: 'ns.acct.tmprl.cloud:7233', apiKey: API_KEY, tls: expect.anything() },
      'default',
    ],
    [
      'TEMPORAL_TLS=1 (Go spelling) turns TLS on',
      { TEMPORAL_TLS: '1' },
      { address: 'localhost:7233', tls: expect.anything() },
      'default',
    ],
    [
      'gRPC headers',
      { TEMPORAL_GRPC_META_X_TENANT: 'acme' },
      { address: 'localhost:7233', metadata: { 'x-tenant': 'acme' } },
      'default',
    ],
    [
      'a profile of TEMPORAL_CONFIG_FILE',
      { TEMPORAL_CONFIG_FILE: TOML, TEMPORAL_PROFILE: 'cloud' },
      { address: 'ns.acct.tmprl.cloud:7233', apiKey: API_KEY, tls: expect.anything() },
      'ns.acct',
    ],
    [
      'a variable wins over the profile',
      { TEMPORAL_CONFIG_FILE: TOML, TEMPORAL_ADDRESS: 'override:7233' },
      { address: 'override:7233' },
      'default',
    ],
  ])('%s', (_name, env, options, namespace) => {
    const c = resolveTemporalConnection({ ...base, ...env });
    expect(c.options).toEqual(options);
    expect(c.namespace).toBe(namespace);
  });

  it('mutual TLS: certificate, key and CA read from their files, the server name passed on', () => {
    const c = resolveTemporalConnection({
      ...base,
      TEMPORAL_TLS_CLIENT_CERT_PATH: CERT,
      TEMPORAL_TLS_CLIENT_KEY_PATH: KEY,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: CA,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    const tls = c.options.tls as {
      clientCertPair?: { crt: Buffer; key: Buffer };
      serverRootCACertificate?: Buffer;
      serverNameOverride?: string;
    };
    expect(Buffer.from(tls.clientCertPair!.crt).toString()).toContain('client');
    expect(Buffer.from(tls.clientCertPair!.key).toString()).toContain('key-material-5e1');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toContain('ca');
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(c.summary.TEMPORAL_TLS).toBe(
      `on (client certificate ${CERT}, client key ${KEY}, server CA certificate ${CA}), server name temporal.internal`,
    );
  });

  it('the summary (what the worker logs) shows no API key, key material or header value', () => {
    const c = resolveTemporalConnection({
      ...base,
      TEMPORAL_API_KEY: API_KEY,
      TEMPORAL_TLS_CLIENT_KEY_DATA: 'key-material-5e1',
      TEMPORAL_TLS_CLIENT_CERT_PATH: CERT,
      TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer hdr-secret-77',
    });
    const text = JSON.stringify(c.summary);
    for (const secret of [API_KEY, 'key-material-5e1', 'hdr-secret-77']) expect(text).not.toContain(secret);
    expect(c.summary).toMatchObject({ TEMPORAL_API_KEY: '(set)', TEMPORAL_GRPC_META: 'authorization' });
    expect(c.summary.TEMPORAL_TLS).toContain('client key (set)');
  });
});

describe('resolveTemporalConnection: bad settings stop before any connection, one line each, naming the variable', () => {
  it.each([
    [
      'a certificate file that does not exist',
      { TEMPORAL_TLS_CLIENT_CERT_PATH: MISSING, TEMPORAL_TLS_CLIENT_KEY_PATH: KEY },
      `TEMPORAL_TLS_CLIENT_CERT_PATH ${MISSING}: cannot read it (ENOENT)`,
    ],
    [
      'a key file that does not exist',
      { TEMPORAL_TLS_CLIENT_CERT_PATH: CERT, TEMPORAL_TLS_CLIENT_KEY_PATH: MISSING },
      `TEMPORAL_TLS_CLIENT_KEY_PATH ${MISSING}: cannot read it (ENOENT)`,
    ],
    [
      'a CA file that does not exist',
      { TEMPORAL_TLS_SERVER_CA_CERT_PATH: MISSING },
      `TEMPORAL_TLS_SERVER_CA_CERT_PATH ${MISSING}: cannot read it (ENOENT)`,
    ],
    [
      'a certificate without its key',
      { TEMPORAL_TLS_CLIENT_CERT_PATH: CERT },
      'TEMPORAL_TLS_CLIENT_CERT_PATH (or _DATA) is set without TEMPORAL_TLS_CLIENT_KEY_PATH (or _DATA): mTLS needs both',
    ],
    [
      'both _PATH and _DATA',
      { TEMPORAL_TLS_SERVER_CA_CERT_PATH: CA, TEMPORAL_TLS_SERVER_CA_CERT_DATA: 'pem' },
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_CA_CERT_DATA are both set: set one',
    ],
    ['TEMPORAL_TLS not a boolean', { TEMPORAL_TLS: 'yes please' }, 'TEMPORAL_TLS must be true or false'],
    [
      'host verification off (the SDK cannot)',
      { TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' },
      expect.stringMatching(/^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported .* set TEMPORAL_TLS_SERVER_NAME/),
    ],
    [
      'a config file that does not exist',
      { TEMPORAL_CONFIG_FILE: MISSING },
      `TEMPORAL_CONFIG_FILE ${MISSING}: cannot read it (ENOENT)`,
    ],
    [
      'a profile that does not exist',
      { TEMPORAL_CONFIG_FILE: TOML, TEMPORAL_PROFILE: 'staging' },
      `TEMPORAL_PROFILE staging: no such profile in ${TOML}`,
    ],
    [
      'a profile without any config file',
      { TEMPORAL_PROFILE: 'cloud' },
      expect.stringMatching(/^TEMPORAL_PROFILE cloud: no such profile \(no Temporal config file/),
    ],
  ])('%s', (_name, env, problem) => {
    const problems = problemsOf(env);
    expect(problems).toEqual([problem]);
    expect(problems[0]).not.toContain('\n');
  });

  it('a config file that is not TOML: its position, never its text (it may hold a key)', () => {
    const bad = file('bad.toml', `[profile.default]\napi_key = "${API_KEY}\n`);
    const [problem] = problemsOf({ TEMPORAL_CONFIG_FILE: bad });
    expect(problem).toMatch(
      new RegExp(`^TEMPORAL_CONFIG_FILE ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid TOML`),
    );
    expect(problem).not.toContain(API_KEY);
  });
});
