/**
 * Errors on the network path are values, never exceptions.
 * Every decoder returns `Result<T>`: `{ ok: true, value }` or `{ ok: false, error }`,
 * where the error names what is wrong and where.
 */

export type WireErrorKind =
  | 'truncated'      // the buffer ends before a field the message says is there
  | 'oversized'      // a length field or the datagram exceeds what the protocol allows
  | 'bad-version'    // UFTP ID is not the one we speak
  | 'bad-type'       // unknown message or blob type
  | 'inconsistent'   // fields disagree with each other (header length vs. body, etc.)
  | 'bad-value';     // a field holds a value the protocol does not define

export interface WireError {
  readonly kind: WireErrorKind;
  /** One line naming the message, the field and the problem, e.g. "ANNOUNCE: header length 3 words < 8". */
  readonly message: string;
}

import type { Result as CoreResult } from '../core/result.js';
export { ok } from '../core/result.js';

/** The wire codec's Result: the error defaults to a WireError. */
export type Result<T, E = WireError> = CoreResult<T, E>;

export function err(kind: WireErrorKind, message: string): { readonly ok: false; readonly error: WireError } {
  return { ok: false, error: { kind, message } };
}
