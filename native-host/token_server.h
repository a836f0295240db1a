// The one-time loopback endpoint that carries file bytes between the
// browser and the native host, much faster than native messaging.
//
// Safety:
// - It binds to a loopback address only (127.0.0.0/8 or ::1); any other
//   address is refused before a socket is made. The port is chosen by the
//   kernel.
// - Each transfer gets its own token of 256 bits from getrandom(2): the
//   first 128 bits name it (a map key), the last 128 bits are its secret,
//   compared in constant time. A token answers one request, once: GET
//   /t/<token> for a read, PUT or POST /u/<token> for an upload. It is
//   consumed even when that request fails, and expires unused after a TTL.
// - Nothing else is served: every other path, method or token gets an empty
//   404 (and HEAD never consumes a token). The Host header must name the
//   endpoint's own address and port (no DNS rebinding). The Origin header,
//   which browsers send with every CORS request and every upload, must be
//   the web origin the transfer was made for or the calling extension's own
//   origin; the CORS headers of the reply name that origin only. A GET with
//   no Origin (the extension's transfer frame, under its host permission)
//   is served: without CORS, only the extension can read the response.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include <costore/costore.hpp>

namespace httplib {
class Server;
struct Request;
}

namespace costore::native_host {

// Bytes the host has opened for a page: served once, then closed.
struct ReadTransfer {
  client::UniqueFd fd;
  uint64_t size = 0;
  std::string origin;  // the web origin it was opened for
};

// An upload the host has agreed to take for a page.
struct WriteTransfer {
  std::string origin;  // the web origin it stores for
  std::string digest;  // "sha256:<hex>"
  std::optional<uint64_t> size;  // the size announced, if any
};

using Transfer = std::variant<std::shared_ptr<ReadTransfer>, std::shared_ptr<WriteTransfer>>;

// 64 lowercase hex digits (256 bits) from getrandom(2).
std::string NewToken();

// The web origin a transfer was made for.
const std::string& OriginOf(const Transfer& transfer);

// The live tokens. Thread-safe.
class TokenRegistry {
 public:
  // What time it is (steady_clock::now; tests pass their own).
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit TokenRegistry(std::chrono::milliseconds ttl = std::chrono::seconds(120), size_t max_live = 256,
                         Clock clock = &std::chrono::steady_clock::now)
      : ttl_(ttl), max_live_(max_live), clock_(std::move(clock)) {}

  // A new token for `transfer`, or "" when max_live tokens are live.
  std::string Add(Transfer transfer);
  // Removes and returns the token's transfer; nullopt for an unknown,
  // malformed or expired token.
  std::optional<Transfer> Take(const std::string& token);
  // The token's transfer, left in place (CORS preflight).
  std::optional<Transfer> Peek(const std::string& token);
  size_t live();
  // The live tokens made for `origin`.
  size_t LiveFor(const std::string& origin);

 private:
  struct Entry {
    std::string secret;  // the token's last 32 hex digits
    Transfer transfer;
    std::chrono::steady_clock::time_point expires;
  };
  // Under mu_: drops expired entries.
  void PurgeLocked(std::chrono::steady_clock::time_point now);
  std::map<std::string, Entry>::iterator FindLocked(const std::string& token);

  std::chrono::milliseconds ttl_;
  size_t max_live_;
  Clock clock_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // by the token's first 32 hex digits
};

// What an upload's body arrives through: calls `sink` with each piece as it
// arrives (false from the sink stops); returns false when the body did not
// arrive in full.
using BodySource = std::function<bool(const std::function<bool(const char*, size_t)>& sink)>;

struct UploadOutcome {
  int http_status = 200;
  nlohmann::json body;  // {"ok": true, ...} or {"ok": false, "error": ..., "message": ...}
};

// Stores an upload; called on an HTTP worker thread.
using UploadHandler = std::function<UploadOutcome(const WriteTransfer& transfer,
                                                  std::optional<uint64_t> content_length,
                                                  const BodySource& body)>;

// True for 127.0.0.0/8 and ::1 (as text that inet_pton reads).
bool IsLoopbackAddress(const std::string& address);

class TokenServer {
 public:
  struct Options {
    std::string bind_address = "127.0.0.1";
    // Origins allowed besides a transfer's own web origin, e.g. the calling
    // extension's "chrome-extension://<id>".
    std::vector<std::string> extension_origins;
    // Firefox: also accept any "moz-extension://" Origin (its UUID is per
    // profile and unknown to the host).
    bool allow_moz_extension = false;
  };

  // Binds and starts serving. nullptr and `error` set when the address is
  // not loopback or cannot be bound.
  static std::unique_ptr<TokenServer> Start(const Options& options, TokenRegistry* registry,
                                            UploadHandler upload, std::string* error);
  ~TokenServer();  // stops serving
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port>/t/<token>" or ".../u/<token>".
  std::string ReadUrl(const std::string& token) const;
  std::string WriteUrl(const std::string& token) const;
  void Stop();

 private:
  TokenServer(const Options& options, TokenRegistry* registry, UploadHandler upload);
  bool OriginAllowed(const httplib::Request& req, const std::string& transfer_origin) const;
  void Install();

  Options options_;
  TokenRegistry* registry_;
  UploadHandler upload_;
  std::unique_ptr<httplib::Server> server_;
  std::string authority_;  // "127.0.0.1:<port>"
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace costore::native_host
