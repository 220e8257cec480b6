import type { z } from 'zod';
import { closest } from './did-you-mean.js';
import type { Finding } from './errors.js';
import { refusalAt } from './refused.js';
import { allowedKeysAt } from './schema.js';

/**
 * zod issues as findings placed on YAML nodes. The messages were written in fields.ts and
 * schema.ts; the one zod message never shown is unknown keys, reworded here with a
 * "did you mean" and pointed at the key itself rather than at its map.
 */
export function zodFindings(error: z.ZodError): Finding[] {
  const findings: Finding[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map((seg) => (typeof seg === 'number' ? seg : String(seg)));
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(path);
      for (const key of issue.keys) {
        const message = refusalAt(path, key) ?? unknownKeyMessage(key, allowed);
        findings.push({ path: [...path, key], at: 'key', message });
      }
    } else {
      findings.push({ path, at: 'value', message: issue.message });
    }
  }
  return findings;
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const guess = closest(key, allowed);
  if (guess) return `unknown key ${JSON.stringify(key)} (did you mean ${JSON.stringify(guess)}?)`;
  return `unknown key ${JSON.stringify(key)} (allowed here: ${allowed.join(', ')})`;
}
