// The transfer frame: an extension page that content.js embeds (hidden, in a
// closed shadow root) in a page that moves file bytes. It fetches the native
// host's one-time loopback URLs for content.js and hands over the bytes as
// Blobs through a MessagePort.
//
// Why a frame: a fetch from the page's own context (content.js) to
// 127.0.0.1 is a Local Network Access request of the page, which Chromium
// refuses (or asks the user about) for public sites; this frame's origin is
// the extension's, whose host permission for http://127.0.0.1/* covers it.
//
// What it will do, for whoever holds its port: GET http://127.0.0.1:<port>/t/<token>
// or POST a Blob to .../u/<token>, where <port> is the host's current
// endpoint (recorded by the service worker in storage.session, which pages
// and content scripts cannot write). Nothing else: no other host, port,
// path or method, no credentials. A token serves one transfer once, so a
// page that got hold of this frame gains nothing it could not ask for anyway.
'use strict';

const ENDPOINT_URL = /^http:\/\/127\.0\.0\.1:\d{1,5}\/([tu])\/[0-9a-f]{64}$/;
let port = null;

window.addEventListener('message', (event) => {
  const data = event.data;
  if (port || event.source !== window.parent || !data || data.type !== 'costore-transfer-hello') return;
  if (!event.ports || event.ports.length !== 1) return;
  port = event.ports[0];
  port.onmessage = onRequest;
  port.postMessage({ type: 'ready' });
});

async function onRequest(event) {
  const { id, url, body } = event.data || {};
  if (!Number.isSafeInteger(id)) return;
  try {
    const match = typeof url === 'string' ? ENDPOINT_URL.exec(url) : null;
    if (!match) throw new Error('not a costore transfer URL');
    const { endpoint } = await chrome.storage.session.get('endpoint');
    if (new URL(url).origin !== endpoint) throw new Error('not the native host\'s endpoint');
    const init = { cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', redirect: 'error' };
    if (match[1] === 't') {
      const response = await fetch(url, init);
      if (!response.ok) throw new Error(`the endpoint answered ${response.status}`);
      port.postMessage({ id, ok: true, blob: await response.blob() });
    } else {
      if (!(body instanceof Blob)) throw new Error('an upload needs a Blob');
      const response = await fetch(url, { ...init, method: 'POST', body });
      port.postMessage({ id, ok: true, json: await response.json() });
    }
  } catch (error) {
    port.postMessage({ id, ok: false, message: String(error && error.message || error) });
  }
}
