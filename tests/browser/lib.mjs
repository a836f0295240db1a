// Helpers shared by the browser e2e test, the demo (browser/demo/run) and
// the benchmark (bench/browser-run): static servers on loopback origins,
// headless Chromium with the extension and the native host, the scripted
// consent agent, and the costore CLI.
//
// Environment (set by CTest, the demo and the benchmark):
//   COSTORE_NODE_DIR         where tests/browser/setup put node_modules
//   COSTORE_EXTENSION_DIR    browser/extension
//   COSTORE_HOST_MANIFEST    the build tree's native host manifest (names the built host)
//   COSTORE_TEST_AGENT       costore-test-agent
//   COSTORE_CLI              the costore CLI
//   DBUS_SESSION_BUS_ADDRESS the private bus (tests/support/with-costored)
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function playwright() {
  const require = createRequire(path.join(env('COSTORE_NODE_DIR'), 'package.json'));
  return require('playwright-core');
}

// The ID Chromium gives an extension whose manifest has this "key".
export function extensionIdFromKey(base64Key) {
  const hex = createHash('sha256').update(Buffer.from(base64Key, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode('a'.charCodeAt(0) + parseInt(c, 16))).join('');
}

// The page every test origin serves: helpers the tests call with
// page.evaluate, written as a page author would use the API.
export const PAGE_HELPERS = `
window.sha256Hex = async (blob) => {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
};
// Stores bytes under a hash (the hash of other bytes, to test DataError).
window.cosStore = async (hex, blob, chunks = 1) => {
  const t0 = performance.now();
  try {
    const handle = await navigator.crossOriginStorage.requestFileHandle({ algorithm: 'SHA-256', value: hex }, { create: true, origins: '*' });
    const writable = await handle.createWritable();
    const step = Math.ceil(blob.size / chunks) || 1;
    for (let at = 0; at < blob.size; at += step) await writable.write(blob.slice(at, at + step));
    await writable.close();
    return { ok: true, ms: performance.now() - t0 };
  } catch (error) {
    return { ok: false, name: error.name, message: error.message, ms: performance.now() - t0 };
  }
};
// Reads a file by hash; says what arrived and its SHA-256 as the page computes it.
window.cosRead = async (hex, options = {}) => {
  const t0 = performance.now();
  try {
    const handle = await navigator.crossOriginStorage.requestFileHandle({ algorithm: 'SHA-256', value: hex });
    const file = await handle.getFile();
    const ms = performance.now() - t0;
    return { ok: true, isFile: file instanceof File, size: file.size, name: file.name, ms,
             sha256: options.hash === false ? null : await window.sha256Hex(file) };
  } catch (error) {
    return { ok: false, name: error.name, message: error.message, isDOMException: error instanceof DOMException,
             ms: performance.now() - t0 };
  }
};
// Deterministic bytes made in the page.
window.makeBytes = (size, seed) => {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    bytes[i] = x & 255; bytes[i + 1] = (x >>> 8) & 255; bytes[i + 2] = (x >>> 16) & 255; bytes[i + 3] = x >>> 24;
  }
  return new Blob([bytes]);
};
`;

export const INDEX_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>costore test page</title>
<script src="/helpers.js"></script></head><body><h1>costore test page</h1></body></html>`;

// A static HTTP server on host:port (port 0: any). `routes` maps a path to
// {file} or {body, type}, either with optional {headers}. Counts the
// requests per path.
export async function startServer(host, port, routes = {}) {
  const counts = new Map();
  const all = { '/': { body: INDEX_HTML, type: 'text/html' }, '/helpers.js': { body: PAGE_HELPERS, type: 'text/javascript' }, ...routes };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    counts.set(url.pathname, (counts.get(url.pathname) || 0) + 1);
    const route = all[url.pathname];
    if (!route || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    const headers = { 'Content-Type': route.type || 'application/octet-stream', 'Cache-Control': 'no-store',
                      'Access-Control-Allow-Origin': '*', ...(route.headers || {}) };
    if (route.file) {
      headers['Content-Length'] = fs.statSync(route.file).size;
      res.writeHead(200, headers);
      fs.createReadStream(route.file).pipe(res);
    } else {
      res.writeHead(200, headers).end(route.body);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host === 'localhost' ? '127.0.0.1' : host, resolve);
  });
  const actual = server.address().port;
  return {
    origin: `http://${host}:${actual}`,
    count: (p) => counts.get(p) || 0,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

// Headless Chromium with the extension, the native host registered in the
// profile, and this process's environment (so the host finds the bus).
export async function launchBrowser({ userDataDir, extraArgs = [] } = {}) {
  const dir = userDataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'costore-chromium-'));
  const hosts = path.join(dir, 'NativeMessagingHosts');
  fs.mkdirSync(hosts, { recursive: true });
  fs.copyFileSync(env('COSTORE_HOST_MANIFEST'), path.join(hosts, 'io.github.costore.json'));
  const extension = env('COSTORE_EXTENSION_DIR');
  const { chromium } = playwright();
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.COSTORE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    env: process.env,
    args: [
      `--disable-extensions-except=${extension}`,
      `--load-extension=${extension}`,
      // A closed network: nothing of Chromium's own may phone out.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      ...extraArgs,
    ],
  });
  let worker = context.serviceWorkers().find((w) => w.url().startsWith('chrome-extension://'));
  if (!worker) worker = await context.waitForEvent('serviceworker', { timeout: 30000 });
  const extensionId = new URL(worker.url()).host;
  return {
    context,
    extensionId,
    userDataDir: dir,
    // The extension's service worker, running. Chromium stops an idle one
    // (and a test may stop it), but Playwright keeps a stopped worker in
    // serviceWorkers(), where evaluate() on it never settles; so each one
    // must answer within a few seconds, and when none does, an extension
    // page's message starts the worker again.
    async worker() {
      const ours = () => context.serviceWorkers()
        .filter((w) => w.url().startsWith(`chrome-extension://${extensionId}/`)).reverse();
      const answers = (w) => Promise.race([
        w.evaluate(() => true).then(() => true, () => false),
        new Promise((resolve) => setTimeout(() => resolve(false), 3000)),
      ]);
      for (let attempt = 0; attempt < 3; ++attempt) {
        for (const w of ours()) if (await answers(w)) return w;
        const started = context.waitForEvent('serviceworker', { timeout: 15000 }).catch(() => null);
        const page = await context.newPage();
        try {
          await page.goto(`chrome-extension://${extensionId}/transfer.html`);
          // Any message wakes the worker; it answers this one with NotFound.
          await page.evaluate(() => chrome.runtime.sendMessage({ op: 'wake' }).catch(() => null));
        } finally {
          await page.close();
        }
        await started;
      }
      throw new Error('the extension\'s service worker does not answer');
    },
    async close() {
      await context.close();
      if (!userDataDir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The scripted consent agent, registered on the private bus.
export async function startAgent(mode) {
  for (let attempt = 0; ; ++attempt) {
    const child = spawn(env('COSTORE_TEST_AGENT'), [mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const requests = [];
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const registered = await new Promise((resolve) => {
      let buffer = '';
      child.stdout.on('data', (data) => {
        buffer += data;
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line === 'registered') resolve(true);
          else if (line.startsWith('request ')) requests.push(line.slice(8));
        }
      });
      child.once('exit', () => resolve(false));
    });
    if (registered) {
      return {
        mode,
        requests,
        stop: () => new Promise((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
      };
    }
    // The daemon may not have seen the previous agent go yet (Busy).
    if (attempt >= 20) throw new Error(`costore-test-agent ${mode} did not register: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Runs the costore CLI; resolves {code, stdout, stderr}.
export function cli(...args) {
  return new Promise((resolve) => {
    execFile(env('COSTORE_CLI'), args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

// The running native hosts built here (the manifest's "path"), each with
// its parent: the browser that started it, which costored names as the app
// of the host's calls (daemon/dbus/caller_identity.h).
export function nativeHosts() {
  const host = fs.realpathSync(JSON.parse(fs.readFileSync(env('COSTORE_HOST_MANIFEST'), 'utf8')).path);
  const exe = (pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
    } catch {
      return null;  // exited, or not ours
    }
  };
  const found = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || exe(name) !== host) continue;
    let ppid;
    try {
      ppid = Number(/^PPid:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${name}/status`, 'utf8'))[1]);
    } catch {
      continue;
    }
    found.push({ pid: Number(name), ppid, parentExe: exe(ppid) });
  }
  return found;
}

export function sha256File(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
