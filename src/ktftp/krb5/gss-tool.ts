#!/usr/bin/env node
/**
 * ktftp-gss: checks a KTFTP Kerberos setup from the command line, and drives the lab tests.
 *
 *   gss-tool init SERVICE [--ccache NAME] [--no-mutual] [--out FILE]
 *       makes a token for SERVICE (ktftp@host or ktftp/host@REALM) from the ticket cache; writes it to FILE
 *       (default: base64 on stdout)
 *   gss-tool accept --keytab FILE [--service SERVICE] [--rcache NAME] [--in FILE] [--repeat N]
 *       accepts the token from FILE (default: base64 on stdin) N times (default 1)
 *   gss-tool roundtrip SERVICE --keytab FILE [--ccache NAME] [--rcache NAME] [--service-check] [--tamper-response]
 *       both sides in one process, including the mutual-authentication answer: the operator's check that
 *       ktftpd's keytab accepts the user's tickets
 *
 * Every attempt prints one JSON line: {"ok":true,"principal":...} or {"ok":false,"kind":...,"error":...}.
 * Exit status 0 when every attempt succeeded, 1 when one failed, 2 on a usage error.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { acceptContext, initiateContext, krb5ErrorKind } from './index.js';

function usage(msg: string): never {
  process.stderr.write(`gss-tool: ${msg}\n`);
  process.exit(2);
}

function parse(argv: string[]): { pos: string[]; opt: Map<string, string> } {
  const pos: string[] = [];
  const opt = new Map<string, string>();
  const flags = new Set(['--no-mutual', '--service-check', '--tamper-response']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (flags.has(a)) opt.set(a, '1');
    else if (a.startsWith('--')) {
      const v = argv[i + 1];
      if (v === undefined) usage(`option ${a} needs a value`);
      opt.set(a, v);
      i++;
    } else pos.push(a);
  }
  return { pos, opt };
}

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function failure(error: string): Record<string, unknown> {
  return { ok: false, kind: krb5ErrorKind(error), error };
}

async function main(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  const { pos, opt } = parse(rest);
  const krb5Config = opt.get('--krb5-config');
  const common = krb5Config !== undefined ? { krb5Config } : {};
  switch (cmd) {
    case 'init': {
      if (pos.length !== 1) usage('init needs one SERVICE');
      const ccache = opt.get('--ccache');
      const t0 = performance.now();
      const c = await initiateContext(pos[0], { ...common, ...(ccache !== undefined ? { ccache } : {}), mutual: !opt.has('--no-mutual') });
      if (!c.ok) {
        line(failure(c.error));
        return 1;
      }
      const out = opt.get('--out');
      if (out !== undefined) writeFileSync(out, c.value.token);
      line({ ok: true, service: c.value.service, tokenBytes: c.value.token.length, ms: Math.round(performance.now() - t0), ...(out === undefined ? { token: c.value.token.toString('base64') } : {}) });
      return 0;
    }
    case 'accept': {
      const keytab = opt.get('--keytab') ?? usage('accept needs --keytab FILE');
      const input = opt.get('--in');
      const token = input !== undefined ? readFileSync(input) : Buffer.from(readFileSync(0, 'utf8').trim(), 'base64');
      const repeat = Number(opt.get('--repeat') ?? '1');
      if (!Number.isInteger(repeat) || repeat < 1) usage('--repeat needs a positive integer');
      const servicePrincipal = opt.get('--service');
      const replayCache = opt.get('--rcache');
      let status = 0;
      for (let i = 0; i < repeat; i++) {
        const t0 = performance.now();
        const r = await acceptContext(token, {
          ...common,
          keytab,
          ...(servicePrincipal !== undefined ? { servicePrincipal } : {}),
          ...(replayCache !== undefined ? { replayCache } : {}),
        });
        const ms = Math.round(performance.now() - t0);
        if (r.ok) line({ ok: true, principal: r.value.principal, responseBytes: r.value.responseToken?.length ?? 0, servicePrincipal: r.value.servicePrincipal, ms });
        else {
          line({ ...failure(r.error), ms });
          status = 1;
        }
      }
      return status;
    }
    case 'roundtrip': {
      if (pos.length !== 1) usage('roundtrip needs one SERVICE');
      const keytab = opt.get('--keytab') ?? usage('roundtrip needs --keytab FILE');
      const ccache = opt.get('--ccache');
      const replayCache = opt.get('--rcache');
      const t0 = performance.now();
      const c = await initiateContext(pos[0], { ...common, ...(ccache !== undefined ? { ccache } : {}) });
      if (!c.ok) {
        line({ step: 'init', ...failure(c.error) });
        return 1;
      }
      const t1 = performance.now();
      const a = await acceptContext(c.value.token, {
        ...common,
        keytab,
        ...(opt.has('--service-check') ? {} : { servicePrincipal: pos[0] }),
        ...(replayCache !== undefined ? { replayCache } : {}),
      });
      if (!a.ok) {
        line({ step: 'accept', ...failure(a.error) });
        return 1;
      }
      const t2 = performance.now();
      const response = Buffer.from(a.value.responseToken ?? Buffer.alloc(0));
      if (opt.has('--tamper-response') && response.length > 0) response[response.length - 1] ^= 0x01; // lab: a forged answer
      const f = await c.value.finish(response);
      if (!f.ok) {
        line({ step: 'finish', ...failure(f.error) });
        return 1;
      }
      const t3 = performance.now();
      line({
        ok: true,
        principal: a.value.principal,
        servicePrincipal: a.value.servicePrincipal,
        tokenBytes: c.value.token.length,
        responseBytes: a.value.responseToken?.length ?? 0,
        initMs: Math.round(t1 - t0),
        acceptMs: Math.round(t2 - t1),
        finishMs: Math.round(t3 - t2),
      });
      return 0;
    }
    default:
      usage('command must be init, accept or roundtrip');
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`gss-tool: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(70);
  },
);
