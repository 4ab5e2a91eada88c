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

export type Result<T, E = WireError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function err(kind: WireErrorKind, message: string): { readonly ok: false; readonly error: WireError } {
  return { ok: false, error: { kind, message } };
}
