// End to end: headless Chromium (Debian's) with the costore extension, the
// built native host, the real costored on a private bus
// (tests/support/with-costored) and costore-test-agent as the consent
// agent, driving pages on two loopback origins.
//
// Run by CTest (tests/browser/CMakeLists.txt) as
//   with-costored node --test e2e.test.mjs
// One browser and one daemon for the whole file; the tests run in order and
// build on each other (what origin A stored, origin B asks for).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import * as lib from './lib.mjs';

const MODEL = lib.env('COSTORE_MODEL');  // shared/data/models/silero_vad_16k_op15.onnx
const MODEL_HEX = lib.sha256File(MODEL);
const UNKNOWN_HEX = 'f'.repeat(64);
const MB = 1024 * 1024;

let serverA;  // http://127.0.0.1:<port>: stores
let serverB;  // http://localhost:<port>: asks
let serverC;  // http://127.0.0.1:<port>, which Chromium is told is a public address
// A host name Chromium resolves to 127.0.0.1 (--host-resolver-rules): a
// plain http:// origin that is not loopback by name, so not a secure context.
const INSECURE_HOST = 'insecure.test';
let browser;
let pageA;
let pageB;
let agent;

async function useAgent(mode) {
  if (agent) await agent.stop();
  agent = await lib.startAgent(mode);
}

async function openPage(server) {
  const page = await browser.context.newPage();
  await page.goto(`${server.origin}/`);
  return page;
}

async function setTransport(value) {
  const worker = await browser.worker();
  await worker.evaluate((v) => chrome.storage.local.set({ transport: v }), value);
}

// How content.js moved the bytes of the last transfer: 'frame' (the
// extension's transfer frame and the loopback endpoint), 'direct' or 'chunks'.
async function lastTransport() {
  const worker = await browser.worker();
  return (await worker.evaluate(() => chrome.storage.local.get('lastTransport'))).lastTransport;
}

async function stored(hex) {
  return (await lib.cli('info', `sha256:${hex}`)).code === 0;
}

// Bytes made in page A, stored by A; returns their hash.
async function storeGenerated(page, size, seed) {
  return page.evaluate(async ([n, s]) => {
    const blob = window.makeBytes(n, s);
    const hex = await window.sha256Hex(blob);
    const result = await window.cosStore(hex, blob, 3);
    if (!result.ok) throw new Error(`store failed: ${result.name}: ${result.message}`);
    return hex;
  }, [size, seed]);
}

before(async () => {
  const t0 = Date.now();
  process.on('exit', () => console.log(`# total ${Date.now() - t0} ms`));
  serverA = await lib.startServer('127.0.0.1', 0, {
    '/model.onnx': { file: MODEL },
    // A document of origin A's server with an opaque origin.
    '/sandboxed': { body: lib.INDEX_HTML, type: 'text/html',
                    headers: { 'Content-Security-Policy': 'sandbox allow-scripts' } },
  });
  serverB = await lib.startServer('localhost', 0, { '/model.onnx': { file: MODEL } });
  serverC = await lib.startServer('127.0.0.1', 0);
  await useAgent('deny');
  browser = await lib.launchBrowser({
    extraArgs: [`--ip-address-space-overrides=127.0.0.1:${new URL(serverC.origin).port}=public`,
                `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`],
  });
  pageA = await openPage(serverA);
  pageB = await openPage(serverB);
  console.log(`# browser ready in ${Date.now() - t0} ms`);
});

after(async () => {
  const t0 = Date.now();
  if (browser) await browser.close();
  console.log(`# browser closed in ${Date.now() - t0} ms`);
  if (agent) await agent.stop();
  if (serverA) await serverA.close();
  if (serverB) await serverB.close();
  if (serverC) await serverC.close();
});

test('the extension loads with the stable ID its manifest key gives', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(lib.env('COSTORE_EXTENSION_DIR'), 'manifest.json'), 'utf8'));
  const expected = lib.extensionIdFromKey(manifest.key);
  assert.equal(browser.extensionId, expected);
  assert.equal(expected, lib.env('COSTORE_EXTENSION_ID'));  // the one baked into the host manifests
});

test('pages get navigator.crossOriginStorage; malformed hashes are TypeErrors', async () => {
  const shape = await pageA.evaluate(async () => {
    const cos = navigator.crossOriginStorage;
    const errors = [];
    for (const bad of [undefined, 'abc', { algorithm: 'SHA-256', value: 'xyz' }, { algorithm: 'SHA-256' }]) {
      try {
        await cos.requestFileHandle(bad);
        errors.push('resolved');
      } catch (error) {
        errors.push(error.name);
      }
    }
    let other;
    try {
      await cos.requestFileHandle({ algorithm: 'SHA-512', value: 'a'.repeat(64) });
    } catch (error) {
      other = error.name;
    }
    return { type: typeof cos, fns: [typeof cos.requestFileHandle, typeof cos.requestFileHandles], errors, other,
             pageSeesChromeRuntime: typeof chrome !== 'undefined' && !!(chrome.runtime && chrome.runtime.sendMessage) };
  });
  assert.equal(shape.type, 'object');
  assert.deepEqual(shape.fns, ['function', 'function']);
  assert.deepEqual(shape.errors, ['TypeError', 'TypeError', 'TypeError', 'TypeError']);
  assert.equal(shape.other, 'NotSupportedError');
  assert.equal(shape.pageSeesChromeRuntime, false);  // a page cannot reach the extension's messaging
});

test('origin A downloads the model and stores it with create; it reads it back', async () => {
  const result = await pageA.evaluate(async (hex) => {
    const blob = await (await fetch('/model.onnx')).blob();
    const computed = await window.sha256Hex(blob);
    return { computed, store: await window.cosStore(computed === hex ? hex : computed, blob) };
  }, MODEL_HEX);
  assert.equal(result.computed, MODEL_HEX);
  assert.deepEqual({ ...result.store, ms: 0 }, { ok: true, ms: 0 });
  assert.ok(await stored(MODEL_HEX), 'costore info finds the stored file');

  const usage = await lib.cli('usage', `sha256:${MODEL_HEX}`, '--json');
  const principals = JSON.parse(usage.stdout).principals ?? JSON.parse(usage.stdout);
  const storer = principals.find((p) => p.origin === serverA.origin);
  assert.ok(storer && storer.stored, `origin A is recorded as the storer: ${usage.stdout}`);
  // The app is the browser that started the native host (its parent), not
  // the host binary that every browser shares.
  assert.ok(!storer.app.endsWith('/costore-native-host'), `the app is not the native host: ${storer.app}`);
  // (A host left over from an earlier run, its browser gone, has pid 1 for
  // a parent: not this browser's.)
  const hosts = lib.nativeHosts().filter((h) => h.ppid > 1);
  assert.ok(hosts.length > 0, 'the native host is running');
  for (const host of hosts) {
    assert.equal(host.parentExe, storer.app, `the app is the host's parent: ${JSON.stringify(hosts)}`);
  }
  if (!process.env.COSTORE_CHROMIUM) {
    // /usr/bin/chromium is a shell script that execs the browser binary.
    assert.equal(storer.app, '/usr/lib/chromium/chromium');
  }

  const read = await pageA.evaluate((hex) => window.cosRead(hex), MODEL_HEX);
  assert.equal(read.ok, true, JSON.stringify(read));
  assert.equal(read.isFile, true);
  assert.equal(read.sha256, MODEL_HEX);
  assert.equal(agent.requests.length, 0, 'reading back its own file asks nobody');
  assert.equal(await lastTransport(), 'frame', 'the bytes went over the loopback endpoint');
});

test('origin B, denied, gets NotFoundError exactly as for an unknown hash', async () => {
  const before = agent.requests.length;
  const denied = await pageB.evaluate((hex) => window.cosRead(hex), MODEL_HEX);
  const unknown = await pageB.evaluate((hex) => window.cosRead(hex), UNKNOWN_HEX);
  assert.equal(agent.requests.length, before + 1, 'the consent agent was asked once');
  assert.equal(denied.ok, false);
  assert.equal(denied.isDOMException, true);
  assert.equal(denied.name, 'NotFoundError');
  assert.deepEqual({ name: denied.name, message: denied.message }, { name: unknown.name, message: unknown.message });
  assert.equal(serverB.count('/model.onnx'), 0);
});

test('a create with the wrong bytes rejects with DataError and stores nothing', async () => {
  for (const transport of ['auto', 'native']) {
    await setTransport(transport);
    const result = await pageB.evaluate(async () => {
      const right = window.makeBytes(300000, 11);
      const wrong = window.makeBytes(300000, 12);
      const hex = await window.sha256Hex(right);
      return { hex, store: await window.cosStore(hex, wrong, 2) };
    });
    assert.equal(result.store.ok, false, transport);
    assert.equal(result.store.name, 'DataError', `${transport}: ${result.store.message}`);
    // Fixed words: nothing of what the daemon said (hashes, paths).
    assert.equal(result.store.message, 'the bytes do not match the hash', transport);
    assert.equal(await stored(result.hex), false, `${transport}: nothing stored`);
  }
  await setTransport('auto');
});

test('a page cannot forge its origin', async () => {
  // 1. Messages shaped like the extension's, naming origin A, from page B's
  //    own scripts: content.js took its one port at document_start, and no
  //    request carries an origin anyway. Nothing answers.
  const forged = await pageB.evaluate(async ([hex, originA]) => {
    const channel = new MessageChannel();
    const replies = [];
    channel.port1.onmessage = (event) => replies.push(event.data);
    window.postMessage({ type: 'costore-hello' }, '*', [channel.port2]);
    channel.port1.postMessage({ id: 1, op: 'open', hash: hex, origin: originA });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return replies;
  }, [MODEL_HEX, serverA.origin]);
  assert.deepEqual(forged, []);

  // 1b. The service worker's own choice of origin: the browser's record of
  //     the sender, whatever the message names.
  const worker = await browser.worker();
  const chosen = await worker.evaluate(([originA, originB]) => [
    senderOrigin({ tab: { id: 1 }, origin: originB, url: `${originB}/` }, { op: 'open', origin: originA }),
    senderOrigin({ tab: { id: 1 }, origin: originB, url: `${originA}/` }, { frameOrigin: originA }),
    senderOrigin({ origin: originA, url: `${originA}/` }, {}),  // not a content script in a tab
  ], [serverA.origin, serverB.origin]);
  assert.deepEqual(chosen, [serverB.origin, serverB.origin, null]);

  // 2. The API with origin A named in its options: still origin B, still
  //    refused (remembered denial), and nothing recorded for origin A.
  const named = await pageB.evaluate(([hex, originA]) => navigator.crossOriginStorage
    .requestFileHandle({ algorithm: 'SHA-256', value: hex }, { origin: originA, origins: [originA] })
    .then(() => 'resolved', (error) => error.name), [MODEL_HEX, serverA.origin]);
  assert.equal(named, 'NotFoundError');

  // 3. A frame of origin B inside page A asks as origin B, not as its parent.
  await pageA.evaluate((src) => new Promise((resolve) => {
    const frame = document.createElement('iframe');
    frame.src = src;
    frame.onload = resolve;
    document.body.append(frame);
  }), `${serverB.origin}/`);
  const frameB = pageA.frames().find((f) => f.url().startsWith(serverB.origin));
  assert.ok(frameB);
  // The frame posts the hello and the extension's own request shape,
  // naming origin A, to its parent (page A, whose content script acts as
  // A) and to the top window: ignored.
  const fromFrame = await frameB.evaluate(async ([hex, originA]) => {
    const replies = [];
    for (const target of [window.parent, window.top]) {
      const channel = new MessageChannel();
      channel.port1.onmessage = (event) => replies.push(event.data);
      target.postMessage({ type: 'costore-hello' }, '*', [channel.port2]);
      channel.port1.postMessage({ id: 1, op: 'open', hash: hex, origin: originA });
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return replies;
  }, [MODEL_HEX, serverA.origin]);
  assert.deepEqual(fromFrame, []);
  const inFrame = await frameB.evaluate((hex) => window.cosRead(hex), MODEL_HEX);
  assert.equal(inFrame.name, 'NotFoundError');
  const inParent = await pageA.evaluate((hex) => window.cosRead(hex, { hash: false }), MODEL_HEX);
  assert.equal(inParent.ok, true);

  const usage = JSON.parse((await lib.cli('usage', `sha256:${MODEL_HEX}`, '--json')).stdout);
  const principals = usage.principals ?? usage;
  for (const p of principals) {
    if (p.origin === serverB.origin) assert.equal(p.reads, 0, 'origin B read nothing');
  }
});

// A page posts its own hello (as main-world.js would) and asks for a file
// through the port it made; the replies that come back within 2 s.
async function ownHello(page, hex) {
  return page.evaluate(async (h) => {
    const replies = [];
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => replies.push(event.data);
    window.postMessage({ type: 'costore-hello' }, '*', [channel.port2]);
    channel.port1.postMessage({ id: 1, op: 'open', hash: h });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    return { secure: isSecureContext, origin: self.origin, api: 'crossOriginStorage' in navigator, replies };
  }, hex);
}

test('a page that is not a secure context gets no API, and its own hello is ignored', async () => {
  const origin = `http://${INSECURE_HOST}:${new URL(serverA.origin).port}`;
  const page = await browser.context.newPage();
  const before = agent.requests.length;
  try {
    await page.goto(`${origin}/`);
    const result = await ownHello(page, MODEL_HEX);
    assert.equal(result.secure, false);
    assert.equal(result.origin, origin);
    assert.equal(result.api, false, '[SecureContext]');
    assert.deepEqual(result.replies, [], 'content.js took no hello from a non-secure page');
  } finally {
    await page.close();
  }
  assert.equal(agent.requests.length, before, 'nobody was asked for it');
  // The service worker refuses such an origin too (the native host does as
  // well: native_host_test).
  const worker = await browser.worker();
  const chosen = await worker.evaluate(() => [
    senderOrigin({ tab: { id: 1 }, origin: 'http://example.com', url: 'http://example.com/' }, {}),
    senderOrigin({ tab: { id: 1 }, origin: 'http://192.168.1.2:8001', url: 'http://192.168.1.2:8001/' }, {}),
    senderOrigin({ tab: { id: 1 }, origin: 'http://127.0.0.1:8001', url: 'http://127.0.0.1:8001/' }, {}),
    senderOrigin({ tab: { id: 1 }, origin: 'http://localhost:8002', url: 'http://localhost:8002/' }, {}),
    senderOrigin({ tab: { id: 1 }, origin: 'http://[::1]:1', url: 'http://[::1]:1/' }, {}),
    senderOrigin({ tab: { id: 1 }, origin: 'https://x', url: 'https://x/' }, {}),
  ]);
  assert.deepEqual(chosen,
                   [null, null, 'http://127.0.0.1:8001', 'http://localhost:8002', 'http://[::1]:1', 'https://x']);
});

test('a sandboxed document (opaque origin) is not its URL\'s site', async () => {
  const page = await browser.context.newPage();
  const before = agent.requests.length;
  try {
    await page.goto(`${serverA.origin}/sandboxed`);
    const result = await ownHello(page, MODEL_HEX);  // A's own file: A may read it
    assert.equal(result.origin, 'null');
    assert.equal(result.api, false, 'no API in an opaque origin');
    assert.deepEqual(result.replies, [], 'content.js took no hello from a sandboxed document');
  } finally {
    await page.close();
  }
  assert.equal(agent.requests.length, before);
  // Chromium names the sender's origin "null"; Firefox gives only the URL,
  // so the worker asks the content script's own view of the origin.
  const worker = await browser.worker();
  const a = serverA.origin;
  const chosen = await worker.evaluate((origin) => [
    senderOrigin({ tab: { id: 1 }, origin: 'null', url: `${origin}/sandboxed` }, { frameOrigin: 'null' }),
    senderOrigin({ tab: { id: 1 }, url: `${origin}/sandboxed` }, { frameOrigin: 'null' }),
    senderOrigin({ tab: { id: 1 }, url: `${origin}/sandboxed` }, {}),
    senderOrigin({ tab: { id: 1 }, url: `${origin}/` }, { frameOrigin: origin }),
  ], a);
  assert.deepEqual(chosen, [null, null, null, a]);
});

let secondHex;

test('origin B, allowed, gets a File whose SHA-256 matches, without downloading it', async () => {
  // The denial of (B, model) stands until the daemon restarts, as it should:
  // A stores a second file, and B is allowed that one.
  secondHex = await storeGenerated(pageA, 3 * MB + 17, 5);
  await useAgent('allow-once');
  const result = await pageB.evaluate((hex) => window.cosRead(hex), secondHex);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.isFile, true);
  assert.equal(result.size, 3 * MB + 17);
  assert.equal(result.sha256, secondHex);
  assert.equal(agent.requests.length, 1, 'the user was asked');
  assert.equal(serverB.count('/model.onnx') + serverA.count('/model.onnx'), 1, 'only A ever downloaded');
});

test('the chunked native-messaging fallback carries reads and stores too', async () => {
  await setTransport('native');
  try {
    const read = await pageB.evaluate((hex) => window.cosRead(hex), secondHex);  // allow-once asks again
    assert.equal(read.ok, true, JSON.stringify(read));
    assert.equal(read.sha256, secondHex);
    assert.equal(await lastTransport(), 'chunks');
    const hex = await storeGenerated(pageA, 2 * MB + 3, 9);
    assert.ok(await stored(hex));
    assert.equal(await lastTransport(), 'chunks');
  } finally {
    await setTransport('auto');
  }
});

test('a public site, whose own loopback fetches Local Network Access blocks, gets the fast path', async () => {
  const pageC = await openPage(serverC);
  try {
    // The page itself may not reach loopback addresses (Chromium refuses:
    // no user here to ask) ...
    const own = await pageC.evaluate((url) => fetch(url).then(() => 'fetched', (e) => e.name), `${serverA.origin}/`);
    assert.equal(own, 'TypeError');
    // ... but the extension's transfer frame may.
    const hex = await storeGenerated(pageC, 5 * MB, 33);
    assert.equal(await lastTransport(), 'frame');
    const read = await pageC.evaluate((h) => window.cosRead(h), hex);
    assert.equal(read.sha256, hex);
    assert.equal(await lastTransport(), 'frame');
  } finally {
    await pageC.close();
  }
});

// How many times `origin` read the file, as costored counts.
async function readsBy(origin, hex) {
  const usage = JSON.parse((await lib.cli('usage', `sha256:${hex}`, '--json')).stdout);
  const principals = usage.principals ?? usage;
  return principals.filter((p) => p.origin === origin).reduce((n, p) => n + (p.reads || 0), 0);
}

test('requestFileHandles: all or nothing', async () => {
  const readsBefore = await readsBy(serverA.origin, MODEL_HEX);
  const both = await pageA.evaluate(async (hexes) => {
    const handles = await navigator.crossOriginStorage.requestFileHandles(
      hexes.map((value) => ({ algorithm: 'SHA-256', value })));
    return Promise.all(handles.map(async (h) => window.sha256Hex(await h.getFile())));
  }, [MODEL_HEX, secondHex]);
  assert.deepEqual(both, [MODEL_HEX, secondHex]);
  const readsAfter = await readsBy(serverA.origin, MODEL_HEX);
  assert.ok(readsAfter > readsBefore, 'costored counts the reads');
  const missing = await pageA.evaluate((hexes) => navigator.crossOriginStorage
    .requestFileHandles(hexes.map((value) => ({ algorithm: 'SHA-256', value })))
    .then(() => 'resolved', (error) => error.name), [MODEL_HEX, UNKNOWN_HEX]);
  assert.equal(missing, 'NotFoundError');
  // The first miss stops it: the file after it is never opened.
  const readsNow = await readsBy(serverA.origin, MODEL_HEX);
  const missingFirst = await pageA.evaluate((hexes) => navigator.crossOriginStorage
    .requestFileHandles(hexes.map((value) => ({ algorithm: 'SHA-256', value })))
    .then(() => 'resolved', (error) => error.name), [UNKNOWN_HEX, MODEL_HEX]);
  assert.equal(missingFirst, 'NotFoundError');
  assert.equal(await readsBy(serverA.origin, MODEL_HEX), readsNow, 'no bytes of the file after the miss moved');
});

test('the popup lists what the current site stored, and only that', async () => {
  const worker = await browser.worker();
  // The extension may not read tabs' URLs (no "tabs" permission); it asks
  // its content script in each tab, as the popup's service worker does.
  const tabs = await worker.evaluate(async ([a, b]) => {
    const found = {};
    for (const tab of await chrome.tabs.query({})) {
      try {
        const reply = await chrome.tabs.sendMessage(tab.id, { op: 'origin' }, { frameId: 0 });
        if (reply && reply.origin === a) found.a = tab.id;
        if (reply && reply.origin === b) found.b = tab.id;
      } catch {}
    }
    return found;
  }, [serverA.origin, serverB.origin]);
  assert.ok(Number.isInteger(tabs.a) && Number.isInteger(tabs.b), JSON.stringify(tabs));
  const popup = await browser.context.newPage();
  try {
    const read = async (tab) => {
      await popup.goto(`chrome-extension://${browser.extensionId}/popup.html?tab=${tab}`);
      await popup.waitForFunction(() => document.getElementById('status').textContent !== 'Loading…');
      return popup.evaluate(() => ({
        site: document.getElementById('site').textContent,
        status: document.getElementById('status').textContent,
        digests: [...document.querySelectorAll('#files .meta')].map((e) => e.title),
      }));
    };
    const a = await read(tabs.a);
    await popup.setViewportSize({ width: 480, height: 260 });
    await popup.screenshot({ path: path.join(process.env.COSTORE_TEST_ARTIFACTS || '/tmp', 'costore-popup.png') });
    assert.equal(a.site, serverA.origin);
    assert.ok(a.digests.includes(`sha256:${MODEL_HEX}`) && a.digests.includes(`sha256:${secondHex}`), JSON.stringify(a));
    const b = await read(tabs.b);
    assert.equal(b.site, serverB.origin);
    assert.deepEqual(b.digests, [], 'B stored nothing (its wrong bytes were refused)');
  } finally {
    await popup.close();
  }
});

test('the service worker stopped mid-transfer: the call completes or fails cleanly', async () => {
  await useAgent('allow-always');
  const bigHex = await storeGenerated(pageA, 48 * MB, 21);
  const cdp = await browser.context.newCDPSession(pageB);
  await cdp.send('ServiceWorker.enable');
  const outcomes = [];
  for (const transport of ['native', 'auto']) {
    await setTransport(transport);
    const worker = await browser.worker();
    // Chromium reports the worker's running status (through the CDP session).
    let onVersions;
    const stopped = new Promise((resolve) => {
      onVersions = ({ versions }) => {
        if (versions.some((v) => v.runningStatus === 'stopped')) resolve(true);
      };
      cdp.on('ServiceWorker.workerVersionUpdated', onVersions);
    });
    const idsBefore = await worker.evaluate(() => nextId);  // requests the worker sent the host so far
    await pageB.evaluate((hex) => {
      window.readDone = false;
      window.pendingRead = window.cosRead(hex).finally(() => { window.readDone = true; });
    }, bigHex);
    // Native messaging carries ~10-15 MB/s, so 48 MB are mid-way after a
    // second; the loopback endpoint is faster: stop it sooner.
    await new Promise((resolve) => setTimeout(resolve, transport === 'native' ? 1500 : 150));
    const sentBeforeStop = (await worker.evaluate(() => nextId)) - idsBefore;
    const doneBeforeStop = await pageB.evaluate(() => window.readDone);
    await cdp.send('ServiceWorker.stopAllWorkers');
    let timer;
    const timeout = (what, ms = 90000) => new Promise((resolve) => { timer = setTimeout(() => resolve(what), ms); });
    const reallyStopped = await Promise.race([stopped, timeout(false, 10000)]);
    clearTimeout(timer);
    cdp.off('ServiceWorker.workerVersionUpdated', onVersions);
    assert.equal(reallyStopped, true, `${transport}: the worker really stopped`);
    // The stop came mid-transfer: the read had started (the worker had sent
    // the host the open and, for chunks, several reads) and not finished.
    assert.equal(doneBeforeStop, false, `${transport}: the read was still going when the worker stopped`);
    assert.ok(sentBeforeStop >= (transport === 'native' ? 3 : 1),
              `${transport}: the transfer had begun (${sentBeforeStop} host requests)`);
    const result = await Promise.race([pageB.evaluate(() => window.pendingRead), timeout({ hung: true })]);
    clearTimeout(timer);
    assert.notEqual(result.hung, true, `${transport}: the call settled`);
    if (transport === 'native' || result.ok) {
      // Through the worker, the read is retried from the start: it completes.
      assert.equal(result.ok, true, `${transport}: completed: ${JSON.stringify(result)}`);
      assert.equal(result.sha256, bigHex, `${transport}: completed with the right bytes`);
    } else {
      assert.equal(result.isDOMException, true, `${transport}: failed with a DOMException: ${JSON.stringify(result)}`);
    }
    outcomes.push(`${transport}: ${result.ok ? 'completed' : `failed cleanly (${result.name})`} in ` +
                  `${Math.round(result.ms)} ms after ${sentBeforeStop} host requests before the stop ` +
                  `(last transport: ${await lastTransport()})`);
  }
  await setTransport('auto');
  // And the next call works.
  const next = await pageB.evaluate((hex) => window.cosRead(hex), bigHex);
  assert.equal(next.sha256, bigHex);
  await cdp.detach();
  console.log(`# service worker stopped mid-transfer: ${outcomes.join('; ')}`);
});
