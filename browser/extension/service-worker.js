// The extension's service worker: the one place that talks to the native
// host (io.github.costore), and the one place that decides which web origin
// a request is made for.
//
// - The origin is the browser's record of the frame that sent the message
//   (sender.origin), for content scripts in tabs only, and only potentially
//   trustworthy origins (https, or http on localhost, 127.0.0.0/8 or
//   [::1]): the API is [SecureContext]. An opaque origin ("null": a
//   sandboxed frame) is refused, never replaced by its URL's origin.
//   Firefox gives no sender.origin: there the origin of sender.url is taken
//   only when the content script's own view of its frame's origin
//   (frameOrigin, 'null' in a sandboxed frame) agrees. Whatever else a
//   message says about origins is ignored.
// - Listing is for the popup only, and only for the site of the tab it was
//   opened on: sites cannot list.
// - Chromium may stop this worker at any time (and the host with it). No
//   state here outlives that: the native port is made again on the next
//   request, and content.js retries requests that were in flight.
'use strict';

const HOST_NAME = 'io.github.costore';
const HEX64 = /^[0-9a-f]{64}$/;
const TOKEN = /^[0-9a-f]{64}$/;
const MAX_CHUNK_BASE64 = 4 * 1024 * 1024;

let port = null;
let nextId = 1;
const pending = new Map();  // id -> resolve

function connect() {
  if (port) return port;
  const p = chrome.runtime.connectNative(HOST_NAME);
  p.onMessage.addListener((message) => {
    if (!message || typeof message !== 'object') return;
    const resolve = pending.get(message.id);
    if (resolve) {
      pending.delete(message.id);
      resolve(message);
    } else if (message.id === null) {
      console.warn('costore native host:', message.message);
    }
  });
  p.onDisconnect.addListener(() => {
    const why = (chrome.runtime.lastError && chrome.runtime.lastError.message) || 'the native host went away';
    if (port === p) port = null;
    for (const resolve of pending.values()) resolve({ ok: false, error: 'Disconnected', message: why });
    pending.clear();
  });
  port = p;
  return p;
}

function callHost(message) {
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, resolve);
    try {
      connect().postMessage({ ...message, id });
    } catch (error) {
      pending.delete(id);
      port = null;
      resolve({ ok: false, error: 'Disconnected', message: String(error && error.message || error) });
    }
  });
}

// A potentially trustworthy web origin, serialized: https, or http on a
// loopback host (what the native host accepts too).
function isTrustworthyOrigin(origin) {
  if (typeof origin !== 'string') return false;
  let url;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.origin !== origin) return false;  // not a serialized origin (a path, "null", ...)
  if (url.protocol === 'https:') return true;
  if (url.protocol !== 'http:') return false;
  const host = url.hostname;
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' ||
         /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function webOrigin(url) {
  try {
    const origin = new URL(url).origin;
    return isTrustworthyOrigin(origin) ? origin : null;
  } catch {
    return null;
  }
}

// The origin of the frame a content script runs in, as the browser knows it.
function senderOrigin(sender, message) {
  if (!sender || !sender.tab) return null;  // content scripts in tabs only
  if (typeof sender.origin === 'string') return isTrustworthyOrigin(sender.origin) ? sender.origin : null;
  // Firefox has no sender.origin. A sandboxed document's URL names a site
  // its opaque origin is not: take the URL's origin only when the frame's
  // own origin is that one.
  const origin = sender.url ? webOrigin(sender.url) : null;
  return origin && message && message.frameOrigin === origin ? origin : null;
}

function isPopup(sender) {
  return typeof sender.url === 'string' && sender.url.startsWith(chrome.runtime.getURL('popup.html'));
}

const invalid = (message) => ({ ok: false, error: 'InvalidArgument', message });

async function tabOrigin(tabId) {
  const tab = await chrome.tabs.get(tabId);
  if (tab.url) return webOrigin(tab.url);
  // No permission to see the URL: ask our own content script in the tab's
  // top frame, which reads it from its (unforgeable) location.
  try {
    const reply = await chrome.tabs.sendMessage(tabId, { op: 'origin' }, { frameId: 0 });
    return reply && typeof reply.origin === 'string' ? webOrigin(reply.origin) : null;
  } catch {
    return null;
  }
}

async function fromPopup(message) {
  if (message.op === 'list') {
    if (!Number.isSafeInteger(message.tabId)) return invalid('tabId');
    const origin = await tabOrigin(message.tabId);
    if (!origin) return { ok: true, origin: null, files: [] };
    const reply = await callHost({ op: 'list', origin });
    return { ...reply, origin };
  }
  if (message.op === 'manager') return callHost({ op: 'manager' });
  return invalid('unknown operation');
}

async function fromPage(message, origin) {
  const { op } = message;
  if (op === 'open' || op === 'create') {
    if (typeof message.digest !== 'string' || !HEX64.test(message.digest)) return invalid('digest');
    const request = { op, origin, digest: message.digest };
    if (op === 'create' && Number.isSafeInteger(message.size) && message.size >= 0) request.size = message.size;
    const reply = await callHost(request);
    if (reply.ok && typeof reply.url === 'string') {
      // The transfer frame fetches only from the host's current endpoint.
      await chrome.storage.session.set({ endpoint: new URL(reply.url).origin });
    }
    return reply;
  }
  if (op === 'read' || op === 'write' || op === 'finish' || op === 'close') {
    if (typeof message.transfer !== 'string' || !TOKEN.test(message.transfer)) return invalid('transfer');
    const request = { op, origin, transfer: message.transfer };
    if (op === 'read' || op === 'write') {
      if (!Number.isSafeInteger(message.offset) || message.offset < 0) return invalid('offset');
      request.offset = message.offset;
    }
    if (op === 'read' && message.length !== undefined) {
      if (!Number.isSafeInteger(message.length) || message.length <= 0) return invalid('length');
      request.length = message.length;
    }
    if (op === 'write') {
      if (typeof message.data !== 'string' || message.data.length > MAX_CHUNK_BASE64) return invalid('data');
      request.data = message.data;
    }
    return callHost(request);
  }
  return invalid('unknown operation');
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (sender.id !== chrome.runtime.id || !message || typeof message !== 'object') return false;
  let answer;
  if (isPopup(sender)) {
    answer = fromPopup(message);
  } else {
    const origin = senderOrigin(sender, message);
    answer = origin ? fromPage(message, origin)
                    : Promise.resolve({ ok: false, error: 'NotFound', message: 'not found' });
  }
  answer.then(sendResponse, (error) => sendResponse({ ok: false, error: 'Failed', message: String(error) }));
  return true;  // answered asynchronously
});
