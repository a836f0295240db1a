#include "native-host/token_server.h"

#include <arpa/inet.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include <httplib.h>
#include <openssl/crypto.h>

namespace costore::native_host {
namespace {

constexpr size_t kTokenHex = 64;
constexpr size_t kKeyHex = 32;
constexpr size_t kReadBuffer = 1024 * 1024;

bool IsTokenText(const std::string& token) {
  if (token.size() != kTokenHex) return false;
  return std::all_of(token.begin(), token.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void Refuse(httplib::Response& res) {
  res.status = 404;
  res.body.clear();
  res.headers.clear();
  res.set_header("Cache-Control", "no-store");
}

void CommonHeaders(httplib::Response& res, const std::string& origin) {
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  // A cross-origin-isolated page (COEP: require-corp) may read it too.
  res.set_header("Cross-Origin-Resource-Policy", "cross-origin");
  res.set_header("Vary", "Origin");
  if (!origin.empty()) res.set_header("Access-Control-Allow-Origin", origin);
}

}  // namespace

std::string NewToken() {
  std::array<unsigned char, kTokenHex / 2> bytes{};
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got = getrandom(bytes.data() + done, bytes.size() - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      // getrandom(2) cannot fail on Linux >= 3.17 with valid arguments; never
      // fall back to a weaker source.
      std::abort();
    }
    done += static_cast<size_t>(got);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  token.reserve(kTokenHex);
  for (unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  return token;
}

// --- TokenRegistry ----------------------------------------------------------

void TokenRegistry::PurgeLocked(std::chrono::steady_clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.expires <= now ? entries_.erase(it) : std::next(it);
  }
}

const std::string& OriginOf(const Transfer& transfer) {
  return std::visit([](const auto& t) -> const std::string& { return t->origin; }, transfer);
}

std::string TokenRegistry::Add(Transfer transfer) {
  auto now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  PurgeLocked(now);
  if (entries_.size() >= max_live_) return {};
  for (;;) {
    std::string token = NewToken();
    std::string key = token.substr(0, kKeyHex);
    if (entries_.count(key)) continue;  // 2^-128: but never overwrite
    entries_.emplace(key, Entry{token.substr(kKeyHex), std::move(transfer), now + ttl_});
    return token;
  }
}

std::map<std::string, TokenRegistry::Entry>::iterator TokenRegistry::FindLocked(const std::string& token) {
  if (!IsTokenText(token)) return entries_.end();
  auto it = entries_.find(token.substr(0, kKeyHex));
  if (it == entries_.end()) return it;
  const std::string& secret = it->second.secret;
  if (CRYPTO_memcmp(secret.data(), token.data() + kKeyHex, kTokenHex - kKeyHex) != 0) return entries_.end();
  return it;
}

std::optional<Transfer> TokenRegistry::Take(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  PurgeLocked(clock_());
  auto it = FindLocked(token);
  if (it == entries_.end()) return std::nullopt;
  Transfer transfer = std::move(it->second.transfer);
  entries_.erase(it);
  return transfer;
}

std::optional<Transfer> TokenRegistry::Peek(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  PurgeLocked(clock_());
  auto it = FindLocked(token);
  if (it == entries_.end()) return std::nullopt;
  return it->second.transfer;
}

size_t TokenRegistry::live() {
  std::lock_guard<std::mutex> lock(mu_);
  PurgeLocked(clock_());
  return entries_.size();
}

size_t TokenRegistry::LiveFor(const std::string& origin) {
  std::lock_guard<std::mutex> lock(mu_);
  PurgeLocked(clock_());
  size_t count = 0;
  for (const auto& [key, entry] : entries_) count += OriginOf(entry.transfer) == origin ? 1 : 0;
  return count;
}

// --- TokenServer ------------------------------------------------------------

bool IsLoopbackAddress(const std::string& address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;  // host names ("localhost") are not taken: they resolve elsewhere
}

TokenServer::TokenServer(const Options& options, TokenRegistry* registry, UploadHandler upload)
    : options_(options), registry_(registry), upload_(std::move(upload)), server_(std::make_unique<httplib::Server>()) {}

std::unique_ptr<TokenServer> TokenServer::Start(const Options& options, TokenRegistry* registry,
                                                UploadHandler upload, std::string* error) {
  if (!IsLoopbackAddress(options.bind_address)) {
    *error = "refusing to bind to " + options.bind_address + ": only loopback addresses are allowed";
    return nullptr;
  }
  std::unique_ptr<TokenServer> server(new TokenServer(options, registry, std::move(upload)));
  bool v6 = options.bind_address.find(':') != std::string::npos;
  server->server_->set_address_family(v6 ? AF_INET6 : AF_INET);
  server->Install();
  int port = server->server_->bind_to_any_port(options.bind_address);
  if (port <= 0) {
    *error = "cannot bind to " + options.bind_address + ": " + std::strerror(errno);
    return nullptr;
  }
  server->port_ = static_cast<uint16_t>(port);
  server->authority_ = (v6 ? "[" + options.bind_address + "]" : options.bind_address) + ":" + std::to_string(port);
  httplib::Server* raw = server->server_.get();
  server->thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs: wait for it,
  // so that a Stop() right after Start() cannot be lost.
  for (int i = 0; i < 5000 && !raw->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return server;
}

TokenServer::~TokenServer() { Stop(); }

void TokenServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string TokenServer::ReadUrl(const std::string& token) const { return "http://" + authority_ + "/t/" + token; }
std::string TokenServer::WriteUrl(const std::string& token) const { return "http://" + authority_ + "/u/" + token; }

bool TokenServer::OriginAllowed(const httplib::Request& req, const std::string& transfer_origin) const {
  std::string request_origin = req.get_header_value("Origin");
  if (req.get_header_value_count("Origin") > 1) return false;
  // Browsers send Origin with every CORS request and every POST or PUT; an
  // extension page's GET under its host permission has none. A GET without
  // one is taken: the response is readable without CORS only by the
  // extension (a page's no-CORS fetch gets an opaque response).
  if (request_origin.empty()) return req.method == "GET";
  if (request_origin == transfer_origin) return true;
  for (const std::string& allowed : options_.extension_origins) {
    if (request_origin == allowed) return true;
  }
  return options_.allow_moz_extension && request_origin.rfind("moz-extension://", 0) == 0;
}

void TokenServer::Install() {
  httplib::Server& s = *server_;
  // Anything the handlers below do not answer is an empty 404.
  // (An upload's own error answer has a JSON body: left as it is.)
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    int status = res.status;
    Refuse(res);
    if (status == 413 || status == 414 || status == 400) res.status = status;
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) { Refuse(res); });
  // No DNS rebinding: the Host header names this endpoint exactly.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Host") != authority_ || req.get_header_value_count("Host") != 1) {
      Refuse(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_keep_alive_max_count(16);
  s.set_read_timeout(std::chrono::seconds(60));
  s.set_write_timeout(std::chrono::seconds(60));

  // Reads: GET /t/<token>.
  s.Get(R"(/t/([0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET") return Refuse(res);  // HEAD: never consumes a token
    std::optional<Transfer> taken = registry_->Take(req.matches[1]);
    if (!taken || !std::holds_alternative<std::shared_ptr<ReadTransfer>>(*taken)) return Refuse(res);
    std::shared_ptr<ReadTransfer> transfer = std::get<std::shared_ptr<ReadTransfer>>(*taken);
    std::string origin = req.get_header_value("Origin");
    if (!OriginAllowed(req, transfer->origin)) return Refuse(res);
    CommonHeaders(res, origin);
    auto buffer = std::make_shared<std::vector<char>>(kReadBuffer);
    res.set_content_provider(
        transfer->size, "application/octet-stream",
        [transfer, buffer](size_t offset, size_t length, httplib::DataSink& sink) {
          size_t want = std::min(length, buffer->size());
          ssize_t got;
          do {
            got = ::pread(transfer->fd.get(), buffer->data(), want, static_cast<off_t>(offset));
          } while (got < 0 && errno == EINTR);
          if (got <= 0) return false;  // the file cannot be shorter than its size: give up
          return sink.write(buffer->data(), static_cast<size_t>(got));
        },
        [transfer](bool) { transfer->fd.reset(); });
  });

  // CORS preflight for a live token (an upload with PUT needs one); it does
  // not consume the token.
  s.Options(R"(/([tu])/([0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
    std::optional<Transfer> peeked = registry_->Peek(req.matches[2]);
    bool upload = req.matches[1] == "u";
    if (!peeked || upload != std::holds_alternative<std::shared_ptr<WriteTransfer>>(*peeked)) return Refuse(res);
    const std::string& transfer_origin = upload ? std::get<std::shared_ptr<WriteTransfer>>(*peeked)->origin
                                                : std::get<std::shared_ptr<ReadTransfer>>(*peeked)->origin;
    std::string origin = req.get_header_value("Origin");
    if (origin.empty() || !OriginAllowed(req, transfer_origin)) return Refuse(res);
    CommonHeaders(res, origin);
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", upload ? "PUT, POST" : "GET");
    res.set_header("Access-Control-Allow-Headers", "content-type");
    res.set_header("Access-Control-Allow-Private-Network", "true");
    res.set_header("Access-Control-Max-Age", "0");
  });

  // Uploads: PUT or POST /u/<token>, the body streamed to the store.
  auto upload = [this](const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& content_reader) {
    std::optional<Transfer> taken = registry_->Take(req.matches[1]);
    if (!taken || !std::holds_alternative<std::shared_ptr<WriteTransfer>>(*taken)) return Refuse(res);
    std::shared_ptr<WriteTransfer> transfer = std::get<std::shared_ptr<WriteTransfer>>(*taken);
    std::string origin = req.get_header_value("Origin");
    if (!OriginAllowed(req, transfer->origin)) return Refuse(res);
    std::optional<uint64_t> content_length;
    if (req.has_header("Content-Length")) {
      std::string text = req.get_header_value("Content-Length");
      uint64_t value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size()) content_length = value;
    }
    BodySource body = [&content_reader](const std::function<bool(const char*, size_t)>& sink) {
      return content_reader([&sink](const char* data, size_t size) { return sink(data, size); });
    };
    UploadOutcome outcome = upload_(*transfer, content_length, body);
    CommonHeaders(res, origin);
    res.status = outcome.http_status;
    res.set_content(outcome.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  };
  s.Put(R"(/u/([0-9a-f]{64}))", upload);
  s.Post(R"(/u/([0-9a-f]{64}))", upload);
}

}  // namespace costore::native_host
