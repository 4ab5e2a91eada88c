/**
 * Errors on the network path are values, never exceptions. `Result<T, E>` is the one shape every layer uses:
 * `{ ok: true, value }` or `{ ok: false, error }`. The wire codec's error type (`WireError`) lives in
 * src/wire/result.ts, which re-exports these.
 */
export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
