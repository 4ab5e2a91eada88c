/**
 * Reading UDP traffic out of pcap and pcapng captures, streaming, with no dependencies.
 *
 *   for await (const r of readUdpDatagrams(createReadStream(path), { port: 1044 })) ...
 */
export * from './capture.js';
export * from './link.js';
export * from './ip.js';
export * from './datagrams.js';
export * from './writer.js';
