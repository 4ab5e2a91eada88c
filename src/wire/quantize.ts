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
 * 0.0 is 0 and 10.0 would be 32, i.e. size = (mantissa * 10 / 32) * 10^exponent, rounded to nearest.
 * Observed on the wire (UFTP 4.10, 2026-11-22): 1, 2, 3, 13 clients -> 0x18, 0x30, 0x50, 0x21.
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
 * Nearest representable size (mantissa m in 0..31, exponent e in 0..7, value m * 10/32 * 10^e); on a tie
 * or an equal value the smaller exponent wins. Matches UFTP 4.10 on the wire: 1 -> 0x18, 2 -> 0x30,
 * 3 -> 0x50, 13 -> 0x21. Nearest (rather than per-exponent rounding) keeps it monotone across decades.
 * n <= 0 gives 0; sizes beyond the range saturate at 0xff.
 */
export function quantizeGroupSize(n: number): number {
  if (!(n > 0)) return 0;
  let best = 0;
  let bestDist = n;
  for (let e = 0; e <= 7; e++) {
    const step = (10 / 32) * 10 ** e;
    const x = n / step;
    for (const m of [Math.min(31, Math.floor(x)), Math.min(31, Math.ceil(x))]) {
      if (m < 0 || m > 31) continue;
      const d = Math.abs(m * step - n);
      if (d < bestDist) {
        best = (m << 3) | e;
        bestDist = d;
      }
    }
  }
  return best;
}

/** The size a quantized byte stands for, rounded to a whole number of clients. */
export function unquantizeGroupSize(q: number): number {
  const m = (q & 0xff) >> 3;
  const e = q & 7;
  return Math.round(((m * 10) / 32) * 10 ** e);
}

/**
 * 16-bit rates in EXT_TFMCC_DATA_INFO (send rate, cc rate), EXT_TFMCC_ACK_INFO and CONG_CTRL (cc rate):
 * a 12-bit mantissa and a 4-bit exponent, value = (q >> 4) * 10 / 4096 * 10^(q & 15), the NORM
 * (RFC 5740) send-rate format. Observed: UFTP 4.10 sends 0x9274 where tshark shows 57202.
 */
export function unquantizeRate(q: number): number {
  return (((q & 0xffff) >> 4) * 10 / 4096) * 10 ** (q & 0xf);
}

export function quantizeRate(rate: number): number {
  if (!(rate > 0)) return 0;
  let e = Math.floor(Math.log10(rate));
  if (e < 0) e = 0;
  if (e > 15) return 0xffff;
  let m = Math.round((rate / 10 ** e) * 409.6);
  if (m > 4095) {
    if (e === 15) return 0xffff;
    e += 1;
    m = Math.round((rate / 10 ** e) * 409.6);
  }
  return (m << 4) | e;
}
