/**
 * A timer structure for machines with many deadlines (a client with thousands of sessions, a server with a
 * timer per receiver): a binary min-heap of (deadline, key) with lazy deletion. `set` replaces a key's deadline
 * in O(log n), `earliest()` is O(1) amortised, and expired keys are taken out with `popExpired`. No scan of every
 * session is ever needed to find the next deadline.
 */
interface HeapEntry<K> {
  readonly at: number;
  readonly key: K;
  /** The key's live record when this entry was pushed. */
  readonly rec: { at: number };
}

export class TimerHeap<K> {
  private readonly heap: HeapEntry<K>[] = [];
  /**
   * The live deadline of each key, as the record its newest heap entry points to: an entry whose record is not
   * the key's live one is stale. (An identity check, not a generation number read from the record: reading a
   * property of a record the code has never met costs optimized code a deoptimization, as a fresh proxy's first
   * session did after its start-up warm-up, whose throwaway machine never had a live timer at the top.)
   */
  private readonly live = new Map<K, { at: number }>();

  get size(): number {
    return this.live.size;
  }

  /** Arm (or re-arm) `key` for time `at`. */
  set(key: K, at: number): void {
    const rec = { at };
    this.live.set(key, rec);
    this.push({ at, key, rec });
    // Stale entries are dropped lazily; compact when they outnumber live ones by far, so memory stays bounded.
    if (this.heap.length > 64 && this.heap.length > 4 * this.live.size) this.compact();
  }

  /** The deadline of `key`, if armed. */
  get(key: K): number | undefined {
    return this.live.get(key)?.at;
  }

  /** Disarm `key`. */
  delete(key: K): void {
    this.live.delete(key);
  }

  clear(): void {
    this.live.clear();
    this.heap.length = 0;
  }

  /** The earliest armed deadline, or undefined when none. */
  earliest(): number | undefined {
    this.dropStale();
    return this.heap.length > 0 ? this.heap[0].at : undefined;
  }

  /** Take out and return the next key whose deadline is <= now, or undefined. */
  popExpired(now: number): K | undefined {
    this.dropStale();
    const top = this.heap[0];
    if (top === undefined || top.at > now) return undefined;
    this.pop();
    this.live.delete(top.key);
    return top.key;
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0];
      // undefined is tested apart (a test V8 keeps no feedback for): the comparison then only ever meets records
      const l = this.live.get(top.key);
      if (l !== undefined && l === top.rec) return;
      this.pop();
    }
  }

  private compact(): void {
    const keep = this.heap.filter((e) => this.live.get(e.key) === e.rec);
    this.heap.length = 0;
    for (const e of keep) this.push(e);
  }

  private push(e: HeapEntry<K>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].at <= e.at) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r].at < h[l].at ? r : l;
      if (h[c].at >= last.at) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
  }
}
