// The extension's ISOLATED-world content script: the bridge between the
// page's navigator.crossOriginStorage (main-world.js) and the service worker.
//
// - It takes requests only from the port main-world.js hands over at
//   document_start (the first hello from this very window; hellos from
//   other frames or later ones are ignored), and a request names only an
//   operation and a hash: any "origin" in it is ignored. The service worker
//   takes the origin from the browser's own record of who sent the message.
// - Not at all in a document that is not a secure context (the API is
//   [SecureContext]: there main-world.js defines nothing, and a hello the
//   page posts itself is ignored) or whose origin is opaque (a sandboxed
//   frame or CSP sandbox on some site must not act as that site).
// - Pages get fixed words for each error name; the details go to the
//   console only.
// - File bytes do not go through the service worker: the native host gives
//   a one-time URL on its loopback endpoint, fetched by the transfer frame
//   (transfer.html: an extension page, so that Local Network Access does
//   not stop it on public sites), or, when the frame cannot be had, by this
//   script (a CORS request from the page's origin, which the endpoint
//   checks). When both fail and the host is still there, the bytes come as
//   chunked native messages through the service worker instead.
// - The service worker (and with it the native host) can be stopped at any
//   time: a request that dies with it is retried from the start.
(() => {
  'use strict';
  const RETRIES = 3;
  // Chunked native messaging: Chromium handles big native messages slowly
  // (a 720 KiB chunk, the most that fits its 1 MiB cap as base64, took
  // ~400 ms here; 64 KiB ~12 ms), so chunks are 64 KiB: reads six at a
  // time (the host takes 8 requests of one site at once), uploads one after
  // another (the host takes them in order).
  const READ_CHUNK = 64 * 1024;
  const READS_IN_FLIGHT = 6;
  const WRITE_CHUNK = 64 * 1024;
  const HEX64 = /^[0-9a-f]{64}$/;
  const TOKEN = /^[0-9a-f]{64}$/;
  // costore error names -> DOMException names for the page.
  const DOM_NAMES = {
    NotFound: 'NotFoundError',
    DigestMismatch: 'DataError',
    NoSpace: 'QuotaExceededError',
    QuotaExceeded: 'QuotaExceededError',
    Cancelled: 'AbortError',
  };
  // What a page is told, by DOMException name: nothing of the store's own
  // messages (which may name paths).
  const PUBLIC_MESSAGES = {
    NotFoundError: 'not found',
    DataError: 'the bytes do not match the hash',
    QuotaExceededError: 'the store has no room for this file',
    AbortError: 'the transfer did not complete',
    UnknownError: 'the store could not do this',
  };
  // Errors after which the same request, made again, may well succeed.
  const RETRYABLE = new Set(['Disconnected', 'Gone', 'Busy', 'Transport']);
  // Busy: the host refused before doing anything (too many requests of this
  // site at once): the same message may simply be sent again a bit later.
  const BUSY_RETRIES = 40;

  class CosError extends Error {
    constructor(code, message) {
      super(message || code);
      this.code = code;
    }
    get retryable() { return RETRYABLE.has(this.code); }
    get domName() { return DOM_NAMES[this.code] || 'UnknownError'; }
  }

  // This frame's origin, as the browser set it ('null' when opaque). The
  // page cannot change what this (isolated) world sees.
  const FRAME_ORIGIN = self.origin;
  const USABLE = globalThis.isSecureContext === true && typeof FRAME_ORIGIN === 'string' && FRAME_ORIGIN !== 'null';

  let port = null;
  let httpBroken = false;  // the loopback endpoint failed while the host lived: use chunks

  function onHello(event) {
    if (port || event.source !== window) return;
    const data = event.data;
    if (!data || data.type !== 'costore-hello' || !event.ports || event.ports.length !== 1) return;
    event.stopImmediatePropagation();  // the page need not see it
    window.removeEventListener('message', onHello, true);
    port = event.ports[0];
    port.onmessage = onRequest;
    port.postMessage({ type: 'ready' });
  }
  if (USABLE) {
    window.addEventListener('message', onHello, true);
    // See main-world.js: tell it we are here, whichever of us ran first.
    document.addEventListener('costore-main-start',
                              () => document.dispatchEvent(new CustomEvent('costore-isolated-here')));
    document.dispatchEvent(new CustomEvent('costore-isolated-start'));
  }

  // The popup, through the service worker, asks the top frame for the site
  // when it may not read the tab's URL.
  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (sender.id !== chrome.runtime.id || !message || message.op !== 'origin' || window !== window.top) return false;
    sendResponse({ origin: USABLE ? FRAME_ORIGIN : null });
    return false;
  });

  async function onRequest(event) {
    const message = event.data;
    if (!message || typeof message !== 'object' || !Number.isSafeInteger(message.id)) return;
    const { id, op, hash } = message;
    try {
      if (typeof hash !== 'string' || !HEX64.test(hash)) throw new TypeError('bad hash');
      if (op === 'open') {
        const blob = await openFile(hash);
        port.postMessage({ id, ok: true, blob });
      } else if (op === 'store' && message.blob instanceof Blob) {
        await storeFile(hash, message.blob);
        port.postMessage({ id, ok: true });
      } else {
        throw new TypeError('bad request');
      }
    } catch (error) {
      if (error instanceof TypeError) {
        port.postMessage({ id, ok: false, name: 'TypeError', message: error.message });
        return;
      }
      const name = error instanceof CosError ? error.domName : 'UnknownError';
      const detail = String(error && error.message || error);
      console.debug('costore:', op, error instanceof CosError ? error.code : '', detail);
      port.postMessage({ id, ok: false, name, message: PUBLIC_MESSAGES[name] || PUBLIC_MESSAGES.UnknownError });
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // One request to the service worker. Throws CosError; 'Disconnected' when
  // the worker (or the host) went away before answering.
  async function callWorker(message) {
    for (let busy = 0; ; ++busy) {
      let reply;
      try {
        // frameOrigin: Firefox gives the service worker no sender.origin;
        // it checks the URL's origin against this frame's own.
        reply = await chrome.runtime.sendMessage({ ...message, frameOrigin: FRAME_ORIGIN });
      } catch (error) {
        const text = String(error && error.message || error);
        if (/context invalidated/i.test(text)) throw new CosError('Failed', 'the costore extension was reloaded');
        throw new CosError('Disconnected', text);
      }
      if (!reply || typeof reply !== 'object') throw new CosError('Disconnected', 'no answer from the service worker');
      if (reply.ok) return reply;
      if (reply.error === 'Busy' && busy < BUSY_RETRIES) {
        await sleep(50 + 25 * busy);
        continue;
      }
      throw new CosError(String(reply.error || 'Failed'), reply.message);
    }
  }

  async function transportSetting() {
    try {
      const { transport } = await chrome.storage.local.get('transport');
      return transport === 'native' ? 'native' : 'auto';
    } catch {
      return 'auto';
    }
  }

  async function withRetries(attempt) {
    let last;
    for (let i = 0; i < RETRIES; ++i) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof CosError) || !error.retryable) throw error;
        last = error;
        await sleep(250 * (i + 1));
      }
    }
    throw new CosError('Cancelled', `the transfer did not complete: ${last.message}`);
  }

  // How the last transfer went: 'frame', 'direct' or 'chunks' (tests read
  // it; extension storage, invisible to pages).
  function noteTransport(how) {
    chrome.storage.local.set({ lastTransport: how }).catch(() => {});
  }

  // --- the transfer frame ---------------------------------------------------------

  // The extension's own origin, which the transfer frame has (Chromium
  // serves it under a per-session dynamic URL, but its origin is the ID's).
  const EXTENSION_ORIGIN = chrome.runtime.getURL('').startsWith('moz-extension:')
    ? new URL(chrome.runtime.getURL('')).origin : `chrome-extension://${chrome.runtime.id}`;
  let frame = null;  // {host, port: Promise<MessagePort|null>}
  let frameBroken = false;
  let frameNextId = 1;
  const framePending = new Map();  // id -> {resolve, host}
  let frameWatch = null;

  function transferFrame() {
    if (frame && frame.host.isConnected) return frame.port;
    const host = document.createElement('costore-transfer');
    host.style.display = 'none';
    const shadow = host.attachShadow({ mode: 'closed' });  // out of the page's reach
    const iframe = document.createElement('iframe');
    iframe.src = chrome.runtime.getURL('transfer.html');
    const portPromise = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 5000);
      iframe.addEventListener('load', () => {
        const channel = new MessageChannel();
        channel.port1.onmessage = (event) => {
          const data = event.data;
          if (data && data.type === 'ready') {
            clearTimeout(timer);
            resolve(channel.port1);
            return;
          }
          const entry = framePending.get(data && data.id);
          if (!entry) return;
          framePending.delete(data.id);
          entry.resolve(data);
        };
        iframe.contentWindow.postMessage({ type: 'costore-transfer-hello' }, EXTENSION_ORIGIN, [channel.port2]);
      }, { once: true });
    });
    shadow.append(iframe);
    document.documentElement.append(host);
    frame = { host, port: portPromise };
    return portPromise;
  }

  // Asks the transfer frame; null when there is no frame to ask.
  async function viaFrame(message) {
    if (frameBroken) return null;
    const framePort = await transferFrame();
    if (!framePort) {
      frameBroken = true;  // no frame in this page (its policies): fetch directly
      return null;
    }
    const id = frameNextId++;
    const reply = new Promise((resolve) => framePending.set(id, { resolve, host: frame.host }));
    // A page that removes the frame must not leave a transfer hanging.
    if (!frameWatch) {
      frameWatch = setInterval(() => {
        for (const [pendingId, entry] of framePending) {
          if (entry.host.isConnected) continue;
          framePending.delete(pendingId);
          entry.resolve({ ok: false, message: 'the transfer frame went away' });
        }
        if (framePending.size === 0) {
          clearInterval(frameWatch);
          frameWatch = null;
        }
      }, 1000);
    }
    framePort.postMessage({ ...message, id });
    return reply;
  }

  // GET a read URL: the bytes as a Blob of `size` bytes, or CosError('Transport').
  async function loopbackRead(url, size) {
    const reply = await viaFrame({ url });
    let blob;
    let how = 'frame';
    if (reply) {
      if (!reply.ok || !(reply.blob instanceof Blob)) throw new CosError('Transport', reply.message);
      blob = reply.blob;
    } else {
      how = 'direct';
      let response;
      try {
        response = await fetch(url, { cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
        if (!response.ok) throw new Error(`the endpoint answered ${response.status}`);
        blob = await response.blob();
      } catch (error) {
        throw new CosError('Transport', String(error));
      }
    }
    if (blob.size !== size) throw new CosError('Transport', `got ${blob.size} of ${size} bytes`);
    noteTransport(how);
    return blob;
  }

  // POST an upload: the host's answer ({ok, error, message}), or CosError('Transport').
  async function loopbackUpload(url, blob) {
    const reply = await viaFrame({ url, body: blob });
    if (reply) {
      if (!reply.ok || !reply.json || typeof reply.json !== 'object') throw new CosError('Transport', reply.message);
      noteTransport('frame');
      return reply.json;
    }
    try {
      // No Content-Type (the Blob has none): a simple CORS request, no preflight.
      const response = await fetch(url, {
        method: 'POST', body: blob, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
      const answer = await response.json();
      noteTransport('direct');
      return answer;
    } catch (error) {
      throw new CosError('Transport', String(error));
    }
  }

  // --- reads --------------------------------------------------------------------

  function openFile(hex) {
    return withRetries(async () => {
      const opened = await callWorker({ op: 'open', digest: hex });
      const useHttp = opened.url && !httpBroken && (await transportSetting()) === 'auto';
      if (useHttp) {
        try {
          return await loopbackRead(opened.url, opened.size);
        } catch (error) {
          // Either the host went away (then the chunks below fail too and the
          // whole read is retried) or the loopback endpoint cannot be reached
          // from here.
          const blob = await readChunks(opened.transfer, opened.size);
          httpBroken = true;
          return blob;
        }
      }
      return readChunks(opened.transfer, opened.size);
    });
  }

  function fromBase64(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; ++i) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function toBase64(bytes) {
    if (bytes.toBase64) return bytes.toBase64();
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  async function readChunks(transfer, size) {
    if (!TOKEN.test(transfer)) throw new CosError('Failed', 'bad transfer');
    const count = Math.max(1, Math.ceil(size / READ_CHUNK));
    const parts = new Array(count);
    let next = 0;
    const reader = async () => {
      while (next < count) {
        const index = next++;
        const offset = index * READ_CHUNK;
        const chunk = await callWorker({ op: 'read', transfer, offset, length: READ_CHUNK });
        const bytes = fromBase64(chunk.data);
        if (chunk.offset !== offset || bytes.length !== Math.min(READ_CHUNK, size - offset)) {
          throw new CosError('Gone', `chunk at ${offset} is wrong`);
        }
        parts[index] = bytes;
      }
    };
    await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, count) }, reader));
    noteTransport('chunks');
    return new Blob(parts);
  }

  // --- stores -------------------------------------------------------------------

  function storeFile(hex, blob) {
    return withRetries(async () => {
      const created = await callWorker({ op: 'create', digest: hex, size: blob.size });
      const useHttp = created.url && !httpBroken && (await transportSetting()) === 'auto';
      if (useHttp) {
        let result = null;
        try {
          result = await loopbackUpload(created.url, blob);
        } catch {
          // The endpoint could not be reached (the token is unused: send
          // chunks) or the host went away (chunks fail too: retry it all).
          await writeChunks(created.transfer, blob);
          httpBroken = true;
          return;
        }
        if (!result.ok) throw new CosError(String(result.error || 'Failed'), result.message);
        return;
      }
      await writeChunks(created.transfer, blob);
    });
  }

  async function writeChunks(transfer, blob) {
    if (!TOKEN.test(transfer)) throw new CosError('Failed', 'bad transfer');
    for (let offset = 0; offset < blob.size; offset += WRITE_CHUNK) {
      const bytes = new Uint8Array(await blob.slice(offset, offset + WRITE_CHUNK).arrayBuffer());
      await callWorker({ op: 'write', transfer, offset, data: toBase64(bytes) });
    }
    await callWorker({ op: 'finish', transfer });
    noteTransport('chunks');
  }
})();
