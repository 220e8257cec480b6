import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allowedKeysAt, TASK_NAME } from '../src/config/schema.js';
import { jsonSchema, jsonSchemaText } from '../src/config/write-json-schema.js';

describe('config/runlet.schema.json', () => {
  it('is what jsonSchema() generates now (run `npm run build && npm run schema` after changing the schema)', () => {
    expect(fs.readFileSync('config/runlet.schema.json', 'utf8')).toBe(jsonSchemaText());
  });

  it('describes the task keys the loader accepts, and the task-name rule', () => {
    const tasks = (jsonSchema().properties as Record<string, { anyOf: Record<string, unknown>[]; propertyNames: { pattern: string } }>)
      .tasks;
    const task = (tasks.anyOf[0].additionalProperties as { anyOf: { properties: object }[] }).anyOf[0];
    expect(Object.keys(task.properties)).toEqual(allowedKeysAt(['tasks', 'x']));
    expect(tasks.propertyNames.pattern).toBe(TASK_NAME.source);
  });

  it('gives editors the input shapes (examples, defaults), not the normalised numbers', () => {
    const defaults = (
      jsonSchema().properties as Record<string, { anyOf: { properties: Record<string, { default?: unknown; examples?: unknown[] }> }[] }>
    ).defaults;
    expect(defaults.anyOf[0].properties.memory).toMatchObject({ default: '256m', examples: ['256m', '1g'] });
    expect(defaults.anyOf[0].properties.timezone).toMatchObject({ default: 'UTC' });
  });
});
