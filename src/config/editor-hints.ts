import { z } from 'zod';

/**
 * `examples` and `default` for the JSON Schema. zod drops both from schemas that transform
 * (they would describe the output, e.g. bytes), but the editor shows the input, "512m";
 * so they live in this registry and write-json-schema.ts adds them back.
 */
export interface EditorHints {
  readonly examples?: readonly unknown[];
  readonly default?: unknown;
}

export const editorHints = z.registry<EditorHints, z.core.$ZodType>();

export function withHints<T extends z.core.$ZodType>(schema: T, hints: EditorHints): T {
  editorHints.add(schema, hints);
  return schema;
}
