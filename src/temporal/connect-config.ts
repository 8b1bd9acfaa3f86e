import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  loadClientConfigProfile,
  loadClientConnectConfig,
  type ClientConfigProfile,
  type ConfigDataSource,
} from '@temporalio/envconfig';
import { z } from 'zod';

// How every part of this project reaches Temporal (worker, CLI, demo): Temporal's own environment
// configuration (@temporalio/envconfig), so the variables and temporal.toml profiles that work with the
// Temporal CLI work here the same way. What this module adds on top: each problem is found before any
// connection and named by its variable (or profile and file), and nothing secret reaches a message.

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
// The Temporal CLI reads these with Go's ParseBool; the SDK only takes "1" and "true". Both spellings pass here.
const optionalBool = z.preprocess(
  emptyToUndefined,
  z
    .string()
    .optional()
    .refine((v) => v === undefined || /^(1|0|t|f|true|false)$/i.test(v.trim()), 'must be true or false')
    .transform((v) => (v === undefined ? undefined : /^(1|t|true)$/i.test(v.trim()))),
);

/** The variables, validated as the rest of the environment is (spread into the worker's and the CLI's schemas). */
export const temporalEnvShape = {
  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_NAMESPACE: optionalString,
  TEMPORAL_API_KEY: optionalString,
  TEMPORAL_TLS: optionalBool,
  TEMPORAL_TLS_CLIENT_CERT_PATH: optionalString,
  TEMPORAL_TLS_CLIENT_CERT_DATA: optionalString,
  TEMPORAL_TLS_CLIENT_KEY_PATH: optionalString,
  TEMPORAL_TLS_CLIENT_KEY_DATA: optionalString,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: optionalString,
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: optionalString,
  TEMPORAL_TLS_SERVER_NAME: optionalString,
  TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: optionalBool,
  TEMPORAL_PROFILE: optionalString,
  TEMPORAL_CONFIG_FILE: optionalString,
};

/** What NativeConnection.connect (worker) and Connection.connect (client) both take. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: NonNullable<ReturnType<typeof loadClientConnectConfig>['connectionOptions']['tls']>;
  apiKey?: string;
  metadata?: Record<string, string>;
}

export interface TemporalConnection {
  address: string;
  namespace: string;
  options: TemporalConnectionOptions;
  /** What may be logged: no API key, no key material, no gRPC header values. */
  summary: Record<string, string>;
}

/** Problems with the connection settings, each a line naming a variable or a profile and its file. */
export class TemporalSettingsError extends Error {
  override name = 'TemporalSettingsError';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

type TlsField = 'clientCert' | 'clientKey' | 'serverCACert';
const TLS_FIELDS: { field: TlsField; variable: string; toml: string; what: string }[] = [
  { field: 'clientCert', variable: 'TEMPORAL_TLS_CLIENT_CERT', toml: 'client_cert', what: 'client certificate' },
  { field: 'clientKey', variable: 'TEMPORAL_TLS_CLIENT_KEY', toml: 'client_key', what: 'client key' },
  {
    field: 'serverCACert',
    variable: 'TEMPORAL_TLS_SERVER_CA_CERT',
    toml: 'server_ca_cert',
    what: 'server CA certificate',
  },
];

type TemporalEnv = z.infer<z.ZodObject<typeof temporalEnvShape>>;

/** Where the profile came from: the config file read (its path and text), the profile's name. */
interface ConfigSource {
  configFile: string | undefined;
  configData: string | undefined;
  profileName: string;
}

/**
 * Resolves the connection from the environment (and a temporal.toml profile, if any), reading every
 * certificate and key file now. Throws TemporalSettingsError; never connects.
 */
export function resolveTemporalConnection(rawEnv: NodeJS.ProcessEnv): TemporalConnection {
  const parsed = z.object(temporalEnvShape).safeParse(rawEnv);
  if (!parsed.success)
    throw new TemporalSettingsError(parsed.error.issues.map((i) => `${String(i.path[0])} ${i.message}`));
  const env = parsed.data;
  const { source, problems } = readConfigFile(env, rawEnv);
  problems.unshift(...settingsProblems(env));
  if (problems.length) throw new TemporalSettingsError(problems);

  const options = sdkOptions(env, rawEnv, source.configData);
  if (source.configData === undefined && env.TEMPORAL_PROFILE !== undefined) {
    throw new TemporalSettingsError([
      `TEMPORAL_PROFILE ${env.TEMPORAL_PROFILE}: no such profile (no Temporal config file${source.configFile ? ` at ${source.configFile}` : ''})`,
    ]);
  }
  const profile = loadProfile(options, env, source);
  const fileProblems = tlsProblems(profile, env, source);
  if (fileProblems.length) throw new TemporalSettingsError(fileProblems);

  // Temporal's own translation into connection options: TLS on for an API key, certificates loaded, headers.
  const { connectionOptions, namespace } = loadClientConnectConfig(options);
  const address = connectionOptions.address ?? DEFAULT_TEMPORAL_ADDRESS;
  const resolved: TemporalConnectionOptions = { address };
  if (connectionOptions.tls) resolved.tls = connectionOptions.tls;
  if (connectionOptions.apiKey !== undefined) resolved.apiKey = connectionOptions.apiKey as string;
  const metadata = connectionOptions.metadata as Record<string, string> | undefined;
  if (metadata && Object.keys(metadata).length) resolved.metadata = metadata;
  return {
    address,
    namespace: namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    options: resolved,
    summary: describe(
      address,
      namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
      profile,
      resolved,
      env.TEMPORAL_PROFILE,
      source.configData === undefined ? undefined : source.configFile,
    ),
  };
}

/** Settings refused before anything is read: an unsupported switch, a value set twice. */
function settingsProblems(env: TemporalEnv): string[] {
  const problems: string[] = [];
  if (env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION) {
    // The TypeScript SDK has no such switch (the Go CLI has): refusing is better than verifying anyway, silently.
    problems.push(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the Temporal TypeScript SDK: set TEMPORAL_TLS_SERVER_NAME to a name in the server certificate instead',
    );
  }
  for (const { variable } of TLS_FIELDS) {
    if (
      env[`${variable}_PATH` as keyof typeof env] !== undefined &&
      env[`${variable}_DATA` as keyof typeof env] !== undefined
    ) {
      problems.push(`${variable}_PATH and ${variable}_DATA are both set: set one`);
    }
  }
  return problems;
}

/** The config file: TEMPORAL_CONFIG_FILE must be readable; the default location may simply not exist. */
function readConfigFile(env: TemporalEnv, rawEnv: NodeJS.ProcessEnv): { source: ConfigSource; problems: string[] } {
  const configFile = env.TEMPORAL_CONFIG_FILE ?? defaultConfigFile(rawEnv);
  const problems: string[] = [];
  let configData: string | undefined;
  if (configFile !== undefined) {
    try {
      configData = readFileSync(configFile, 'utf8');
    } catch (err) {
      if (env.TEMPORAL_CONFIG_FILE !== undefined || errorCode(err) !== 'ENOENT') {
        problems.push(
          `${env.TEMPORAL_CONFIG_FILE !== undefined ? 'TEMPORAL_CONFIG_FILE' : 'Temporal config file'} ${configFile}: cannot read it (${errorCode(err)})`,
        );
      }
    }
  }
  return { source: { configFile, configData, profileName: env.TEMPORAL_PROFILE ?? 'default' }, problems };
}

/**
 * What the SDK reads: the validated variables (blank ones dropped, booleans spelt as it expects), the gRPC headers
 * as given (an empty one removes a header a profile sets), and the file read before (so the SDK gets its text, not
 * a path: the file is named in errors).
 */
function sdkOptions(env: TemporalEnv, rawEnv: NodeJS.ProcessEnv, configData: string | undefined) {
  const sdkEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name === 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION' || name === 'TEMPORAL_CONFIG_FILE')
      continue;
    sdkEnv[name] = typeof value === 'boolean' ? String(value) : value.trim();
  }
  for (const [name, value] of Object.entries(rawEnv))
    if (name.startsWith('TEMPORAL_GRPC_META_') && value !== undefined) sdkEnv[name] = value;
  return configData !== undefined
    ? { overrideEnvVars: sdkEnv, configSource: { data: configData } }
    : { overrideEnvVars: sdkEnv, disableFile: true };
}

/** The profile, or a settings error naming the profile or the file (never the parser's text: it may quote a key). */
function loadProfile(
  options: ReturnType<typeof sdkOptions>,
  env: TemporalEnv,
  { configFile, profileName }: ConfigSource,
): ClientConfigProfile {
  try {
    return loadClientConfigProfile(options);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/Profile '.*' not found/.test(message))
      throw new TemporalSettingsError([`TEMPORAL_PROFILE ${profileName}: no such profile in ${configFile}`]);
    const at = err as { line?: unknown; column?: unknown };
    const position =
      typeof at.line === 'number'
        ? ` at line ${at.line}${typeof at.column === 'number' ? `, column ${at.column}` : ''}`
        : '';
    const what = /Cannot specify both/.test(message) ? firstLine(message) : `not valid TOML${position}`;
    throw new TemporalSettingsError([
      `${env.TEMPORAL_CONFIG_FILE !== undefined ? 'TEMPORAL_CONFIG_FILE' : 'Temporal config file'} ${configFile}: ${what}`,
    ]);
  }
}

/** Every certificate and key file is read now, so a bad path stops here and names where it came from. */
function tlsProblems(profile: ClientConfigProfile, env: TemporalEnv, { configFile, profileName }: ConfigSource) {
  const problems: string[] = [];
  for (const { field, variable, toml } of TLS_FIELDS) {
    const source = profile.tls?.[field];
    if (!source || !('path' in source)) continue;
    const origin =
      env[`${variable}_PATH` as keyof typeof env] !== undefined
        ? `${variable}_PATH`
        : `profile ${profileName} in ${configFile}: tls.${toml}_path`;
    try {
      readFileSync(source.path);
    } catch (err) {
      problems.push(`${origin} ${source.path}: cannot read it (${errorCode(err)})`);
    }
  }
  const hasCert = profile.tls?.clientCert !== undefined;
  const hasKey = profile.tls?.clientKey !== undefined;
  if (hasCert !== hasKey) {
    problems.push(
      hasCert
        ? 'TEMPORAL_TLS_CLIENT_CERT_PATH (or _DATA) is set without TEMPORAL_TLS_CLIENT_KEY_PATH (or _DATA): mTLS needs both'
        : 'TEMPORAL_TLS_CLIENT_KEY_PATH (or _DATA) is set without TEMPORAL_TLS_CLIENT_CERT_PATH (or _DATA): mTLS needs both',
    );
  }
  return problems;
}

function describe(
  address: string,
  namespace: string,
  profile: ClientConfigProfile,
  options: TemporalConnectionOptions,
  profileName: string | undefined,
  configFile: string | undefined,
): Record<string, string> {
  const source = (s: ConfigDataSource | undefined) => (s === undefined ? undefined : 'path' in s ? s.path : '(set)');
  const tlsParts = TLS_FIELDS.map(({ field, what }) => [what, source(profile.tls?.[field])] as const)
    .filter(([, from]) => from !== undefined)
    .map(([what, from]) => `${what} ${from}`);
  const tls = options.tls
    ? `on${tlsParts.length ? ` (${tlsParts.join(', ')})` : ''}${profile.tls?.serverName ? `, server name ${profile.tls.serverName}` : ''}`
    : 'off';
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_PROFILE: profileName ?? (configFile ? 'default' : '(none)'),
    TEMPORAL_CONFIG_FILE: configFile ?? '(none)',
    TEMPORAL_API_KEY: options.apiKey !== undefined ? '(set)' : '(none)',
    TEMPORAL_TLS: tls,
    // Header names only: their values are often credentials.
    TEMPORAL_GRPC_META: options.metadata ? Object.keys(options.metadata).join(', ') : '(none)',
  };
}

/** Where the Temporal CLI looks for temporal.toml when TEMPORAL_CONFIG_FILE is not set (Linux/macOS/Windows). */
function defaultConfigFile(env: NodeJS.ProcessEnv): string | undefined {
  const home = env.HOME;
  if (process.platform === 'win32')
    return env.APPDATA ? path.join(env.APPDATA, 'temporalio', 'temporal.toml') : undefined;
  if (process.platform === 'darwin')
    return home ? path.join(home, 'Library', 'Application Support', 'temporalio', 'temporal.toml') : undefined;
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'temporalio', 'temporal.toml');
  if (xdg) return undefined;
  return home ? path.join(home, '.config', 'temporalio', 'temporal.toml') : undefined;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : firstLine(err instanceof Error ? err.message : String(err));
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').trim();
}
