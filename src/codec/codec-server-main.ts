// `npx tsx src/codec/codec-server-main.ts --port 8888 [--host 127.0.0.1] [--origin http://localhost:8233 ...]`
// Serves the payload codec of BACKFILL_CODEC_KEY (and BACKFILL_CODEC_KEY_ID) from the environment, the same
// variables the workers use. Point the Web UI at it (Settings -> Codec Server, or `temporal server start-dev
// --ui-codec-endpoint http://127.0.0.1:8888`) or the CLI (`temporal workflow show --codec-endpoint ...`).
// Exits 2 with one line on a bad key or bad arguments.
import { parseArgs } from 'node:util';
import { codecFromEnvValues, CodecError } from './aes-gcm-codec';
import { DEFAULT_UI_ORIGINS, startCodecServer } from './codec-server';

const USAGE =
  'usage: codec-server-main.ts [--port 8888] [--host 127.0.0.1] [--origin URL]... (BACKFILL_CODEC_KEY in the environment)';

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

async function main(): Promise<void> {
  let values: { port?: string; host?: string; origin?: string[]; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '8888' },
        host: { type: 'string', default: '127.0.0.1' },
        origin: { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    fail(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number\n${USAGE}`);
  const origins = (values.origin ?? [])
    .flatMap((o) => o.split(','))
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of origins) {
    if (!/^https?:\/\/[^/]+$/i.test(origin.replace(/\/$/, '')))
      fail(`--origin must look like http://host:port, got ${origin}`);
  }

  let codec;
  try {
    codec = codecFromEnvValues({
      BACKFILL_CODEC_KEY: process.env.BACKFILL_CODEC_KEY,
      BACKFILL_CODEC_KEY_ID: process.env.BACKFILL_CODEC_KEY_ID,
    });
  } catch (err) {
    if (err instanceof CodecError) fail(err.message);
    throw err;
  }
  if (!codec) fail('BACKFILL_CODEC_KEY is not set: give the codec server the same key as the workers');

  const allowedOrigins = origins.length > 0 ? origins : DEFAULT_UI_ORIGINS;
  const server = await startCodecServer({
    codec,
    port,
    host: values.host,
    allowedOrigins,
    log: (l) => console.error(l),
  });
  console.log(`codec server listening on ${server.url} (key id ${codec.keyId}; CORS for ${allowedOrigins.join(', ')})`);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`codec server failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
