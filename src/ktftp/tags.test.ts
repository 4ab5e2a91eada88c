import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorize, parseIdentTable, parseTagTable } from './tags.js';

test('tag file: comments and blanks skipped, holders implicit, errors name file and line', () => {
  const t = parseTagTable('# c\n\nlog | /var/log/a.log | alice, bob\npub|/srv/p|anonymous\n', '/etc/tags');
  assert.ok(t.ok);
  assert.deepEqual(t.value.entries.get('log'), { tag: 'log', path: '/var/log/a.log', acl: ['alice', 'bob'] });
  const bad: [string, RegExp][] = [
    ['log|/a|x\nx|/b\n', /^\/etc\/tags:2: expected tag\|\/absolute\/path\|acl/],
    ['log|relative/path|a\n', /:1: path "relative\/path" is not absolute/],
    ['log|/a/../b|a\n', /:1: path "\/a\/..\/b" is not a normalized/],
    ['log~|/a|a\n', /:1: tag "log~" ends with "~"/],
    ['../x|/a|a\n', /:1: tag "..\/x"/],
    ['a|/a|x\na|/b|y\n', /:2: tag "a" defined twice/],
    ['a|/a|al ice\n', /:1: ACL entry "al ice"/],
  ];
  for (const [text, re] of bad) {
    const r = parseTagTable(text, '/etc/tags');
    assert.ok(!r.ok);
    assert.match(r.error, re);
  }
});

test('identity file: name|fingerprint, case-normalized; a fingerprint belongs to one name', () => {
  const i = parseIdentTable('alice|ab:cd:ef\nalice|01:02\n', 'ids');
  assert.ok(i.ok);
  assert.equal(i.value.byFingerprint.get('AB:CD:EF'), 'alice');
  const dup = parseIdentTable('alice|AB:CD\nbob|ab:cd\n', 'ids');
  assert.ok(!dup.ok && /ids:2: fingerprint already belongs to "alice"/.test(dup.error));
  const anon = parseIdentTable('anonymous|AB:CD\n', 'ids');
  assert.ok(!anon.ok);
  const badfp = parseIdentTable('alice|xyz\n', 'ids');
  assert.ok(!badfp.ok && /ids:1:/.test(badfp.error));
});

test('ACL: names, * for any authenticated identity, anonymous for anyone; holders share the ACL', () => {
  const t = parseTagTable('log|/l|alice\nall|/a|*\npub|/p|anonymous\nnone|/n|\n', 'tags');
  assert.ok(t.ok);
  const alice = { kind: 'named', name: 'alice', via: 'key' } as const;
  const bob = { kind: 'named', name: 'bob@EXAMPLE.ORG', via: 'krb5' } as const;
  const anon = { kind: 'anonymous' } as const;
  assert.deepEqual(authorize(t.value, 'log~', alice), { ok: true, path: '/l~', entry: t.value.entries.get('log'), holder: true });
  assert.equal(authorize(t.value, 'log', bob).ok, false);
  assert.equal(authorize(t.value, 'all', bob).ok, true);
  assert.equal(authorize(t.value, 'all', anon).ok, false);
  assert.equal(authorize(t.value, 'pub', anon).ok, true);
  assert.equal(authorize(t.value, 'pub~', alice).ok, true);
  assert.equal(authorize(t.value, 'none', alice).ok, false);
  const unknown = authorize(t.value, 'nosuch', alice);
  const refused = authorize(t.value, 'log', bob);
  assert.ok(!unknown.ok && !refused.ok && unknown.code === 2 && refused.code === 2);
  assert.equal(authorize(t.value, '../l', alice).ok, false);
});
