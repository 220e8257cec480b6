/**
 * `${VAR}` and `${VAR:-default}` in string values, as in docker compose, so secrets stay
 * out of the file. Only the braced form is read: `$HOME` and `$(date)` pass through
 * untouched, because task commands are often shell snippets meant for the container.
 * `$${` writes a literal `${`.
 */

export interface InterpolationError {
  /** Offset of the offending `${` in the input string. */
  readonly index: number;
  /** The text that failed (`${MONGO_URL}`), to find it again in the YAML source. */
  readonly token: string;
  readonly message: string;
}

export type InterpolationResult =
  { readonly ok: true; readonly value: string } | { readonly ok: false; readonly errors: readonly InterpolationError[] };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function interpolate(input: string, env: NodeJS.ProcessEnv): InterpolationResult {
  let out = '';
  const errors: InterpolationError[] = [];
  let i = 0;
  while (i < input.length) {
    const start = input.indexOf('$', i);
    if (start === -1) {
      out += input.slice(i);
      break;
    }
    out += input.slice(i, start);
    if (input.startsWith('$${', start)) {
      out += '${';
      i = start + 3;
      continue;
    }
    if (!input.startsWith('${', start)) {
      out += '$';
      i = start + 1;
      continue;
    }
    const end = input.indexOf('}', start + 2);
    if (end === -1) {
      const token = input.slice(start);
      errors.push({ index: start, token, message: `unclosed "\${" (write $\${ for a literal "\${")` });
      break;
    }
    const token = input.slice(start, end + 1);
    const body = input.slice(start + 2, end);
    const sep = body.indexOf(':-');
    const name = sep === -1 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      errors.push({
        index: start,
        token,
        message: `invalid variable reference "${token}": write \${NAME} or \${NAME:-default} (or $\${ for a literal "\${")`,
      });
    } else {
      const value = env[name];
      if (sep !== -1) {
        // As in compose and sh: `:-` also replaces an empty value, which is never a useful setting.
        out += value === undefined || value === '' ? body.slice(sep + 2) : value;
      } else if (value !== undefined) {
        out += value;
      } else {
        errors.push({
          index: start,
          token,
          message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)`,
        });
      }
    }
    i = end + 1;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out };
}
