/**
 * Kerberos (GSSAPI, krb5 mechanism) for KTFTP: the caller's identity is a Kerberos principal.
 *
 * Client: `initiateContext("ktftp@host")` reads the caller's ticket cache and yields the initial context token
 * (a GSS-wrapped AP-REQ). Server: `acceptContext(token, { keytab })` checks it against the service keytab and
 * yields the client principal (e.g. `alice@EXAMPLE.TEST`) and, with mutual authentication, a response token
 * (AP-REP) that the client checks with `ClientContext.finish()`.
 *
 * The GSSAPI work is done by the `kerberos` npm binding (MIT krb5 through libgssapi_krb5). That binding reads
 * its configuration only from the process environment (KRB5_CONFIG, KRB5CCNAME, KRB5_KTNAME, KRB5RCACHENAME),
 * so every call here sets the variables it was given for exactly the duration of the call and restores them
 * afterwards; calls are serialized so that two concurrent calls (a server serving many clients) never see each
 * other's settings. Other code of the same process should not read those variables concurrently.
 *
 * Binding to the KTFTP session: the binding exposes neither GSSAPI channel bindings nor a server-side
 * getMIC/unwrap, so the token cannot carry the KTFTP handshake transcript. The caller must bind it outside
 * GSSAPI; see README.md beside this file ("Binding the token to the session").
 *
 * Errors are values: every function returns `Result<T, string>` with one line naming what went wrong and what
 * to do; `krb5ErrorKind()` classifies such a line (expired, replay, wrong key...).
 */

import { accessSync, constants as fsConstants } from 'node:fs';
import type { Result } from '../../wire/result.js';

type KerberosModule = typeof import('kerberos');
type KerberosClient = import('kerberos').KerberosClient;

/** What went wrong, for callers that map Kerberos failures to protocol errors or exit codes. */
export type Krb5ErrorKind =
  | 'unavailable'     // the kerberos addon did not load
  | 'bad-argument'    // a malformed service name, keytab or ccache name
  | 'no-credentials'  // no ticket cache, or no TGT in it (run kinit)
  | 'expired'         // the TGT or the service ticket has expired
  | 'clock-skew'      // client and server clocks differ by more than the allowed skew
  | 'replay'          // this token was already accepted once (replay cache)
  | 'wrong-key'       // the token is for another service, or the keytab lacks the ticket's key (version)
  | 'no-keytab'       // the keytab file does not exist or is unreadable
  | 'unknown-service' // the KDC does not know the service principal
  | 'kdc-unreachable' // no KDC answered
  | 'defective'       // the token is not a valid krb5 GSSAPI token
  | 'wrong-service'   // accepted, but for a service other than the one this server offers
  | 'timeout'         // the library did not answer in time
  | 'other';

const KIND_PATTERNS: ReadonlyArray<readonly [RegExp, Krb5ErrorKind]> = [
  [/Request is a replay/i, 'replay'],
  [/expired/i, 'expired'],
  [/Clock skew too great/i, 'clock-skew'],
  [/No Kerberos credentials available|No credentials cache found|Credentials cache file .* not found|Matching credential not found/i, 'no-credentials'],
  [/Key table file .* not found|keytab .* (not readable|does not exist)|Permission denied/i, 'no-keytab'],
  [/not found in keytab|No key table entry found|Key table entry not found|Wrong principal in request|Cannot decrypt|Integrity check failed|Decrypt integrity check failed|Wrong service/i, 'wrong-key'],
  [/not found in Kerberos database/i, 'unknown-service'],
  [/Cannot contact any KDC|Cannot find KDC/i, 'kdc-unreachable'],
  [/defective|Invalid token|malformed|ASN\.1|No challenge parameter|unsupported mechanism|not a valid/i, 'defective'],
];

/** Prefix that every error line of this module starts with: `krb5 <kind>: `. */
function fail<T>(kind: Krb5ErrorKind, message: string): Result<T, string> {
  return { ok: false, error: `krb5 ${kind}: ${message}` };
}

/** The kind of a failure line produced by this module (or 'other' for a foreign line). */
export function krb5ErrorKind(error: string): Krb5ErrorKind {
  const m = /^krb5 ([a-z-]+): /.exec(error);
  return m ? (m[1] as Krb5ErrorKind) : 'other';
}

const ADVICE: Partial<Record<Krb5ErrorKind, string>> = {
  'no-credentials': 'no Kerberos ticket; run kinit',
  expired: 'Kerberos ticket expired; run kinit again',
  'clock-skew': 'client and server clocks differ too much; synchronize them',
  replay: 'token already used (replay refused)',
  'wrong-key': 'token not for this server\'s key: wrong service principal, or the keytab is out of date',
  'no-keytab': 'keytab missing or unreadable',
  'unknown-service': 'the KDC does not know this service principal; the server needs one (kadmin addprinc)',
  'kdc-unreachable': 'no KDC reachable for the realm; check krb5.conf',
  defective: 'not a valid Kerberos GSSAPI token',
};

function classify(raw: string): Krb5ErrorKind {
  for (const [re, kind] of KIND_PATTERNS) if (re.test(raw)) return kind;
  return 'other';
}

/** One line from a library error: our advice first, then the library's own words. */
function libraryFailure<T>(what: string, e: unknown): Result<T, string> {
  const raw = (e instanceof Error ? e.message : String(e))
    .replace(/^Unspecified GSS failure\.\s+Minor code may provide more information:\s*/, '')
    .replace(/\s+/g, ' ')
    .trim();
  const kind = classify(raw);
  const advice = ADVICE[kind];
  return fail(kind, advice ? `${what}: ${advice} (${raw})` : `${what}: ${raw}`);
}

let loaded: Promise<Result<KerberosModule, string>> | undefined;

/** Loads the native binding on first use, so that KTFTP without --krb5 works where the addon is missing. */
function binding(): Promise<Result<KerberosModule, string>> {
  loaded ??= import('kerberos').then(
    (m): Result<KerberosModule, string> => {
      const mod = ((m as { default?: KerberosModule }).default ?? m) as KerberosModule;
      return { ok: true, value: mod };
    },
    (e: unknown): Result<KerberosModule, string> =>
      fail('unavailable', `Kerberos support unavailable: the "kerberos" addon did not load (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); install libkrb5-dev and run npm ci`),
  );
  return loaded;
}

/** Per-call Kerberos environment; unset fields leave the process environment as it is. */
export interface Krb5Env {
  /** Path of krb5.conf (KRB5_CONFIG); default: the process environment, else /etc/krb5.conf. */
  krb5Config?: string;
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Runs `fn` alone, with `vars` set in process.env (undefined values: left as they are), restoring the previous
 * values when `fn` settles. The binding works in libuv's thread pool and reads the environment there, so the
 * variables must stay set until the native call has finished, even if the caller stopped waiting.
 */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    const saved = new Map<string, string | undefined>();
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) continue;
      saved.set(k, process.env[k]);
      process.env[k] = v;
    }
    try {
      return await fn();
    } finally {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  const p = queue.then(run, run);
  queue = p.catch(() => undefined);
  return p;
}

type Settled<T> = { readonly ok: true; readonly v: T } | { readonly ok: false; readonly e: unknown };

/**
 * Runs `work` under `env` (see withEnv) and waits at most `ms` for it. On timeout the caller gets an error at
 * once while the native call keeps the queue (and its environment) until it really finishes.
 */
async function krb5Call<T>(env: Record<string, string | undefined>, work: () => Promise<T>, ms: number, what: string): Promise<Result<Settled<T>, string>> {
  const settled = withEnv(env, () =>
    work().then(
      (v): Settled<T> => ({ ok: true, v }),
      (e: unknown): Settled<T> => ({ ok: false, e }),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Result<Settled<T>, string>>((resolve) => {
    timer = setTimeout(() => resolve(fail('timeout', `${what}: no answer from the Kerberos library within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([settled.then((value): Result<Settled<T>, string> => ({ ok: true, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const SERVICE_PART = /^[A-Za-z0-9._-]+$/;
const HOST_PART = /^[A-Za-z0-9.-]+$/;

/** A service principal in GSSAPI host-based form, `service@host`, and the realm if one was written. */
export interface ServiceName {
  readonly hostBased: string;
  readonly service: string;
  readonly host: string;
  readonly realm?: string;
}

/**
 * Parses `ktftp@host` (GSSAPI host-based form), `ktftp/host` or `ktftp/host@REALM` (Kerberos form).
 * The realm of the Kerberos form is not passed to the library (it takes host-based names only): the realm is
 * found from krb5.conf's [domain_realm] or default_realm, or by KDC referral.
 */
export function parseServiceName(name: string): Result<ServiceName, string> {
  let service: string;
  let host: string;
  let realm: string | undefined;
  const slash = name.indexOf('/');
  if (slash >= 0) {
    service = name.slice(0, slash);
    const rest = name.slice(slash + 1);
    const at = rest.indexOf('@');
    host = at >= 0 ? rest.slice(0, at) : rest;
    realm = at >= 0 ? rest.slice(at + 1) : undefined;
    if (realm !== undefined && !/^[A-Za-z0-9._-]+$/.test(realm)) {
      return fail('bad-argument', `service principal "${name}": bad realm "${realm}"`);
    }
  } else {
    const at = name.indexOf('@');
    if (at < 0) return fail('bad-argument', `service principal "${name}": expected service@host, service/host or service/host@REALM`);
    service = name.slice(0, at);
    host = name.slice(at + 1);
  }
  if (!SERVICE_PART.test(service)) return fail('bad-argument', `service principal "${name}": bad service name "${service}"`);
  if (!HOST_PART.test(host)) return fail('bad-argument', `service principal "${name}": bad host name "${host}"`);
  host = host.toLowerCase();
  return { ok: true, value: { hostBased: `${service}@${host}`, service, host, ...(realm !== undefined ? { realm } : {}) } };
}

/** `FILE:/path` for a bare path; a name with a type prefix (FILE:, DIR:, KEYRING:, KCM:, MEMORY:) as it is. */
function withType(name: string): string {
  return /^[A-Za-z0-9]+:/.test(name) ? name : `FILE:${name}`;
}

const DEFAULT_TIMEOUT_MS = 20_000;

export interface InitiateOptions extends Krb5Env {
  /** Credentials cache for this call (KRB5CCNAME), e.g. `FILE:/tmp/krb5cc_1000` or a path; default: the environment's. */
  ccache?: string;
  /** Request mutual authentication, so the server answers with a token for `finish()` (default true). */
  mutual?: boolean;
  /** Give up after this many milliseconds (default 20000; KDC retries can take long). */
  timeoutMs?: number;
}

/** A client-side security context after the first step. */
export interface ClientContext {
  /** The initial context token (GSS krb5 mech token holding the AP-REQ), about 600-800 bytes. Send it to the server. */
  readonly token: Buffer;
  /** The service name the token is for, host-based form (`ktftp@host`). */
  readonly service: string;
  /** Whether the server must answer with a response token (mutual authentication). */
  readonly mutual: boolean;
  /**
   * With mutual authentication: checks the server's response token (AP-REP), proving that the server holds the
   * service key. Without: succeeds when called with an empty buffer.
   */
  finish(responseToken: Buffer): Promise<Result<void, string>>;
}

/**
 * Client: builds the initial GSSAPI token for `servicePrincipal` from the caller's ticket cache.
 * Contacts the KDC for a service ticket when the cache holds only the TGT.
 */
export async function initiateContext(servicePrincipal: string, opts: InitiateOptions = {}): Promise<Result<ClientContext, string>> {
  const name = parseServiceName(servicePrincipal);
  if (!name.ok) return name;
  const lib = await binding();
  if (!lib.ok) return lib;
  const k = lib.value;
  const mutual = opts.mutual ?? true;
  const env = { KRB5_CONFIG: opts.krb5Config, KRB5CCNAME: opts.ccache !== undefined ? withType(opts.ccache) : undefined };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const what = `token for ${name.value.hostBased}`;

  const first = await krb5Call(
    env,
    async (): Promise<{ client: KerberosClient; token: string }> => {
      const client = await k.initializeClient(name.value.hostBased, {
        mechOID: k.GSS_MECH_OID_KRB5,
        gssFlag: (mutual ? k.GSS_C_MUTUAL_FLAG : 0) | k.GSS_C_INTEG_FLAG | k.GSS_C_CONF_FLAG,
      });
      const token = await client.step('');
      return { client, token };
    },
    timeoutMs,
    what,
  );
  if (!first.ok) return first;
  if (!first.value.ok) return libraryFailure(what, first.value.e);
  const { client, token } = first.value.v;
  if (!token) return fail('other', `${what}: the library produced an empty token`);

  let finished = false;
  const finish = async (responseToken: Buffer): Promise<Result<void, string>> => {
    if (finished) return fail('bad-argument', `${what}: finish() called twice`);
    finished = true;
    if (!mutual) {
      return responseToken.length === 0 ? { ok: true, value: undefined } : fail('bad-argument', `${what}: unexpected response token without mutual authentication`);
    }
    if (responseToken.length === 0) return fail('defective', `${what}: server sent no response token; mutual authentication failed`);
    const r = await krb5Call(env, () => client.step(responseToken.toString('base64')), timeoutMs, `${what}: server response`);
    if (!r.ok) return r;
    if (!r.value.ok) return libraryFailure(`${what}: server response`, r.value.e);
    if (!client.contextComplete) return fail('defective', `${what}: server response did not complete the context`);
    return { ok: true, value: undefined };
  };
  return { ok: true, value: { token: Buffer.from(token, 'base64'), service: name.value.hostBased, mutual, finish } };
}

export interface AcceptOptions extends Krb5Env {
  /** Keytab with the service key (KRB5_KTNAME for this call): a path or `FILE:/path`. */
  keytab: string;
  /**
   * Accept only tokens for this service principal (`ktftp@host`, `ktftp/host`, `ktftp/host@REALM`).
   * Default: any key in the keytab whose service part is `service`.
   */
  servicePrincipal?: string;
  /** Service part required when `servicePrincipal` is not given (default `ktftp`). Guards against a keytab shared with host/ or HTTP/ keys. */
  service?: string;
  /**
   * Replay cache (KRB5RCACHENAME), e.g. `file2:/var/lib/ktftpd/rcache2`. Default: MIT's, a file
   * /var/tmp/krb5_<euid>.rcache2 shared by all acceptors of this user. `none:` disables replay detection.
   */
  replayCache?: string;
  /** Give up after this many milliseconds (default 20000). */
  timeoutMs?: number;
}

export interface Accepted {
  /** The authenticated client principal, e.g. `alice@EXAMPLE.TEST`. */
  readonly principal: string;
  /** The token to return to the client (AP-REP) when it asked for mutual authentication. */
  readonly responseToken?: Buffer;
  /** The service principal the token was for, when the library reports it (only without `servicePrincipal`). */
  readonly servicePrincipal?: string;
}

/** Server: validates an initial context token against the keytab and names the client. */
export async function acceptContext(token: Buffer, opts: AcceptOptions): Promise<Result<Accepted, string>> {
  if (token.length === 0) return fail('defective', 'empty Kerberos token');
  let hostBased = '';
  if (opts.servicePrincipal !== undefined) {
    const name = parseServiceName(opts.servicePrincipal);
    if (!name.ok) return name;
    hostBased = name.value.hostBased;
  }
  const keytab = withType(opts.keytab);
  if (keytab.startsWith('FILE:')) {
    const path = keytab.slice('FILE:'.length);
    try {
      accessSync(path, fsConstants.R_OK);
    } catch {
      return fail('no-keytab', `keytab ${path} does not exist or is not readable`);
    }
  }
  const lib = await binding();
  if (!lib.ok) return lib;
  const k = lib.value;
  const env = { KRB5_CONFIG: opts.krb5Config, KRB5_KTNAME: keytab, KRB5RCACHENAME: opts.replayCache };
  const what = `accepting token${hostBased ? ` for ${hostBased}` : ''}`;
  const r = await krb5Call(
    env,
    async () => {
      const server = await k.initializeServer(hostBased);
      await server.step(token.toString('base64'));
      return server;
    },
    opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    what,
  );
  if (!r.ok) return r;
  if (!r.value.ok) return libraryFailure(what, r.value.e);
  const server = r.value.v;
  if (!server.contextComplete || !server.username) return fail('defective', `${what}: context not complete after one step`);
  const target = typeof server.targetName === 'string' && server.targetName ? server.targetName : undefined;
  if (!hostBased) {
    const want = opts.service ?? 'ktftp';
    const svc = target?.split('/')[0];
    if (svc !== want) {
      return fail('wrong-service', `${what}: token is for ${target ?? 'an unnamed service'}, this server accepts only ${want}/… principals`);
    }
  }
  const response = server.response ? Buffer.from(server.response, 'base64') : undefined;
  return {
    ok: true,
    value: {
      principal: server.username,
      ...(response && response.length > 0 ? { responseToken: response } : {}),
      ...(target ? { servicePrincipal: target } : {}),
    },
  };
}
