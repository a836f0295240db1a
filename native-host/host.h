// The native host's requests (protocol.h) carried out against the store.
//
// The principal of every call is (this host's executable, the web origin the
// extension names): costored identifies the app from the calling process,
// and the calling process is this host, started by the browser for its
// extension. So the host acts for the browser, and all sites of one browser
// share the app part of their principals; sites are told apart by origin.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <costore/costore.hpp>

#include "native-host/framing.h"
#include "native-host/protocol.h"
#include "native-host/token_server.h"

namespace costore::native_host {

// A file a site stored, as the popup lists it.
struct SiteFile {
  std::string digest;
  uint64_t size = 0;
  std::string name;
  int64_t last_used_usec = 0;
};

// What the host needs of the store: libcostore in the real host, a fake in
// tests. Failures throw client::Error.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual client::OpenedFile Open(const std::string& digest, const std::string& origin) = 0;
  // Reads `fd` to its end and stores it under `digest` for `origin`.
  virtual client::FileInfo Store(int fd, const std::string& digest, const std::string& origin,
                                 std::optional<uint64_t> size) = 0;
  // The files that (this app, origin) stored.
  virtual std::vector<SiteFile> ListStoredBy(const std::string& origin) = 0;
};

// libcostore, connected on first use.
class ClientBackend : public Backend {
 public:
  client::OpenedFile Open(const std::string& digest, const std::string& origin) override;
  client::FileInfo Store(int fd, const std::string& digest, const std::string& origin,
                         std::optional<uint64_t> size) override;
  std::vector<SiteFile> ListStoredBy(const std::string& origin) override;

 private:
  const client::Client& client();
  std::mutex mu_;
  std::optional<client::Client> client_;
};

// One upload into the store: bytes written here go through a pipe to
// costored, which hashes them as they pass and stores them only if they
// match the digest. Thread-safe: a write and Finish (or the destructor) on
// other threads are serialized, so the pipe is never closed under a write
// (whose descriptor number could otherwise be reused meanwhile).
class UploadSession {
 public:
  UploadSession(Backend* backend, WriteTransfer transfer, std::optional<uint64_t> size);
  ~UploadSession();  // aborts if not finished
  UploadSession(const UploadSession&) = delete;
  UploadSession& operator=(const UploadSession&) = delete;

  // False once the store stopped reading (it failed; Finish says why) or
  // the session was finished.
  bool Write(const char* data, size_t size);
  enum class WriteResult { kOk, kOutOfOrder, kFailed };
  // Write, if `offset` is where the bytes written so far end (checked and
  // written under one lock: chunks written at once cannot interleave).
  WriteResult WriteAt(uint64_t offset, const char* data, size_t size);
  // Ends the bytes and waits for the store's answer: {"ok": true, "digest",
  // "size"} or {"ok": false, "error", "message"}. Any number of times, from
  // any thread.
  nlohmann::json Finish();
  uint64_t written();

 private:
  std::mutex mu_;  // write_fd_, written_: held across each write and the close
  int write_fd_ = -1;
  uint64_t written_ = 0;
  std::mutex join_mu_;  // thread_, and outcome_ once it is joined
  std::thread thread_;
  nlohmann::json outcome_;
};

class Host {
 public:
  struct Options {
    bool http = true;  // offer the loopback endpoint
    std::string bind_address = "127.0.0.1";
    std::vector<std::string> extension_origins;  // allowed Origin headers besides the site's
    bool allow_moz_extension = false;
    std::string manager_command = "costore-consent";  // started by "manager"
    size_t max_in_flight = 32;                        // requests handled at once
    size_t max_in_flight_per_origin = 8;              // ... of which for one web origin
    size_t max_transfers = 256;                       // transfers live at once (tokens and chunked)
    size_t max_transfers_per_origin = 32;             // ... of which for one web origin
  };

  Host(Backend* backend, FrameWriter* writer, Options options);
  ~Host();  // waits for requests in flight

  // One message from the browser: answered through the writer, perhaps
  // later and from another thread.
  void HandleMessage(std::string_view payload);
  // A frame that could not be read as a message.
  void HandleFrameError(const Frame& frame);
  // Stops the loopback endpoint.
  void Shutdown();

  // For tests: the answer to one request, on this thread.
  nlohmann::json Dispatch(const Request& request);
  // The loopback endpoint, started on first use; null when unavailable.
  TokenServer* server();

 private:
  nlohmann::json Hello();
  nlohmann::json Open(const nlohmann::json& body);
  nlohmann::json Read(const nlohmann::json& body);
  nlohmann::json Create(const nlohmann::json& body);
  nlohmann::json Write(const nlohmann::json& body);
  nlohmann::json Finish(const nlohmann::json& body);
  nlohmann::json Close(const nlohmann::json& body);
  nlohmann::json List(const nlohmann::json& body);
  nlohmann::json Manager();
  UploadOutcome Upload(const WriteTransfer& transfer, std::optional<uint64_t> content_length,
                       const BodySource& body);

  struct ChunkRead {
    std::shared_ptr<ReadTransfer> transfer;
    std::chrono::steady_clock::time_point touched;
    uint64_t served = 0;  // bytes sent; chunks may be asked for out of order
  };
  struct ChunkUpload {
    std::shared_ptr<WriteTransfer> transfer;
    std::shared_ptr<UploadSession> session;
    std::chrono::steady_clock::time_point touched;
  };
  // Under chunks_mu_: drops idle chunked transfers. The sessions dropped are
  // returned, to be destroyed (which waits for the store) after the lock.
  std::vector<std::shared_ptr<UploadSession>> PurgeIdleLocked();
  // A token for a new transfer, or "" with `refusal` set when the limits
  // (all origins, and this one) are reached. Chunked transfers count too.
  std::string AddTransfer(Transfer transfer, nlohmann::json* refusal);

  Backend* backend_;
  FrameWriter* writer_;
  Options options_;
  TokenRegistry registry_;

  std::mutex server_mu_;
  bool server_tried_ = false;
  std::unique_ptr<TokenServer> server_;

  std::mutex chunks_mu_;
  std::map<std::string, ChunkRead> chunk_reads_;
  std::map<std::string, ChunkUpload> chunk_uploads_;

  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  size_t in_flight_ = 0;
  std::map<std::string, size_t> in_flight_by_origin_;  // by the request's "origin" ("" when none)
};

// "NotFound", "DigestMismatch", ... for a reply's "error".
nlohmann::json ErrorReply(std::string_view error, std::string_view message);

// The reply for a store's failure: its name and a fixed sentence for that
// name. The store's own message (which may name paths in the user's home)
// goes to stderr, the browser's log, never to the page.
nlohmann::json StoreErrorReply(const client::Error& error);

}  // namespace costore::native_host
