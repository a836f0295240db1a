// navigator.crossOriginStorage, defined in the page's own (MAIN) world at
// document_start, before any script of the page runs.
//
// This script holds no authority: it only carries the page's calls over a
// MessageChannel to content.js (the extension's ISOLATED world), which asks
// the service worker, which asks the native host, which asks costored. The
// origin a request is made for is decided by the browser from the frame
// that sent it (the service worker's sender.origin), never by anything said
// here, so a page that tampers with this script or its messages only
// breaks its own calls.
//
// Semantics (the WICG Cross-Origin Storage proposal):
//   requestFileHandle({algorithm: 'SHA-256', value: '<64 hex>'}, {create, origins})
//     read:   resolves to a handle whose getFile() gives a File of the bytes;
//             a miss or a refusal rejects with a NotFoundError DOMException
//             (one and the same: costored answers both alike).
//     create: resolves to a handle at once, whether or not the file exists;
//             handle.createWritable() gives a writable stream (write(),
//             seek(), truncate(), close()); close() sends the bytes, and the
//             store verifies them: DataError on a mismatch, nothing stored.
//   requestFileHandles(hashes, options): the earlier plural form (used by
//     Transformers.js); fails as a whole if any file is missing. The files
//     are opened one after another, and the first miss or refusal stops
//     it: no bytes of the others move after it.
// Sites cannot list or delete. "origins" is accepted and checked for type;
// who may read a file is the user's decision in costore's consent dialog.
(() => {
  'use strict';
  // [SecureContext], as in the proposal (http://localhost and 127.0.0.1 are
  // secure contexts too); and never in a document with an opaque origin (a
  // sandboxed frame or a CSP sandbox), which has no site to ask for.
  // content.js and the service worker check the same on their own.
  if (!globalThis.isSecureContext || globalThis.origin === 'null' ||
      'crossOriginStorage' in Navigator.prototype) return;

  // Taken now, before page scripts can replace them.
  const { Blob, File, DOMException, TypeError, Map, Promise, WritableStream, MessageChannel, Uint8Array,
          CustomEvent, setTimeout } = globalThis;
  const ArrayBufferIsView = ArrayBuffer.isView;
  const ArrayIsArray = Array.isArray;
  const defineProperty = Object.defineProperty;
  const windowPostMessage = window.postMessage.bind(window);
  const portPostMessage = MessagePort.prototype.postMessage;
  const HEX64 = /^[0-9a-fA-F]{64}$/;
  const ERROR_NAMES = new Set(['NotFoundError', 'DataError', 'QuotaExceededError', 'AbortError',
                               'NotAllowedError', 'InvalidStateError', 'UnknownError']);

  // --- the channel to the isolated world -----------------------------------
  let port = null;
  let ready = false;
  const pending = new Map();
  let nextId = 1;
  const waiting = [];  // requests posted before the isolated world answered

  function connect() {
    const channel = new MessageChannel();
    port = channel.port1;
    port.onmessage = onReply;
    // To this window only; content.js takes the first hello and hides it.
    windowPostMessage({ type: 'costore-hello' }, '*', [channel.port2]);
  }

  function onReply(event) {
    const data = event.data;
    if (!data || typeof data !== 'object') return;
    if (data.type === 'ready') {
      ready = true;
      for (const message of waiting.splice(0)) portPostMessage.call(port, message);
      return;
    }
    const entry = pending.get(data.id);
    if (!entry) return;
    pending.delete(data.id);
    if (data.ok) {
      entry.resolve(data);
    } else if (data.name === 'TypeError') {
      entry.reject(new TypeError(String(data.message || '')));
    } else {
      const name = ERROR_NAMES.has(data.name) ? data.name : 'UnknownError';
      entry.reject(new DOMException(String(data.message || name), name));
    }
  }

  // Which of the two scripts runs first is the browser's business, so each
  // tells the other it is there with synchronous DOM events (seen in both
  // worlds), and the port is posted once content.js is known to listen.
  // Both run before any page script.
  let helloSent = false;
  const sayHello = () => {
    if (helloSent) return;
    helloSent = true;
    connect();
  };
  document.addEventListener('costore-isolated-start', sayHello);  // content.js came second
  let isolatedHere = false;
  const onHere = () => { isolatedHere = true; };
  document.addEventListener('costore-isolated-here', onHere);
  document.dispatchEvent(new CustomEvent('costore-main-start'));
  document.removeEventListener('costore-isolated-here', onHere);
  if (isolatedHere) sayHello();

  function call(message) {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      message.id = id;
      pending.set(id, { resolve, reject });
      if (ready) {
        portPostMessage.call(port, message);
        return;
      }
      waiting.push(message);
      // No extension on the other side (this frame got no content script).
      setTimeout(() => {
        if (ready || !pending.has(id)) return;
        pending.delete(id);
        reject(new DOMException('the costore extension does not answer in this frame', 'AbortError'));
      }, 10000);
    });
  }

  // --- arguments ------------------------------------------------------------
  function parseHash(hash) {
    if (hash === null || typeof hash !== 'object') {
      throw new TypeError("hash must be {algorithm: 'SHA-256', value: '<64 hexadecimal digits>'}");
    }
    const { algorithm, value } = hash;
    if (typeof algorithm !== 'string' || typeof value !== 'string') {
      throw new TypeError('hash.algorithm and hash.value must be strings');
    }
    if (algorithm.toUpperCase() !== 'SHA-256') {
      throw new DOMException(`unsupported hash algorithm "${algorithm}"`, 'NotSupportedError');
    }
    if (!HEX64.test(value)) throw new TypeError('hash.value must be 64 hexadecimal digits');
    return value.toLowerCase();
  }

  function parseOptions(options) {
    if (options === undefined || options === null) return { create: false };
    if (typeof options !== 'object') throw new TypeError('options must be an object');
    const origins = options.origins;
    if (origins !== undefined && origins !== '*' && !ArrayIsArray(origins)) {
      throw new TypeError("options.origins must be '*' or an array of origins");
    }
    return { create: Boolean(options.create) };
  }

  // --- handles ----------------------------------------------------------------
  async function openBlob(hex) {
    const reply = await call({ op: 'open', hash: hex });
    return reply.blob;
  }

  class CrossOriginStorageFileHandle {
    #hex;
    #blob;
    #writable;
    constructor(key, hex, blob, writable) {
      if (key !== handleKey) throw new TypeError('Illegal constructor');
      this.#hex = hex;
      this.#blob = blob;
      this.#writable = writable;
    }
    get kind() { return 'file'; }
    // The hash: another site's name for a file is never shown.
    get name() { return this.#hex; }
    async getFile() {
      if (!this.#blob) this.#blob = await openBlob(this.#hex);  // a create handle: read what is stored
      return new File([this.#blob], this.#hex, { type: '', lastModified: 0 });
    }
    async createWritable() {
      if (!this.#writable) {
        throw new DOMException('this handle was not requested with {create: true}', 'NotAllowedError');
      }
      return makeWritable(this.#hex);
    }
    async isSameEntry(other) {
      return other instanceof CrossOriginStorageFileHandle && other.name === this.#hex;
    }
  }
  const handleKey = {};

  // A writable stream in the manner of FileSystemWritableFileStream: the
  // bytes stay in the page (as Blobs, which Chromium may keep on disk) until
  // close(), which hands them to the store in one verified transfer.
  function makeWritable(hex) {
    let parts = [];  // Blobs, in order
    let size = 0;
    let position = 0;
    let closed = false;

    const toBlob = (data) => {
      if (data instanceof Blob) return data;
      if (typeof data === 'string') return new Blob([data]);  // UTF-8
      if (data instanceof ArrayBuffer || ArrayBufferIsView(data)) return new Blob([data]);  // a copy
      throw new TypeError('write() takes an ArrayBuffer, a typed array, a DataView, a Blob, a string or WriteParams');
    };
    const whole = () => {
      const blob = new Blob(parts);
      parts = [blob];
      return blob;
    };
    const zeros = (n) => new Blob([new Uint8Array(n)]);
    const writeAt = (blob, at) => {
      if (at === size) {
        parts.push(blob);  // the common case: appending
      } else if (at > size) {
        parts.push(zeros(at - size), blob);
      } else {
        const current = whole();
        parts = [current.slice(0, at), blob, current.slice(at + blob.size)];
      }
      size = Math.max(size, at + blob.size);
      position = at + blob.size;
    };
    const checkPosition = (value, what) => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new TypeError(`${what} must be a non-negative integer`);
      }
      return value;
    };

    const stream = new WritableStream({
      write(chunk) {
        if (closed) throw new DOMException('the writable is closed', 'InvalidStateError');
        const isParams = chunk !== null && typeof chunk === 'object' && !(chunk instanceof Blob) &&
                         !(chunk instanceof ArrayBuffer) && !ArrayBufferIsView(chunk);
        if (!isParams) return writeAt(toBlob(chunk), position);
        if (chunk.type === 'write') {
          if (chunk.data === undefined || chunk.data === null) throw new TypeError('WriteParams.data is missing');
          const at = chunk.position === undefined || chunk.position === null
            ? position : checkPosition(chunk.position, 'position');
          return writeAt(toBlob(chunk.data), at);
        }
        if (chunk.type === 'seek') {
          position = checkPosition(chunk.position, 'position');
          return undefined;
        }
        if (chunk.type === 'truncate') {
          const to = checkPosition(chunk.size, 'size');
          if (to < size) parts = [whole().slice(0, to)];
          else if (to > size) parts.push(zeros(to - size));
          size = to;
          if (position > size) position = size;
          return undefined;
        }
        throw new TypeError('WriteParams.type must be "write", "seek" or "truncate"');
      },
      async close() {
        closed = true;
        const blob = new Blob(parts);
        parts = [];
        await call({ op: 'store', hash: hex, blob });
      },
      abort() {
        closed = true;
        parts = [];
      },
    });
    const method = (name, fn) => defineProperty(stream, name, { value: fn, configurable: true, writable: true });
    method('write', async (data) => {
      const writer = stream.getWriter();
      try {
        await writer.write(data);
      } finally {
        writer.releaseLock();
      }
    });
    method('seek', (at) => stream.write({ type: 'seek', position: at }));
    method('truncate', (to) => stream.write({ type: 'truncate', size: to }));
    return stream;
  }

  // --- the manager ------------------------------------------------------------
  class CrossOriginStorageManager {
    constructor(key) {
      if (key !== handleKey) throw new TypeError('Illegal constructor');
    }
    async requestFileHandle(hash, options) {
      const hex = parseHash(hash);
      const { create } = parseOptions(options);
      if (create) return new CrossOriginStorageFileHandle(handleKey, hex, null, true);
      return new CrossOriginStorageFileHandle(handleKey, hex, await openBlob(hex), false);
    }
    async requestFileHandles(hashes, options) {
      if (!ArrayIsArray(hashes)) throw new TypeError('hashes must be an array');
      const hexes = hashes.map(parseHash);
      const { create } = parseOptions(options);
      if (create) return hexes.map((hex) => new CrossOriginStorageFileHandle(handleKey, hex, null, true));
      // One after another: the first miss or refusal rejects the whole call
      // before the bytes of any later file move.
      const handles = [];
      for (const hex of hexes) {
        handles.push(new CrossOriginStorageFileHandle(handleKey, hex, await openBlob(hex), false));
      }
      return handles;
    }
  }

  const manager = new CrossOriginStorageManager(handleKey);
  defineProperty(Navigator.prototype, 'crossOriginStorage', {
    get() { return manager; },
    enumerable: true,
    configurable: true,
  });
  for (const [name, cls] of [['CrossOriginStorageManager', CrossOriginStorageManager],
                             ['CrossOriginStorageFileHandle', CrossOriginStorageFileHandle]]) {
    defineProperty(globalThis, name, { value: cls, writable: true, configurable: true, enumerable: false });
  }
})();
