import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TimerHeap } from './timers.js';

test('TimerHeap: earliest and popExpired follow the live deadlines after re-arms and deletes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('set', 'delete'), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 300 }),
      (ops) => {
        const h = new TimerHeap<number>();
        const model = new Map<number, number>();
        for (const [op, k, at] of ops) {
          if (op === 'set') { h.set(k, at); model.set(k, at); } else { h.delete(k); model.delete(k); }
          const min = model.size ? Math.min(...model.values()) : undefined;
          assert.equal(h.earliest(), min);
          assert.equal(h.size, model.size);
        }
        const popped: [number, number][] = [];
        for (;;) {
          const k = h.popExpired(500);
          if (k === undefined) break;
          popped.push([k, model.get(k)!]);
          model.delete(k);
        }
        for (let i = 1; i < popped.length; i++) assert.ok(popped[i - 1][1] <= popped[i][1]);
        for (const at of model.values()) assert.ok(at > 500);
        assert.ok(popped.every(([, at]) => at <= 500));
      },
    ),
    { numRuns: 300 },
  );
});
