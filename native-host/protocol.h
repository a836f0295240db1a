// The messages between the extension's service worker and the native host.
//
// Every request is a JSON object {"id": <integer or short string>, "op":
// <string>, ...}; every reply carries the same "id", "ok" (bool) and, when
// not ok, "error" (a costore error name: "NotFound", "DigestMismatch",
// "InvalidArgument", "Busy", "Unreachable", "Gone", ...) and "message".
// A message that cannot be parsed at all gets a reply with "id": null.
//
//   hello                              -> {version, http}
//   open    {origin, digest}           -> {transfer, size, url?}   read: consent may be asked
//   read    {origin, transfer, offset, length?} -> {offset, data (base64), eof}  chunked fallback
//                                         of a read: at most `length` (and 720 KiB) from offset; chunks may be asked for in any
//                                         order (and at once); the transfer ends when all were sent
//   create  {origin, digest, size?}    -> {transfer, url?}         reserve one upload
//   write   {origin, transfer, offset, data} -> {}                 chunked fallback of an upload
//   finish  {origin, transfer}         -> {digest, size}           end of a chunked upload
//   close   {transfer}                 -> {}                       drop a transfer
//   list    {origin}                   -> {files: [{digest, size, name, lastUsed}]}
//   manager                            -> {}                       start the manager window
//
// A transfer serves only the origin it was made for: "read", "write" and
// "finish" with another origin are "Gone", as for an unknown transfer.
// "origin" is a potentially trustworthy serialized web origin
// (IsTrustworthyWebOrigin: https, or http on a loopback host), decided by the extension from
// the sender frame (never from the page); "digest" is 64 hex digits, with or
// without "sha256:". "url" is the one-time loopback URL of the transfer
// (GET for a read, PUT or POST for an upload), absent when the loopback
// endpoint is not available.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace costore::native_host {

struct Request {
  nlohmann::json id;  // integer or string, echoed in the reply
  std::string op;
  nlohmann::json body;  // the whole message (an object)
};

struct RequestError {
  nlohmann::json id;  // null when the id itself is unusable
  std::string message;
};

// Parses one message. Never throws: invalid JSON (or UTF-8), a non-object,
// a missing or mistyped "id" or "op" give a RequestError.
std::variant<Request, RequestError> ParseRequest(std::string_view payload);

// Typed access to the fields of a request. Each returns false and sets
// `error` to a sentence naming the field when it is missing (and required)
// or of the wrong type or range.
bool GetString(const nlohmann::json& body, const char* key, std::string* out, std::string* error,
               size_t max_length = 4096, bool required = true);
bool GetUint(const nlohmann::json& body, const char* key, uint64_t* out, std::string* error,
             bool required = true);

// A serialized http or https origin, as the HTML standard writes it:
// lowercase scheme and host, no default port, no path, no trailing slash.
// "null" (an opaque origin), every other scheme and origins longer than
// 255 bytes (the daemon's limit) are refused.
bool IsWebOrigin(std::string_view origin);

// A web origin the store may act for: a serialized origin (IsWebOrigin)
// that is potentially trustworthy, as navigator.crossOriginStorage is
// [SecureContext]: https, or http on localhost (and *.localhost),
// 127.0.0.0/8 or [::1]. http://example.com is refused.
bool IsTrustworthyWebOrigin(std::string_view origin);

// "sha256:<64 lowercase hex>" from 64 hex digits (any case) with or
// without the "sha256:" prefix; nullopt otherwise.
std::optional<std::string> ParseDigest(std::string_view text);

// Base64 (standard alphabet, padded) without line breaks.
std::string Base64Encode(const unsigned char* data, size_t size);
// Strict decoding; nullopt on any invalid input.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace costore::native_host
