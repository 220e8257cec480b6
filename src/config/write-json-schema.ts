import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { editorHints } from './editor-hints.js';
import { ConfigSchema } from './schema.js';

/**
 * config/runlet.schema.json, generated from the zod schema so the editor's checks and the
 * daemon's can't drift apart; a test compares the committed file with `jsonSchemaText()`.
 * Run `node dist/config/write-json-schema.js [out-file]` after changing the schema.
 */

/**
 * The schema of the file as typed, before interpolation (`io: 'input'`). Draft 7 because
 * yaml-language-server and most editors understand it best.
 */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, {
    io: 'input',
    target: 'draft-7',
    override: ({ zodSchema, jsonSchema: out }) => {
      const hints = editorHints.get(zodSchema);
      if (hints) Object.assign(out, hints);
    },
  }) as Record<string, unknown>;
}

export function jsonSchemaText(): string {
  return `${JSON.stringify(jsonSchema(), null, 2)}\n`;
}

/** The directory holding runlet's package.json, found upwards from this file wherever it was compiled to. */
export function projectRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export function writeJsonSchema(file: string = path.join(projectRoot(), 'config', 'runlet.schema.json')): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, jsonSchemaText());
  return file;
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const written = writeJsonSchema(process.argv[2]);
  console.log(`wrote ${path.relative(process.cwd(), written) || written}`);
}
