#include "native-host/host.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

extern char** environ;

namespace costore::native_host {
namespace {

// The same words for a refusal and a miss, whatever the daemon said.
constexpr const char* kNotFoundMessage = "not found";
constexpr auto kChunkIdle = std::chrono::seconds(120);

// What a page is told for each error of the store: fixed words, whatever
// the daemon said.
const char* PublicMessage(client::ErrorCode code) {
  switch (code) {
    case client::ErrorCode::kNotFound: return kNotFoundMessage;
    case client::ErrorCode::kDigestMismatch: return "the bytes do not match the hash";
    case client::ErrorCode::kNoSpace: return "there is no space left for the store";
    case client::ErrorCode::kQuotaExceeded: return "the store's limits would be exceeded";
    case client::ErrorCode::kCancelled: return "the transfer was cancelled";
    case client::ErrorCode::kBusy: return "the store is busy; try again later";
    case client::ErrorCode::kUnreachable: return "the store is not running";
    case client::ErrorCode::kInvalidArgument: return "the store refused the request";
    default: return "the store failed";
  }
}

nlohmann::json FromClientError(const client::Error& error) { return StoreErrorReply(error); }

// An unexpected exception: logged, and fixed words for the page.
nlohmann::json FromException(const char* where, const std::exception& error) {
  std::fprintf(stderr, "costore-native-host: %s: %s\n", where, error.what());
  return ErrorReply("Failed", "the native host failed");
}

int HttpStatusFor(const nlohmann::json& reply) {
  if (reply.value("ok", false)) return 200;
  std::string error = reply.value("error", "");
  if (error == "DigestMismatch") return 422;
  if (error == "InvalidArgument") return 400;
  if (error == "NoSpace" || error == "QuotaExceeded") return 507;
  if (error == "Busy") return 503;
  return 500;
}

bool GetTransfer(const nlohmann::json& body, std::string* token, std::string* error) {
  if (!GetString(body, "transfer", token, error, 64)) return false;
  if (token->size() != 64) {
    *error = "\"transfer\" is not a transfer token";
    return false;
  }
  return true;
}

bool GetOriginAndDigest(const nlohmann::json& body, std::string* origin, std::string* digest, std::string* error) {
  std::string digest_text;
  if (!GetOrigin(body, origin, error)) return false;
  if (!GetString(body, "digest", &digest_text, error, 128)) return false;
  std::optional<std::string> parsed = ParseDigest(digest_text);
  if (!parsed) {
    *error = "\"digest\" is not 64 hexadecimal digits";
    return false;
  }
  *digest = *parsed;
  return true;
}

// The chunk operations name the origin too: a transfer serves only the
// origin it was made for.
bool OriginMatches(const nlohmann::json& body, const std::string& transfer_origin, std::string* error) {
  std::string origin;
  if (!GetOrigin(body, &origin, error)) return false;
  if (origin != transfer_origin) {
    *error = "no such transfer";
    return false;
  }
  return true;
}

// readlink `link` without a trailing " (deleted)", as costored reads it; "".
std::string Executable(const std::string& link) {
  char path[PATH_MAX];
  ssize_t n = ::readlink(link.c_str(), path, sizeof path - 1);
  if (n <= 0) return {};
  std::string target(path, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (target.size() > kDeleted.size() && target.ends_with(kDeleted)) {
    target.resize(target.size() - kDeleted.size());
  }
  return target;
}

}  // namespace

nlohmann::json ErrorReply(std::string_view error, std::string_view message) {
  return {{"ok", false}, {"error", std::string(error)}, {"message", std::string(message)}};
}

nlohmann::json StoreErrorReply(const client::Error& error) {
  std::string_view name = client::ErrorCodeName(error.code());
  // A miss or a refusal is routine (and says nothing worth logging).
  if (error.code() != client::ErrorCode::kNotFound) {
    std::fprintf(stderr, "costore-native-host: %.*s: %s\n", static_cast<int>(name.size()), name.data(), error.what());
  }
  return ErrorReply(name, PublicMessage(error.code()));
}

// --- ClientBackend ------------------------------------------------------------

const client::Client& ClientBackend::client() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!client_) client_.emplace(client::Client::Connect());
  return *client_;
}

client::OpenedFile ClientBackend::Open(const std::string& digest, const std::string& origin) {
  return client().Open(digest, origin);
}

client::FileInfo ClientBackend::Store(int fd, const std::string& digest, const std::string& origin,
                                      std::optional<uint64_t> size) {
  client::StoreOptions options;
  options.origin = origin;
  options.size = size;
  return client().StoreFd(fd, digest, options);
}

std::vector<SiteFile> ClientBackend::ListStoredBy(const std::string& origin) {
  const client::Client& c = client();
  // costored names this host's app by the browser that started it (its
  // parent's executable), or by the host's own executable when it cannot
  // (daemon/dbus/caller_identity.h). Files stored under the latter (when
  // costored fell back, or before it named browsers) are listed too.
  const std::set<std::string> apps = {Executable("/proc/self/exe"),
                                      Executable("/proc/" + std::to_string(::getppid()) + "/exe")};
  std::vector<SiteFile> files;
  std::set<std::string> seen;
  for (const client::FileEntry& entry : c.List()) {
    if (!seen.insert(entry.digest).second) continue;
    std::vector<client::PrincipalUsage> usage;
    try {
      usage = c.Usage(entry.digest);
    } catch (const client::Error& error) {
      if (error.code() == client::ErrorCode::kNotFound) continue;  // deleted meanwhile
      throw;
    }
    for (const client::PrincipalUsage& who : usage) {
      if (who.stored && !who.app.empty() && apps.contains(who.app) && who.origin == origin) {
        files.push_back({entry.digest, entry.size, entry.name, entry.last_used_usec});
        break;
      }
    }
  }
  return files;
}

// --- UploadSession ------------------------------------------------------------

UploadSession::UploadSession(Backend* backend, WriteTransfer transfer, std::optional<uint64_t> size) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "costore-native-host: cannot make a pipe: %s\n", std::strerror(errno));
    outcome_ = ErrorReply("IOError", "the native host failed");
    return;
  }
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups; best effort
  write_fd_ = fds[1];
  int read_fd = fds[0];
  if (!size) size = transfer.size;
  thread_ = std::thread([this, backend, transfer = std::move(transfer), size, read_fd] {
    nlohmann::json outcome;
    try {
      client::FileInfo info = backend->Store(read_fd, transfer.digest, transfer.origin, size);
      outcome = {{"ok", true}, {"digest", info.digest}, {"size", info.size}};
    } catch (const client::Error& error) {
      outcome = FromClientError(error);
    } catch (const std::exception& error) {
      outcome = FromException("store", error);
    }
    outcome_ = std::move(outcome);  // read after the join
    // From here on, writes fail with EPIPE instead of blocking.
    ::close(read_fd);
  });
}

UploadSession::~UploadSession() { Finish(); }

bool UploadSession::Write(const char* data, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (write_fd_ < 0) return false;
  if (!WriteAll(write_fd_, data, size)) return false;
  written_ += size;
  return true;
}

UploadSession::WriteResult UploadSession::WriteAt(uint64_t offset, const char* data, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset != written_) return WriteResult::kOutOfOrder;
  if (write_fd_ < 0 || !WriteAll(write_fd_, data, size)) return WriteResult::kFailed;
  written_ += size;
  return WriteResult::kOk;
}

uint64_t UploadSession::written() {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

nlohmann::json UploadSession::Finish() {
  {
    // Waits for a write in progress: the descriptor is closed only between
    // writes, and never written to once closed.
    std::lock_guard<std::mutex> lock(mu_);
    if (write_fd_ >= 0) ::close(write_fd_);
    write_fd_ = -1;
  }
  std::lock_guard<std::mutex> lock(join_mu_);
  if (thread_.joinable()) thread_.join();
  return outcome_;
}

// --- Host ---------------------------------------------------------------------

Host::Host(Backend* backend, FrameWriter* writer, Options options)
    : backend_(backend),
      writer_(writer),
      options_(std::move(options)),
      registry_(std::chrono::seconds(120), options_.max_transfers) {}

Host::~Host() {
  Shutdown();
  std::unique_lock<std::mutex> lock(flight_mu_);
  flight_cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void Host::Shutdown() {
  std::lock_guard<std::mutex> lock(server_mu_);
  server_tried_ = true;  // no new endpoint after shutdown
  if (server_) server_->Stop();
}

TokenServer* Host::server() {
  std::lock_guard<std::mutex> lock(server_mu_);
  if (!server_tried_ && options_.http) {
    server_tried_ = true;
    TokenServer::Options server_options;
    server_options.bind_address = options_.bind_address;
    server_options.extension_origins = options_.extension_origins;
    server_options.allow_moz_extension = options_.allow_moz_extension;
    std::string error;
    server_ = TokenServer::Start(
        server_options, &registry_,
        [this](const WriteTransfer& transfer, std::optional<uint64_t> length, const BodySource& body) {
          return Upload(transfer, length, body);
        },
        &error);
    if (!server_) std::fprintf(stderr, "costore-native-host: no loopback endpoint: %s\n", error.c_str());
  }
  return server_.get();
}

void Host::HandleFrameError(const Frame& frame) {
  nlohmann::json reply = ErrorReply("InvalidArgument", DescribeFrameError(frame));
  reply["id"] = nullptr;
  writer_->Send(reply);
}

void Host::HandleMessage(std::string_view payload) {
  std::variant<Request, RequestError> parsed = ParseRequest(payload);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    nlohmann::json reply = ErrorReply("InvalidArgument", error->message);
    reply["id"] = error->id;
    writer_->Send(reply);
    return;
  }
  Request request = std::get<Request>(std::move(parsed));
  // One site may not take every slot: an open waits for the user's consent
  // for up to a minute, and other sites go on meanwhile.
  // Counted by the canonical origin, so that spellings share one count.
  std::string origin;
  if (auto it = request.body.find("origin"); it != request.body.end() && it->is_string()) {
    std::string error;
    if (!GetOrigin(request.body, &origin, &error)) origin = it->get<std::string>().substr(0, 2048);
  }
  {
    std::lock_guard<std::mutex> lock(flight_mu_);
    const char* refusal = nullptr;
    if (in_flight_ >= options_.max_in_flight) {
      refusal = "too many requests in flight";
    } else if (in_flight_by_origin_[origin] >= options_.max_in_flight_per_origin) {
      refusal = "too many requests in flight for this site";
    }
    if (refusal) {
      if (in_flight_by_origin_[origin] == 0) in_flight_by_origin_.erase(origin);
      nlohmann::json reply = ErrorReply("Busy", refusal);
      reply["id"] = request.id;
      writer_->Send(reply);
      return;
    }
    ++in_flight_;
    ++in_flight_by_origin_[origin];
  }
  // Each request on a thread of its own: an open may wait a minute for the
  // user's consent while other requests go on.
  std::thread([this, request = std::move(request), origin = std::move(origin)] {
    nlohmann::json reply;
    try {
      reply = Dispatch(request);
    } catch (const std::exception& error) {
      reply = FromException(request.op.c_str(), error);
    }
    reply["id"] = request.id;
    writer_->Send(reply);
    std::lock_guard<std::mutex> lock(flight_mu_);
    --in_flight_;
    if (--in_flight_by_origin_[origin] == 0) in_flight_by_origin_.erase(origin);
    flight_cv_.notify_all();
  }).detach();
}

nlohmann::json Host::Dispatch(const Request& request) {
  const std::string& op = request.op;
  if (op == "hello") return Hello();
  if (op == "open") return Open(request.body);
  if (op == "read") return Read(request.body);
  if (op == "create") return Create(request.body);
  if (op == "write") return Write(request.body);
  if (op == "finish") return Finish(request.body);
  if (op == "close") return Close(request.body);
  if (op == "list") return List(request.body);
  if (op == "manager") return Manager();
  return ErrorReply("InvalidArgument", "\"op\" is not a known operation");
}

nlohmann::json Host::Hello() {
  return {{"ok", true}, {"version", COSTORE_NATIVE_HOST_VERSION}, {"http", options_.http}};
}

nlohmann::json Host::Open(const nlohmann::json& body) {
  std::string origin, digest, error;
  if (!GetOriginAndDigest(body, &origin, &digest, &error)) return ErrorReply("InvalidArgument", error);
  client::OpenedFile file;
  try {
    file = backend_->Open(digest, origin);
  } catch (const client::Error& e) {
    return FromClientError(e);
  }
  auto transfer = std::make_shared<ReadTransfer>();
  transfer->fd = std::move(file.fd);
  transfer->size = file.info.size;
  transfer->origin = origin;
  nlohmann::json refusal;
  std::string token = AddTransfer(transfer, &refusal);
  if (token.empty()) return refusal;
  nlohmann::json reply = {{"ok", true}, {"transfer", token}, {"size", file.info.size}};
  if (TokenServer* s = server()) reply["url"] = s->ReadUrl(token);
  return reply;
}

std::vector<std::shared_ptr<UploadSession>> Host::PurgeIdleLocked() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<UploadSession>> doomed;
  for (auto it = chunk_reads_.begin(); it != chunk_reads_.end();) {
    it = now - it->second.touched > kChunkIdle ? chunk_reads_.erase(it) : std::next(it);
  }
  for (auto it = chunk_uploads_.begin(); it != chunk_uploads_.end();) {
    if (now - it->second.touched > kChunkIdle) {
      doomed.push_back(std::move(it->second.session));
      it = chunk_uploads_.erase(it);
    } else {
      ++it;
    }
  }
  return doomed;
}

std::string Host::AddTransfer(Transfer transfer, nlohmann::json* refusal) {
  const std::string origin = OriginOf(transfer);
  std::vector<std::shared_ptr<UploadSession>> doomed;  // destroyed after the lock
  std::lock_guard<std::mutex> lock(chunks_mu_);
  doomed = PurgeIdleLocked();
  // Chunked transfers left the registry with their first chunk: count them.
  size_t chunked = chunk_reads_.size() + chunk_uploads_.size();
  size_t chunked_here = 0;
  for (const auto& [token, read] : chunk_reads_) chunked_here += read.transfer->origin == origin ? 1 : 0;
  for (const auto& [token, upload] : chunk_uploads_) chunked_here += upload.transfer->origin == origin ? 1 : 0;
  if (registry_.live() + chunked >= options_.max_transfers) {
    *refusal = ErrorReply("Busy", "too many transfers in flight");
    return {};
  }
  if (registry_.LiveFor(origin) + chunked_here >= options_.max_transfers_per_origin) {
    *refusal = ErrorReply("Busy", "too many transfers in flight for this site");
    return {};
  }
  std::string token = registry_.Add(std::move(transfer));
  if (token.empty()) *refusal = ErrorReply("Busy", "too many transfers in flight");
  return token;
}

nlohmann::json Host::Read(const nlohmann::json& body) {
  std::string token, error;
  uint64_t offset = 0;
  if (!GetTransfer(body, &token, &error) || !GetUint(body, "offset", &offset, &error)) {
    return ErrorReply("InvalidArgument", error);
  }
  std::shared_ptr<ReadTransfer> transfer;
  std::vector<std::shared_ptr<UploadSession>> doomed;  // destroyed after the lock
  {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    doomed = PurgeIdleLocked();
    auto it = chunk_reads_.find(token);
    if (it == chunk_reads_.end()) {
      // The first chunk takes the token: the loopback endpoint no longer
      // serves it.
      std::optional<Transfer> taken = registry_.Take(token);
      if (!taken || !std::holds_alternative<std::shared_ptr<ReadTransfer>>(*taken)) {
        return ErrorReply("Gone", "no such transfer");
      }
      it = chunk_reads_.emplace(token, ChunkRead{std::get<std::shared_ptr<ReadTransfer>>(*taken), std::chrono::steady_clock::now()}).first;
    }
    if (!OriginMatches(body, it->second.transfer->origin, &error)) return ErrorReply("Gone", error);
    it->second.touched = std::chrono::steady_clock::now();
    transfer = it->second.transfer;
  }
  if (offset > transfer->size) return ErrorReply("InvalidArgument", "\"offset\" is past the end of the file");
  uint64_t length = kMaxChunkBytes;
  if (!GetUint(body, "length", &length, &error, false)) return ErrorReply("InvalidArgument", error);
  length = std::min<uint64_t>(length, kMaxChunkBytes);
  size_t want = static_cast<size_t>(std::min<uint64_t>(length, transfer->size - offset));
  std::string data(want, '\0');
  size_t done = 0;
  while (done < want) {
    ssize_t got = ::pread(transfer->fd.get(), data.data() + done, want - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return ErrorReply("IOError", "the stored file ended early");
    done += static_cast<size_t>(got);
  }
  bool eof = offset + want >= transfer->size;
  {
    // Done once every byte went out (chunks may come in any order).
    std::lock_guard<std::mutex> lock(chunks_mu_);
    auto it = chunk_reads_.find(token);
    if (it != chunk_reads_.end()) {
      it->second.served += want;
      if (it->second.served >= transfer->size) chunk_reads_.erase(it);
    }
  }
  return {{"ok", true},
          {"offset", offset},
          {"data", Base64Encode(reinterpret_cast<const unsigned char*>(data.data()), data.size())},
          {"eof", eof}};
}

nlohmann::json Host::Create(const nlohmann::json& body) {
  auto transfer = std::make_shared<WriteTransfer>();
  std::string error;
  if (!GetOriginAndDigest(body, &transfer->origin, &transfer->digest, &error)) {
    return ErrorReply("InvalidArgument", error);
  }
  uint64_t size = 0;
  bool has_size = body.contains("size") && !body["size"].is_null();
  if (!GetUint(body, "size", &size, &error, false)) return ErrorReply("InvalidArgument", error);
  if (has_size) transfer->size = size;
  nlohmann::json refusal;
  std::string token = AddTransfer(transfer, &refusal);
  if (token.empty()) return refusal;
  nlohmann::json reply = {{"ok", true}, {"transfer", token}};
  if (TokenServer* s = server()) reply["url"] = s->WriteUrl(token);
  return reply;
}

nlohmann::json Host::Write(const nlohmann::json& body) {
  std::string token, data, error;
  uint64_t offset = 0;
  if (!GetTransfer(body, &token, &error) || !GetUint(body, "offset", &offset, &error) ||
      !GetString(body, "data", &data, &error, kMaxIncomingFrame)) {
    return ErrorReply("InvalidArgument", error);
  }
  std::optional<std::string> bytes = Base64Decode(data);
  if (!bytes) return ErrorReply("InvalidArgument", "\"data\" is not base64");
  std::shared_ptr<UploadSession> session;
  std::vector<std::shared_ptr<UploadSession>> doomed;  // destroyed after the lock
  {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    doomed = PurgeIdleLocked();
    auto it = chunk_uploads_.find(token);
    if (it == chunk_uploads_.end()) {
      std::optional<Transfer> taken = registry_.Take(token);
      if (!taken || !std::holds_alternative<std::shared_ptr<WriteTransfer>>(*taken)) {
        return ErrorReply("Gone", "no such transfer");
      }
      auto transfer = std::get<std::shared_ptr<WriteTransfer>>(*taken);
      if (!OriginMatches(body, transfer->origin, &error)) return ErrorReply("Gone", error);
      ChunkUpload upload{transfer, std::make_shared<UploadSession>(backend_, *transfer, transfer->size),
                         std::chrono::steady_clock::now()};
      it = chunk_uploads_.emplace(token, std::move(upload)).first;
    }
    if (!OriginMatches(body, it->second.transfer->origin, &error)) return ErrorReply("Gone", error);
    it->second.touched = std::chrono::steady_clock::now();
    session = it->second.session;
  }
  // Drops the upload (if it is still this session's), to be destroyed
  // after the lock: that waits for the store.
  auto drop = [&] {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    auto it = chunk_uploads_.find(token);
    if (it != chunk_uploads_.end() && it->second.session == session) {
      doomed.push_back(std::move(it->second.session));
      chunk_uploads_.erase(it);
    }
  };
  // The offset is checked and the bytes written under the session's lock:
  // two chunks at once cannot both pass the check and interleave.
  switch (session->WriteAt(offset, bytes->data(), bytes->size())) {
    case UploadSession::WriteResult::kOk:
      return {{"ok", true}};
    case UploadSession::WriteResult::kOutOfOrder:
      drop();  // aborts: nothing is stored
      return ErrorReply("InvalidArgument", "chunks must be written in order, without gaps");
    case UploadSession::WriteResult::kFailed:
      break;
  }
  drop();
  nlohmann::json outcome = session->Finish();
  return outcome.value("ok", false) ? ErrorReply("Failed", "the store ended early") : outcome;
}

nlohmann::json Host::Finish(const nlohmann::json& body) {
  std::string token, error;
  if (!GetTransfer(body, &token, &error)) return ErrorReply("InvalidArgument", error);
  std::shared_ptr<UploadSession> session;
  {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    auto it = chunk_uploads_.find(token);
    if (it != chunk_uploads_.end()) {
      if (!OriginMatches(body, it->second.transfer->origin, &error)) return ErrorReply("Gone", error);
      session = it->second.session;
      chunk_uploads_.erase(it);
    } else {
      // No chunk was written: an empty file.
      std::optional<Transfer> taken = registry_.Take(token);
      if (!taken || !std::holds_alternative<std::shared_ptr<WriteTransfer>>(*taken)) {
        return ErrorReply("Gone", "no such transfer");
      }
      auto transfer = std::get<std::shared_ptr<WriteTransfer>>(*taken);
      if (!OriginMatches(body, transfer->origin, &error)) return ErrorReply("Gone", error);
      session = std::make_shared<UploadSession>(backend_, *transfer, transfer->size);
    }
  }
  return session->Finish();
}

nlohmann::json Host::Close(const nlohmann::json& body) {
  std::string token, error;
  if (!GetTransfer(body, &token, &error)) return ErrorReply("InvalidArgument", error);
  registry_.Take(token);
  std::shared_ptr<UploadSession> session;
  {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    chunk_reads_.erase(token);
    auto it = chunk_uploads_.find(token);
    if (it != chunk_uploads_.end()) {
      session = it->second.session;
      chunk_uploads_.erase(it);
    }
  }
  session.reset();  // aborts an unfinished upload: nothing is stored
  return {{"ok", true}};
}

nlohmann::json Host::List(const nlohmann::json& body) {
  std::string origin, error;
  if (!GetOrigin(body, &origin, &error)) return ErrorReply("InvalidArgument", error);
  std::vector<SiteFile> files;
  try {
    files = backend_->ListStoredBy(origin);
  } catch (const client::Error& e) {
    return FromClientError(e);
  }
  nlohmann::json list = nlohmann::json::array();
  for (const SiteFile& file : files) {
    list.push_back({{"digest", file.digest},
                    {"size", file.size},
                    {"name", file.name},
                    {"lastUsed", file.last_used_usec / 1000}});
  }
  return {{"ok", true}, {"files", list}};
}

nlohmann::json Host::Manager() {
  pid_t pid = -1;
  std::string command = options_.manager_command;
  char* argv[] = {command.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // Never let it write into the native messaging stream.
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  // Nor inherit anything else: the frames' descriptor, the store's files,
  // sockets (whether or not they were opened close-on-exec).
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  int rc = posix_spawnp(&pid, command.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::fprintf(stderr, "costore-native-host: cannot start %s: %s\n", command.c_str(), std::strerror(rc));
    return ErrorReply("Failed", "cannot start the manager");
  }
  std::thread([pid] { ::waitpid(pid, nullptr, 0); }).detach();
  return {{"ok", true}};
}

UploadOutcome Host::Upload(const WriteTransfer& transfer, std::optional<uint64_t> content_length,
                           const BodySource& body) {
  std::optional<uint64_t> size = content_length ? content_length : transfer.size;
  UploadSession session(backend_, transfer, size);
  bool store_reading = true;
  bool complete = body([&](const char* data, size_t length) {
    // Once the store stopped reading, drain the body so that the browser
    // gets the answer rather than a reset connection.
    if (store_reading) store_reading = session.Write(data, length);
    return true;
  });
  nlohmann::json outcome = session.Finish();
  if (!complete && outcome.value("ok", false) == false && outcome.value("error", "") == "DigestMismatch") {
    outcome = ErrorReply("Cancelled", "the upload ended early");
  }
  return {HttpStatusFor(outcome), outcome};
}

}  // namespace costore::native_host
