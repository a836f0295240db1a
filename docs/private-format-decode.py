#!/usr/bin/env python3
"""A decoder for costore's private files, written from docs/private-format.md
alone, with another library than costored's (Python "cryptography" for
AES-256-GCM and ChaCha20-Poly1305; HChaCha20 in pure Python for XChaCha20).

    private-format-decode.py --self-test
        decodes the worked examples of docs/private-format.md
    private-format-decode.py FILE --data-key HEX64 [--digest sha256:HEX] > plain
        decodes a sealed file given its data key
    private-format-decode.py FILE --master-key HEX64 --wrapped HEX146 --version N > plain
        unwraps the data key first (master key from the keyring, wrapped key
        and version from the catalog's private_files row)

Every chunk is authenticated before any of its bytes is written; on the
first failure the decoder stops with an error.
"""
import argparse
import hashlib
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

MAGIC = b"COSTSEAL"
HEADER = 48
TAG = 16
AES_256_GCM, XCHACHA20_POLY1305 = 1, 2


def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13); _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12); _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha20poly1305_open(key, nonce24, sealed, ad):
    # XChaCha20-Poly1305 (IETF): ChaCha20-Poly1305 under HChaCha20(key, nonce[0:16])
    # with the nonce 00000000 || nonce[16:24].
    subkey = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).decrypt(b"\0" * 4 + nonce24[16:], sealed, ad)


def plaintext_size(sealed_size, chunk):
    body = sealed_size - HEADER
    whole, rest = divmod(body, chunk + TAG)
    if body < TAG:
        raise ValueError("shorter than a header and one tag")
    if rest == 0:
        return whole * chunk
    if rest < TAG or (rest == TAG and whole > 0):
        raise ValueError("no plaintext seals to this length (truncated or extended)")
    return whole * chunk + rest - TAG


def decode(data, data_key, expected_digest=None, out=None):
    header = data[:HEADER]
    if len(header) < HEADER or header[:8] != MAGIC:
        raise ValueError("not a sealed file (magic)")
    if header[8] != 1:
        raise ValueError("unknown format version %d" % header[8])
    if header[10:12] != b"\0\0":
        raise ValueError("reserved bytes are not zero")
    cipher = header[9]
    chunk = struct.unpack("<I", header[12:16])[0]
    if chunk < 64 or chunk > 1 << 24 or chunk & (chunk - 1):
        raise ValueError("bad chunk size %d" % chunk)
    digest = header[16:48]
    if expected_digest is not None and digest != expected_digest:
        raise ValueError("the header names another digest")
    size = plaintext_size(len(data), chunk)
    count = max(1, -(-size // chunk))
    result = [] if out is None else None
    hasher = hashlib.sha256()
    for i in range(count):
        last = i == count - 1
        start = HEADER + i * (chunk + TAG)
        length = (size - i * chunk if last else chunk) + TAG
        sealed = data[start:start + length]
        index_and_flag = struct.pack("<Q", i) + bytes([1 if last else 0])
        ad = header + index_and_flag
        try:
            if cipher == AES_256_GCM:
                plain = AESGCM(data_key).decrypt(index_and_flag + b"\0" * 3, sealed, ad)
            elif cipher == XCHACHA20_POLY1305:
                plain = xchacha20poly1305_open(data_key, index_and_flag + b"\0" * 15, sealed, ad)
            else:
                raise ValueError("unknown cipher %d" % cipher)
        except InvalidTag:
            raise ValueError("chunk %d of %d failed authentication" % (i + 1, count)) from None
        hasher.update(plain)
        if out is None:
            result.append(plain)
        else:
            out.write(plain)
    if hasher.digest() != digest:  # cannot happen for an authentic file
        raise ValueError("the plaintext does not hash to the header's digest")
    return b"".join(result) if out is None else None


def unwrap(master_key, version, digest, wrapped):
    if len(wrapped) != 73 or wrapped[0] != 1:
        raise ValueError("malformed wrapped key")
    ad = b"costore/data-key/1" + digest + struct.pack("<I", version)
    return xchacha20poly1305_open(master_key, wrapped[1:25], wrapped[25:], ad)


def self_test():
    key = bytes(range(32))
    plain = (b"costore test vector, " * 5)[:100]
    vectors = {
        AES_256_GCM: "434f53545345414c0101000040000000881ffabfbb12b583e3e11155a6590eb6094f69448848992f2d7a93e372"
        "d571c06dd3c6aada5ee69d7ccdda41385af4faa62c247f08e20f5cf4f1c1e6e58b38253a7f90d94986d7741fe3129ab2ba063c"
        "cc2735830a0566d335d54b49384c6e876eff007b2abe6891cff10410f0dca4df31264dad1e12a36ff4106f220217fb6a2a83f8"
        "91e9f61b161115cbcd8944724e57298ee62cef9f10b18e5a0903f5bd9ec84302b9",
        XCHACHA20_POLY1305: "434f53545345414c0102000040000000881ffabfbb12b583e3e11155a6590eb6094f69448848992f2d7a93"
        "e372d571c0f669ffb383fa803962eb0c4dcc605b8948d3dfbf5af32278bf82e738f7927f4212aa16dd5a363582f3dfccbb2079"
        "fda12c63a0dcdcd4d87c95401f3c5938a33addfc4c0659eca15623890758272b77fb8d2d253180bfb6ff6f1939cd0ad2ac85ff"
        "4d615c04ae305ecab67892d04dcc626374a393292d7e9c65ef9b599fdee6845a716714",
    }
    for cipher, hexed in vectors.items():
        data = bytes.fromhex(hexed)
        assert decode(data, key, hashlib.sha256(plain).digest()) == plain
        bad = bytearray(data)
        bad[60] ^= 1
        try:
            decode(bytes(bad), key)
            raise AssertionError("tampering went unnoticed")
        except ValueError:
            pass
    wrapped = bytes.fromhex("01404142434445464748494a4b4c4d4e4f5051525354555657f10d71f75ff5f25df31b7dd8faa393"
                            "5a2256607d11518afbd2a3ef175e4813d77d5f8b5cb13e9062bb41f37f10c946e5")
    master = bytes((0x80 + i) & 0xFF for i in range(32))
    assert unwrap(master, 1, hashlib.sha256(plain).digest(), wrapped) == key
    print("private-format-decode: the worked examples decode")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?")
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--data-key")
    parser.add_argument("--master-key")
    parser.add_argument("--wrapped")
    parser.add_argument("--version", type=int)
    parser.add_argument("--digest")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.file:
        parser.error("FILE is needed")
    data = open(args.file, "rb").read()
    header_digest = data[16:48]
    expected = bytes.fromhex(args.digest.split(":")[-1]) if args.digest else None
    if args.data_key:
        key = bytes.fromhex(args.data_key)
    elif args.master_key and args.wrapped and args.version:
        key = unwrap(bytes.fromhex(args.master_key), args.version, expected or header_digest, bytes.fromhex(args.wrapped))
    else:
        parser.error("give --data-key, or --master-key with --wrapped and --version")
    try:
        decode(data, key, expected, sys.stdout.buffer)
    except ValueError as e:
        sys.exit("private-format-decode: %s: %s" % (args.file, e))


if __name__ == "__main__":
    main()
