/**
 * What the client machine (uftpd) asks its driver to do, and what the driver answers. The machine never touches
 * the disk: every file operation is an effect carried out by src/files/disk.ts, whose answer comes back through
 * handleEffectResult(). Requests that have an answer carry a `req` number; the answer names it.
 */
import type { Endpoint } from '../../core/machine.js';
import type { Placed } from '../../files/paths.js';

/** How a received file ended up, in the words of the status file (-F RESULT lines; the real uftpd's words). */
export type ResultWord = 'copied' | 'overwritten' | 'skipped' | 'rejected';

/** Session identity in effects: the machine's own session number plus the group for names and logs. */
export interface SessionRef {
  /** Unique per session for the life of the machine (a group ID may come back after a restart). */
  readonly sid: number;
  readonly groupId: number;
  readonly serverId: number;
}

export type ClientEffect =
  | { readonly type: 'log'; readonly level: number; readonly text: string }
  | { readonly type: 'join'; readonly group: string; readonly source?: string }
  | { readonly type: 'leave'; readonly group: string; readonly source?: string }
  /** The status file's CONNECT line (-F): a session registered. */
  | { readonly type: 'connect'; readonly session: SessionRef; readonly from: Endpoint }
  /** The status file's RESULT line (-F) for one file; `size` in bytes. */
  | { readonly type: 'result'; readonly session: SessionRef; readonly name: string; readonly size: number; readonly word: ResultWord }
  /**
   * Open a regular file for receiving. `sync`: the server's sync mode (compare with an existing file and answer
   * skipped/overwrite); `preview`: sync preview (decide, receive nothing).
   */
  | {
      readonly type: 'open'; readonly req: number; readonly session: SessionRef; readonly fileId: number; readonly name: string; readonly placed: Placed;
      readonly size: number; readonly mtime: number; readonly sync: boolean; readonly preview: boolean;
    }
  /** Write bytes of an open file (the `req` of its open). No answer unless it fails. */
  | { readonly type: 'write'; readonly req: number; readonly offset: number; readonly data: Uint8Array }
  /** All blocks are in: flush, close, move into place, set the time, run -s when the manual says so. */
  | { readonly type: 'finish'; readonly req: number; readonly mtime: number }
  /**
   * Give up on an open file: close it and remove what was received (a temp file), never the destination's old file.
   * `keep` (-T, a failed session): close it and keep it for a restart.
   */
  | { readonly type: 'discard'; readonly req: number; readonly keep?: boolean }
  /** -T, a failed session: what a restart of it can skip (files complete, blocks of the file cut short). */
  | { readonly type: 'save-restart'; readonly session: SessionRef; readonly files: readonly RestartFile[] }
  | { readonly type: 'mkdir'; readonly req: number; readonly session: SessionRef; readonly placed: Placed; readonly mtime: number }
  | { readonly type: 'symlink'; readonly req: number; readonly session: SessionRef; readonly placed: Placed; readonly target: string }
  | { readonly type: 'delete'; readonly req: number; readonly session: SessionRef; readonly placed: Placed }
  | { readonly type: 'freespace'; readonly req: number; readonly session: SessionRef }
  /** The session is over (`ok`: confirmed by DONE_CONF or the completion timer; else aborted or timed out). */
  | { readonly type: 'session-end'; readonly session: SessionRef; readonly ok: boolean };

/** A file of a failed session, as a restart of it finds it (-T). `sections`: base64 bitmaps of received blocks. */
export interface RestartFile {
  readonly name: string;
  readonly size: number;
  readonly blockSize: number;
  readonly complete: boolean;
  readonly sections?: readonly (string | null)[];
}

/** COMPLETE status the driver decided (CompStat numbers) or an error text (the file is then rejected). */
export type ClientEffectResult =
  | {
      readonly req: number; readonly ok: true; readonly status: number; readonly free?: bigint;
      /** An open in a restarted session (-T): the file is complete already, or these blocks are in. */
      readonly restart?: { readonly complete: true } | { readonly complete: false; readonly sections: readonly (string | null)[] };
    }
  | { readonly req: number; readonly ok: false; readonly error: string; readonly disk?: boolean };
