// The demo pages' script: page 1 downloads a model file and stores it in
// costore; page 2 asks costore for the same hash, and loads the bytes
// without downloading them when the user allows it.
const MODEL = {
  url: 'http://127.0.0.1:8001/models/silero_vad_16k_op15.onnx',
  hash: { algorithm: 'SHA-256', value: '7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49' },
  size: 1289603,
};

const logElement = () => document.getElementById('log');
function log(text) {
  logElement().textContent += `${text}\n`;
  console.log(`[${location.origin}] ${text}`);
}

async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function cosAvailable() {
  if (navigator.crossOriginStorage) return true;
  log('navigator.crossOriginStorage is not defined: install the costore extension (browser/extension).');
  return false;
}

// Page 1: the cache-or-network pattern of the Cross-Origin Storage proposal.
async function downloadAndStore() {
  if (!cosAvailable()) return { ok: false };
  try {
    const handle = await navigator.crossOriginStorage.requestFileHandle(MODEL.hash);
    const file = await handle.getFile();
    log(`already in costore: ${file.size} bytes, no download`);
    return { ok: true, downloaded: false, size: file.size };
  } catch (error) {
    log(`not in costore for this site (${error.name}): downloading ${MODEL.url}`);
  }
  const blob = await (await fetch(MODEL.url)).blob();
  log(`downloaded ${blob.size} bytes; SHA-256 ${await sha256Hex(blob)}`);
  const handle = await navigator.crossOriginStorage.requestFileHandle(MODEL.hash, { create: true, origins: '*' });
  const writable = await handle.createWritable();
  await writable.write(blob);
  await writable.close();  // costore verifies the hash here (DataError on a mismatch)
  log('stored in costore (verified by the store)');
  return { ok: true, downloaded: true, size: blob.size };
}

// Page 2: another site, the same model.
async function loadFromStore() {
  if (!cosAvailable()) return { ok: false };
  log(`asking costore for sha256:${MODEL.hash.value.slice(0, 12)}… (costore asks you whether this site may have it)`);
  const t0 = performance.now();
  try {
    const handle = await navigator.crossOriginStorage.requestFileHandle(MODEL.hash);
    const file = await handle.getFile();
    const ms = Math.round(performance.now() - t0);
    const hex = await sha256Hex(file);
    log(`got a File of ${file.size} bytes from costore in ${ms} ms, no download; SHA-256 ${hex === MODEL.hash.value ? 'matches' : 'DOES NOT MATCH'}`);
    return { ok: true, size: file.size, matches: hex === MODEL.hash.value, ms };
  } catch (error) {
    log(`costore said ${error.name}: a page would now download the file itself`);
    return { ok: false, name: error.name };
  }
}
