/**
 * The callers of functions-warm.ts, in a process of their own so that sending and reading
 * requests does not share an event loop with the daemon being measured:
 *
 *   node dist/bench/fn-clients.js '{"url":"…","total":200,"clients":20,"pauseMs":0}'
 *
 * `clients` callers each send their next request when the last one is answered (after
 * `pauseMs`). A response body `{ "t": <epoch ms> }` or `{ "us": <epoch µs> }` is the moment
 * the function's code ran; request → user code is that minus the moment the request was
 * sent. Prints one JSON line: { toCode: ms[], round: ms[], errors, firstError? }.
 */
import { Agent, get } from 'node:http';

interface Spec {
  readonly url: string;
  readonly total: number;
  readonly clients: number;
  readonly pauseMs?: number;
}

const spec = JSON.parse(process.argv[2]!) as Spec;
const nowMs = (): number => performance.timeOrigin + performance.now();
// Keep-alive, as a browser or an SDK calling an API: one connection per caller.
const agent = new Agent({ keepAlive: true, maxSockets: spec.clients });

function call(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  const toCode: number[] = [];
  const round: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let left = spec.total;
  await Promise.all(
    Array.from({ length: spec.clients }, async () => {
      while (left-- > 0) {
        const sent = nowMs();
        try {
          const { status, text } = await call(spec.url);
          const took = nowMs() - sent;
          const body = JSON.parse(text) as { t?: number; us?: number };
          const ran = typeof body.us === 'number' ? body.us / 1000 : body.t;
          if (status !== 200 || typeof ran !== 'number') {
            errors++;
            firstError ??= `${status} ${text.slice(0, 300)}`;
          } else {
            round.push(took);
            toCode.push(ran - sent);
          }
        } catch (err) {
          errors++;
          firstError ??= String(err);
        }
        if (spec.pauseMs) await new Promise((r) => setTimeout(r, spec.pauseMs));
      }
    }),
  );
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ toCode, round, errors, firstError })}\n`);
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
