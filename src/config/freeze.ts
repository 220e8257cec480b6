/**
 * Freezes an object graph, so no module can change the config another one relies on
 * (a task's limits must be the ones that were validated).
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
