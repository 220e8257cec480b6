'use strict';
/**
 * runlet-lambda: runs a handler written for AWS Lambda behind API Gateway, unchanged, as a
 * runlet function (one run per request, a fresh container each time).
 *
 *   command: [node, /app/lib/lambda-handler.cjs, handler.handler]     # <file>.<export>, as Lambda's "Handler"
 *
 * The file is looked up relative to LAMBDA_TASK_ROOT (default: the working directory), as
 * Lambda does; `_HANDLER` may name it instead of the argument. The event is
 * /runlet/payload.json (API Gateway HTTP API payload format 2.0), the handler's result is
 * written to /runlet/output.json (Lambda's proxy result: statusCode, headers, cookies, body,
 * isBase64Encoded) and runlet answers the request with it. A handler that throws (or calls
 * back with an error) fails the run: exit 1, its error on stderr, and the caller gets 502.
 *
 * Plain CommonJS with no dependencies, so it can be copied into any Node image; it also
 * exports `invoke(handler)` for a bundled task that imports its handler directly.
 */
const fs = require('node:fs');
const path = require('node:path');

const PAYLOAD = process.env.RUNLET_PAYLOAD_FILE || '/runlet/payload.json';
const OUTPUT = '/runlet/output.json';

function readEvent() {
  if (!fs.existsSync(PAYLOAD)) return {};
  const text = fs.readFileSync(PAYLOAD, 'utf8');
  return text.trim() === '' ? {} : JSON.parse(text);
}

/** Lambda's context object, with what runlet knows. */
function contextFor(event) {
  const started = Date.now();
  const timeoutMs = Number(process.env.RUNLET_TIMEOUT_MS || 0);
  const name = process.env.RUNLET_TASK || process.env.AWS_LAMBDA_FUNCTION_NAME || 'function';
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:runlet:lambda:local:0:function:${name}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '',
    awsRequestId: process.env.RUNLET_RUN_ID || (event.requestContext && event.requestContext.requestId) || '',
    logGroupName: `/runlet/${name}`,
    logStreamName: process.env.RUNLET_RUN_ID || '',
    // Without a known timeout, Lambda's longest (15 min): a handler checking it must not think it has none.
    getRemainingTimeInMillis: () => Math.max(0, (timeoutMs > 0 ? timeoutMs : 900000) - (Date.now() - started)),
    done() {},
    succeed() {},
    fail() {},
  };
}

/** Calls an async or callback-style handler; resolves with its result. */
function call(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, result) => {
      if (settled) return;
      settled = true;
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(result);
    };
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function')
        returned.then(
          (r) => callback(null, r),
          (e) => callback(e || new Error('rejected')),
        );
      else if (handler.length < 3) callback(null, returned);
    } catch (err) {
      callback(err);
    }
  });
}

/** Runs `handler` on this run's event and writes its result; exits 0, or 1 when it failed. */
async function invoke(handler) {
  try {
    if (typeof handler !== 'function') throw new Error(`the handler is a ${typeof handler}, not a function`);
    const event = readEvent();
    const result = await call(handler, event, contextFor(event));
    fs.writeFileSync(OUTPUT, JSON.stringify(result === undefined ? null : result));
    process.exit(0);
  } catch (err) {
    // Lambda's error shape on stderr: runlet keeps it in the run's log tail.
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`${JSON.stringify({ errorType: e.name, errorMessage: e.message, stack: String(e.stack || '').split('\n') })}\n`);
    process.exit(1);
  }
}

/** "dir/file.export" → the export of dir/file(.js|.cjs|.mjs), relative to the task root. */
function load(spec) {
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw new Error(`handler "${spec}" must be <file>.<export>, like "index.handler"`);
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const file = path.resolve(root, spec.slice(0, dot));
  return require(require.resolve(file, { paths: [root] }))[spec.slice(dot + 1)];
}

module.exports = { invoke };

if (require.main === module) {
  const spec = process.argv[2] || process.env._HANDLER;
  if (!spec) {
    process.stderr.write('usage: node lambda-handler.cjs <file>.<export> (or set _HANDLER)\n');
    process.exit(2);
  }
  let handler;
  try {
    handler = load(spec);
  } catch (err) {
    process.stderr.write(`cannot load handler "${spec}": ${err.message}\n`);
    process.exit(2);
  }
  invoke(handler);
}
