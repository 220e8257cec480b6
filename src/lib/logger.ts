import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines by default (for log shippers); readable lines when stdout is a terminal.
 * The level comes from the caller (cli.ts reads RUNLET_LOG_LEVEL), never from import time.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; destination?: pino.DestinationStream } = {}): Logger {
  const level = opts.level ?? 'info';
  if (opts.destination) return pino({ level, base: undefined }, opts.destination);
  if (opts.pretty) {
    return pino({
      level,
      base: undefined,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined });
}
