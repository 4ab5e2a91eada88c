/**
 * Quantized header fields (protocol.txt 5.2.1).
 *
 * GRTT: RFC 5401 section 3.7.4 (the NORM building block), RTT_MIN = 1e-6 s, RTT_MAX = 1000 s:
 *   q <= 31: rtt = (q + 1) * RTT_MIN
 *   q >= 32: rtt = RTT_MAX / exp((255 - q) / 13)
 *   quantize: rtt < 33 * RTT_MIN ? floor(rtt / RTT_MIN) - 1 : ceil(255 - 13 * ln(RTT_MAX / rtt))
 * The quantized value is never below the true one (the RFC rounds up), so a receiver never under-waits.
 * A 1e-9 tolerance inside floor/ceil keeps quantize(unquantize(q)) === q despite floating-point error.
 *
 * Group size: 5-bit mantissa (high bits) and 3-bit exponent (low bits); the mantissa is scaled so that
 * 0.0 is 0 and 10.0 would be 32, i.e. size = (mantissa * 10 / 32) * 10^exponent. Observed on the wire
 * (UFTP 4.10): 1 client -> 0x18 (mantissa 3, exponent 0); see docs/protocol-notes.md.
 */

export const RTT_MIN = 1e-6;
export const RTT_MAX = 1000;
const EPS = 1e-9;

export function quantizeGrtt(seconds: number): number {
  let rtt = seconds;
  if (!(rtt >= RTT_MIN)) rtt = RTT_MIN; // also catches NaN
  if (rtt > RTT_MAX) rtt = RTT_MAX;
  if (rtt < 33 * RTT_MIN) return Math.max(0, Math.floor(rtt / RTT_MIN + EPS) - 1);
  return Math.min(255, Math.max(32, Math.ceil(255 - 13 * Math.log(RTT_MAX / rtt) - EPS)));
}

export function unquantizeGrtt(q: number): number {
  const v = q & 0xff;
  return v <= 31 ? (v + 1) * RTT_MIN : RTT_MAX / Math.exp((255 - v) / 13);
}

/**
 * Smallest representable size >= n, so the server never understates the group (a client scaling its
 * back-off by group size should err on the large side). n <= 0 gives 0.
 */
export function quantizeGroupSize(n: number): number {
  if (!(n > 0)) return 0;
  for (let e = 0; e <= 7; e++) {
    const scale = 10 ** e;
    // mantissa m represents m * 10 / 32 * 10^e; choose the smallest m whose value >= n.
    const m = Math.ceil((n * 32) / (10 * scale) - EPS);
    if (m <= 31) return (m << 3) | e;
  }
  return 0xff; // 31 * 10/32 * 10^7, about 9.7e7: the largest representable size
}

/** The size a quantized byte stands for, rounded to a whole number of clients. */
export function unquantizeGroupSize(q: number): number {
  const m = (q & 0xff) >> 3;
  const e = q & 7;
  return Math.round(((m * 10) / 32) * 10 ** e);
}
