/**
 * A value as the user wrote it, for "got ..." in messages: strings quoted, YAML shapes
 * named ("a list", "a map"), and an empty YAML value called "nothing" rather than `null`.
 */
export function got(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

/** A YAML map (not a list, not a scalar, not empty): what the cross-key checks read defensively. */
export const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
