import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TaskConfig, WebhookConfig } from '../config/types.js';
import { closest as didYouMean } from '../config/did-you-mean.js';
import { HOOK_RATE_PREFIX } from '../runs/keys.js';
import { acceptedAnswer, resultAnswer, type Answer } from './webhook-answer.js';
import { deliveryOf } from '../triggers/webhook/delivery.js';
import { decodeBody, webhookRequest } from '../triggers/webhook/request.js';
import { verify, type SignedIdentity } from '../triggers/webhook/signature.js';
import type { HttpDeps } from './deps.js';
import { apiError } from './errors.js';

/** Why a webhook request was refused, by the status it was answered with. */
const REJECTIONS: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'bad_signature',
  403: 'cross_origin', // origin.ts: a browser page on another origin
  404: 'unknown_task',
  405: 'wrong_method',
  413: 'too_large',
  415: 'not_utf8',
  421: 'wrong_host', // origin.ts: a Host name the daemon does not answer to
  429: 'rate_limited',
};

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Methods answered 405 on a webhook's path (fastify knows no others to route). */
const OTHER_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/**
 * POST /hooks/<task>: one route per webhook task, so each has its own body limit (fastify
 * refuses a larger Content-Length before reading, and stops a chunked body at the limit)
 * and its own rate limit. Per request, in fastify's hook order:
 *   parse (raw bytes) → preValidation: verify the signature → preHandler: rate limit
 *   (only verified requests count, so strangers cannot use up a sender's quota)
 *   → handler: UTF-8, delivery id, submit, answer.
 */
export const hookRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  // Encapsulated: only this plugin's routes read bodies as raw bytes. A signature covers
  // the bytes as sent, and the payload must be them too, so nothing here parses JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // @fastify/rate-limit fits as is: a per-route limit, its Redis store (a fixed window,
  // INCR + PEXPIRE in one script, so the count is cluster-wide) and the preHandler hook,
  // which runs after verification. Key: runlet:hook-rate:POST/hooks/<task>-<task>.
  await app.register(rateLimit, { global: false, redis: deps.redis, nameSpace: HOOK_RATE_PREFIX, hook: 'preHandler' });

  // Every refusal is counted by reason (runlet_trigger_rejections_total): a sender with a
  // wrong secret shows up on a dashboard, not only in its own logs.
  app.addHook('onResponse', async (req, reply) => {
    const reason = REJECTIONS[reply.statusCode];
    if (!reason) return;
    // Per-task routes have no :task param; the path names the task either way.
    const name = safeDecode(req.url.split('?')[0]!.split('/')[2] ?? '');
    deps.events?.emit('trigger:event', {
      task: deps.config.tasks[name] ? name : '(unknown)',
      trigger: 'webhook',
      outcome: 'rejected',
      reason,
    });
  });

  for (const task of Object.values(deps.config.tasks)) {
    const hook = task.webhook;
    if (hook) registerHook(app, deps, task, hook);
  }

  // Everything else under /hooks/<name>: say precisely what is wrong.
  const unknownOr = (name: string): never => notAHook(deps, name);
  app.post<{ Params: { task: string } }>('/:task', async (req) => unknownOr(req.params.task));
  app.route<{ Params: { task: string } }>({
    method: [...OTHER_METHODS],
    url: '/:task',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      if (!deps.config.tasks[req.params.task]?.webhook) unknownOr(req.params.task);
      reply.header('allow', 'POST');
      throw apiError('METHOD_NOT_ALLOWED', { method: req.method, url: `/hooks/${req.params.task}`, allow: 'POST' });
    },
  });
};

/** A request for /hooks/<name> that no webhook takes: which of the two reasons. */
function notAHook(deps: HttpDeps, name: string): never {
  const task = deps.config.tasks[name];
  if (!task) throw apiError('TASK_NOT_FOUND', { task: name, hint: didYouMean(name, Object.keys(deps.config.tasks)) });
  // Given a webhook by a reload: its route is made at the next start (see registerHook).
  if (task.webhook) throw apiError('WEBHOOK_NEEDS_RESTART', { task: name });
  throw apiError('WEBHOOK_NOT_CONFIGURED', { task: name });
}

/**
 * The signed identity preValidation found, and the task and webhook settings it verified
 * with, handed to the handler of the same request. Kept rather than re-derived so the
 * identity is exactly what was verified.
 */
const verified = new WeakMap<FastifyRequest, { task: TaskConfig; hook: WebhookConfig; signed?: SignedIdentity }>();

/**
 * The route is made once, at start, with the body and rate limits of then (fastify fixes
 * them per route; a reload that changes them reports that they need a restart, see
 * server.ts `fixedAtStart`). Everything else is read per request from the config now: a
 * reload's new secret or scheme applies to the next request, and a removed task or webhook
 * answers 404.
 */
function registerHook(app: FastifyInstance, deps: HttpDeps, task: TaskConfig, hook: WebhookConfig): void {
  const limit = hook.rateLimit;
  app.post(
    `/${task.name}`,
    {
      bodyLimit: hook.maxBodyBytes,
      config: limit
        ? {
            rateLimit: {
              max: limit.count,
              timeWindow: limit.perMs,
              keyGenerator: () => task.name,
              errorResponseBuilder: (_req, ctx) =>
                apiError('RATE_LIMITED', {
                  task: task.name,
                  count: limit.count,
                  perMs: limit.perMs,
                  retryAfterS: Math.ceil(ctx.ttl / 1000),
                }),
            },
          }
        : {},
      // Thrown on to the server's handler, which answers every ApiError alike.
      errorHandler: (err: FastifyError) => {
        if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
          throw apiError('PAYLOAD_TOO_LARGE', { limit: hook.maxBodyBytes, task: task.name, setting: 'webhook.maxBody' });
        throw err;
      },
      preValidation: async (req: FastifyRequest) => {
        const now = deps.config.tasks[task.name];
        if (!now?.webhook) notAHook(deps, task.name);
        const verdict = verify(now.webhook, req.headers, bodyOf(req), Date.now());
        if (!verdict.ok) throw apiError('WEBHOOK_UNAUTHORIZED', { why: verdict.why, expected: verdict.expected });
        verified.set(req, { task: now, hook: now.webhook, signed: verdict.signed });
      },
    },
    async (req, reply) => {
      const { task, hook, signed } = verified.get(req)!;
      const body = bodyOf(req);
      const text = decodeBody(body);
      if (!text.ok) throw apiError('BODY_NOT_UTF8', { byteOffset: text.byteOffset });
      const delivery = deliveryOf(task.name, hook, req.headers, body, signed);
      if (!delivery.ok) throw apiError('INVALID_HEADER', { header: delivery.header, detail: delivery.detail });

      // Exactly once per event: submit claims the dedupe key `<task>:hook:<event id>` and
      // writes the run in one Redis script, so of any number of copies of one event (a
      // sender's retries, the same request at two daemons behind a balancer, a captured
      // request replayed) exactly one gets created: true and a queue job; the others get
      // that run's id back. The event id comes from signed material for every signed
      // scheme (delivery.ts), so a replay cannot mint a new key by changing an unsigned
      // header. The key lives 7 days, or dedupeWindow with dedupe: body; a request with
      // no id under bearer / auth: none gets a fresh key and is its own event. We answer
      // only after submit returned, when the run is durably recorded: a sender that saw
      // 202 can forget the event; one that saw no answer retries, and a retry carrying
      // the event's id lands on the same key instead of making a second run.
      const res = await deps.submit(webhookRequest(task, text.text, req.headers, delivery));
      if (hook.respond === 'accepted') return send(reply, acceptedAnswer(res));

      // A redelivery waits for the same run, so a sender retrying a timed-out call still
      // gets that run's result. A skipped run is already ended: answered at once.
      const run = await deps.ended.waitFor(res.runId, hook.resultTimeoutMs);
      const current = run ? undefined : ((await deps.store.get(res.runId).catch(() => undefined))?.status ?? 'unknown');
      return send(reply, resultAnswer(res.runId, run, hook.resultTimeoutMs, current));
    },
  );
}

function bodyOf(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  if (answer.location) reply.header('location', answer.location);
  return reply.code(answer.status).type(answer.contentType).send(answer.body);
}
