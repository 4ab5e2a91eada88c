/**
 * An empty array whose elements kind (V8) is already "any value". An empty `[]` starts as small integers and changes
 * its map at the first object or string stored, so code V8 optimized on one instance (a daemon's start-up warm-up, a
 * throwaway machine or socket) was thrown away ("wrong map") at the first element stored by the next: measured in
 * uftpproxyd on the engine's RemoteInfo cache and the proxy machines' transmit slots.
 */
export function objectArray<T>(): T[] {
  const a: (T | null)[] = [null];
  a.length = 0;
  return a as T[];
}
