import type { ConfigChanges } from '../config/diff.js';
import { clientFor, type CommonArgs } from './common.js';

/**
 * `runlet reload`: the running daemon reads its config file again (as on SIGHUP), through
 * the ops API. A file with errors is refused with each of them (the daemon goes on with the
 * config it had) and the command exits 1, through the client's error.
 */
export async function reloadCommand(args: CommonArgs): Promise<number> {
  const res = await clientFor(args.env).request<ConfigChanges>('POST', '/api/reload');
  console.log(describeChanges(res));
  return 0;
}

export function describeChanges(c: ConfigChanges): string {
  const part = (what: string, names: readonly string[]) => (names.length > 0 ? [`${names.length} ${what} (${names.join(', ')})`] : []);
  const parts = [
    ...part(`task${c.added.length === 1 ? '' : 's'} added`, c.added),
    ...part('removed', c.removed),
    ...part('changed', c.changed),
    ...(c.settings.length > 0 ? [`settings changed: ${c.settings.join(', ')}`] : []),
  ];
  const lines = [`reloaded ${c.file}: ${parts.length > 0 ? parts.join(', ') : 'no change'}`];
  if (c.needsRestart.length > 0) {
    lines.push('needs a restart (until then the daemon keeps what it had):');
    for (const n of c.needsRestart) lines.push(`  ${n.path}: ${n.why}`);
  }
  return lines.join('\n');
}
