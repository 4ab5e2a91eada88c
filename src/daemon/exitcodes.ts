/**
 * Exit values of the UFTP daemons, as `man uftpproxyd` lists them. Our daemons (uftpproxyd, ktftpd) use
 * the same numbers so scripts written for the real programs keep working.
 */
export const ExitCode = {
  /** The daemon started successfully and is running in the background (or a foreground run ended normally). */
  OK: 0,
  /** An invalid command line parameter was specified. */
  USAGE: 1,
  /** An error occurred while attempting to initialize network connections. */
  NETWORK: 2,
  /** An error occurred while reading or generating cryptographic key data. */
  KEYS: 3,
  /** An error occurred while opening or rolling the log file. */
  LOG: 4,
  /** A memory allocation error occurred. */
  MEMORY: 5,
  /** The daemon was interrupted by the user (SIGINT/SIGTERM). */
  INTERRUPTED: 6,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export function isExitCode(n: number): n is ExitCodeValue {
  return Number.isInteger(n) && n >= 0 && n <= 6;
}

/**
 * A start-up failure with the exit code it maps to. Thrown/returned by start-up steps and reported by the
 * daemon layer: printed once ("prog: message") and the process exits with `code`.
 */
export class StartupError extends Error {
  constructor(
    readonly code: ExitCodeValue,
    message: string,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}
