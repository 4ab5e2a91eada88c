/**
 * The nat figure: network B sits behind a masquerading gateway. Unsolicited inbound traffic is dropped
 * (even though the router has a route to B), traffic B starts goes out with the gateway's address and
 * its answers come back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, downPrefix, probeReport, type PingReport, type RecvReport } from '../../src/lab/index.js';

const prefix = `ulabtn${process.pid % 100000}`;
after(async () => { await downPrefix(prefix); });

test('nat: unsolicited inbound is dropped, outbound is masqueraded and answered', { timeout: 60_000 }, async () => {
  const lab = await Lab.up('nat', { prefix });
  try {
    const before = await lab.natDropped();
    // Unsolicited: from the server to cproxyB's private address (routed to the gateway) and to the gateway's
    // public address.
    const rx = await lab.probe('cproxyB', 'recv', ['--port', '1044', '--ms', '3000']);
    const rxGw = await lab.probe('natgw', 'recv', ['--port', '1044', '--ms', '3000']);
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('cproxyB'), '--port', '1044', '--count', '20', '--gap-us', '2000'])).wait();
    await (await lab.probe('server', 'send', ['--to', lab.addrOf('natgw', 'W'), '--port', '1044', '--count', '20', '--gap-us', '2000'])).wait();
    await Promise.all([rx.wait(), rxGw.wait()]);
    assert.equal(probeReport<RecvReport>(rx).count, 0, 'nothing unsolicited reaches the client proxy');
    assert.equal(probeReport<RecvReport>(rxGw).count, 0, 'nothing unsolicited reaches the gateway');
    assert.ok((await lab.natDropped()) - before >= 40, 'the gateway counted the drops');

    // Solicited: cproxyB pings the server; the server sees the gateway's address and its answers get back.
    const rxS = await lab.probe('server', 'recv', ['--port', '5005', '--ms', '2000']);
    await (await lab.probe('clientB1', 'send', ['--to', lab.addrOf('server'), '--port', '5005', '--count', '3'])).wait();
    await rxS.wait();
    const seen = probeReport<RecvReport>(rxS);
    assert.equal(seen.count, 3);
    assert.deepEqual([...new Set(seen.sources.map((s) => s.split(':')[0]))], [lab.addrOf('natgw', 'W')], 'source masqueraded');
    const echo = await lab.probe('server', 'echo', ['--port', '5006', '--ms', '5000']);
    const ping = await lab.probe('cproxyB', 'ping', ['--to', lab.addrOf('server'), '--port', '5006', '--count', '5', '--gap-ms', '50', '--ms', '1500']);
    await ping.wait();
    await echo.kill();
    assert.equal(probeReport<PingReport>(ping).rtts.length, 5, 'answers to outbound traffic come back through the NAT');
  } finally {
    await lab.down();
  }
});
