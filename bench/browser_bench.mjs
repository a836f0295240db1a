// Browser benchmark: bytes per second from the costore store into a page's
// File, through the extension and its native host, against the same page
// fetching the same file from a local static HTTP server (what a page has
// without costore). One run, one browser, one machine; bench/browser-run
// starts it on a private bus with the real costored and records the result.
//
// Measured, each over `rounds` interleaved rounds (median shown):
//   baseline   fetch('http://localhost:<port>/file') -> Blob -> File
//   store      requestFileHandle(hash) -> getFile() over the loopback endpoint
//   store/nm   the same through chunked native messages (the fallback)
//   upload     fetch from the static server, then create -> write(blob) ->
//              close(): page to store, verified (upload/nm: chunked messages)
// Every read is checked once (SHA-256 in the page) before the timed rounds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';

import * as lib from '../tests/browser/lib.mjs';

const size = Number(process.env.COSTORE_BENCH_BROWSER_BYTES || 100 * 1000 * 1000);
const rounds = Number(process.env.COSTORE_BENCH_BROWSER_ROUNDS || 3);

function makeFile(dir) {
  const file = path.join(dir, 'bench.bin');
  const fd = fs.openSync(file, 'w');
  const hash = createHash('sha256');
  let seed = 0x9e3779b9;
  const block = Buffer.alloc(1 << 20);
  for (let done = 0; done < size;) {
    for (let i = 0; i < block.length; i += 4) {
      seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
      block.writeUInt32LE(seed, i);
    }
    const n = Math.min(block.length, size - done);
    fs.writeSync(fd, block, 0, n);
    hash.update(block.subarray(0, n));
    done += n;
  }
  fs.closeSync(fd);
  return { file, hex: hash.digest('hex') };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'costore-browser-bench-'));
const { file, hex } = makeFile(dir);
const server = await lib.startServer('localhost', 0, { '/file': { file } });
const agent = await lib.startAgent('allow-always');
const browser = await lib.launchBrowser();
try {
  const page = await browser.context.newPage();
  await page.goto(`${server.origin}/`);
  const worker = await browser.worker();
  const setTransport = (v) => worker.evaluate((t) => chrome.storage.local.set({ transport: t }), v);

  // Into the store first, as the page would after a download (timed too).
  const stored = await page.evaluate(async (h) => {
    const blob = await (await fetch('/file')).blob();
    return window.cosStore(h, blob);
  }, hex);
  if (!stored.ok) throw new Error(`store failed: ${stored.name}: ${stored.message}`);

  const run = {
    baseline: (check) => page.evaluate(async (c) => {
      const t0 = performance.now();
      const blob = await (await fetch('/file', { cache: 'no-store' })).blob();
      const file = new File([blob], 'file');
      const ms = performance.now() - t0;
      return { ok: true, ms, size: file.size, sha256: c ? await window.sha256Hex(file) : null };
    }, check),
    store: (check) => page.evaluate(([h, c]) => window.cosRead(h, { hash: c }), [hex, check]),
    upload: () => page.evaluate(async (h) => {
      const blob = await (await fetch('/file', { cache: 'no-store' })).blob();
      return window.cosStore(h, blob);
    }, hex),
  };

  const results = { baseline: [], store: [], 'store/nm': [], upload: [], 'upload/nm': [] };
  // Checked once each: the right bytes, as a File.
  for (const [name, transport] of [['baseline', null], ['store', 'auto'], ['store/nm', 'native']]) {
    if (transport) await setTransport(transport);
    const r = await run[name === 'baseline' ? 'baseline' : 'store'](true);
    if (!r.ok || r.size !== size || r.sha256 !== hex) throw new Error(`${name}: wrong result ${JSON.stringify(r)}`);
  }
  for (let round = 0; round < rounds; ++round) {
    results.baseline.push((await run.baseline(false)).ms);
    await setTransport('auto');
    results.store.push((await run.store(false)).ms);
    await setTransport('native');
    results['store/nm'].push((await run.store(false)).ms);
    await setTransport('auto');
    const up = await run.upload();
    if (!up.ok) throw new Error(`upload: ${up.name}: ${up.message}`);
    results.upload.push(up.ms);  // includes the fetch from the static server
    await setTransport('native');
    const upNm = await run.upload();
    if (!upNm.ok) throw new Error(`upload/nm: ${upNm.name}: ${upNm.message}`);
    results['upload/nm'].push(upNm.ms);
    await setTransport('auto');
  }
  const chromium = browser.context.browser()?.version() || '';
  const summary = Object.fromEntries(Object.entries(results).map(([k, ms]) => [k, {
    ms, median: median(ms), mbps: size / 1e6 / (median(ms) / 1000) }]));
  console.log(JSON.stringify({ size, rounds, chromium, agentPrompts: agent.requests.length, summary }));
} finally {
  await browser.close();
  await agent.stop();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
