/**
 * How IDs are written, once: UFTP's 32-bit source, group and client IDs and nonces.
 *   hexId(0x0a010203)    "0A010203"     as the real daemons print IDs in their logs
 *   hex32(0x0a010203)    "0x0a010203"   in descriptions, JSON and error messages
 *   groupTag(g, i)       "[0A010203/00]" the prefix of a session's log lines
 */
export function hexId(n: number): string {
  return (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

export function groupTag(groupId: number, groupInst: number): string {
  return `[${hexId(groupId)}/${groupInst.toString(16).toUpperCase().padStart(2, '0')}]`;
}
