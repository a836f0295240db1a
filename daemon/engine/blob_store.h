// BlobStore: the content-addressed files on disk.
//
//   <root>/blobs/sha256/ab/<hex>   public files, mode 0444, never rewritten
//   <root>/private/sha256/ab/<hex>.<owner tag>
//                                  private files, sealed (daemon/crypto/),
//                                  mode 0400; one per (digest, owner)
//   <root>/ingest/                 writes in flight (<random>.part) and
//                                  removals in flight (<name>.deleting);
//                                  emptied at Init
//   <root>/quarantine/             whatever the store found where it did not
//                                  belong or changed after it was stored
//                                  (<UTC time>-<what>); never served, never
//                                  deleted by costore: the user looks and
//                                  removes
//   <root>/costored.lock           held (flock) by the one daemon serving
//   <root>/CACHEDIR.TAG            so that backup tools skip the store
//
// A write streams the caller's descriptor into ingest/, hashing as bytes
// pass (one pass, a fixed-size buffer: memory stays flat whatever the size),
// fsyncs, and compares digest and size. Only a verified file is staged; only
// Commit makes it visible, by a rename that never replaces an existing blob.
//
// Confinement: every path is below the root, which the engine holds with
// Env::LockStore, so no call follows a symlink inside the store. Init
// checks that blobs/, private/, ingest/ and quarantine/ are real
// directories; anything else in their place (a symlink to the user's
// documents, a file) is moved to quarantine/ and a real directory made. The
// only files ever unlinked are ingest/ entries (a regular file or a
// symlink: unlinking a link leaves its target alone) and blobs whose
// removal the catalog has recorded.
//
// Crash semantics: a crash while writing leaves a .part in ingest/ (removed
// at Init). A committed blob is durable before Commit returns (file fsync,
// rename, directory fsync). A removal first renames the blob into ingest/
// as <name>.deleting (durable), then the caller drops its record, then the
// file is unlinked; Init reports the .deleting names it finds, so that a
// removal interrupted before its record was dropped is finished, not undone;
// the .deleting file stays until the engine has dropped the record, so a
// crash during that start finds it again. New directories are made durable
// in their parents (the store's own entry included) before Init returns,
// and a commit syncs both the fan-out directory and ingest/, so that after a
// power cut a blob never keeps its ingest/ name.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/engine/digest.h"
#include "daemon/engine/env.h"
#include "daemon/engine/rate_floor.h"
#include "daemon/engine/status.h"

namespace costore {

class BlobStore;

// A verified file in ingest/, waiting for Commit. Move-only; removes its
// file when destroyed uncommitted.
class StagedBlob {
 public:
  StagedBlob() = default;
  ~StagedBlob();
  StagedBlob(StagedBlob&& other) noexcept;
  StagedBlob& operator=(StagedBlob&& other) noexcept;
  StagedBlob(const StagedBlob&) = delete;
  StagedBlob& operator=(const StagedBlob&) = delete;

  const Digest& digest() const { return digest_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  friend class BlobStore;
  Env* env_ = nullptr;
  Digest digest_;
  uint64_t size_ = 0;
  std::string path_;  // empty once committed or moved from
};

struct IngestRequest {
  int source_fd = -1;  // borrowed; read with read(2) from its current offset
  Digest expected;
  std::optional<uint64_t> expected_size;
  // A source that yields no byte for this long is abandoned (Cancelled).
  int idle_timeout_ms = 120'000;
  // Checked between reads; when it becomes true the ingest stops (Cancelled).
  const std::atomic<bool>* cancelled = nullptr;
  // When set, the file in ingest/ is written through the WritableFile this
  // returns (the private store seals there). Digest and size are still
  // those of the bytes read from the source.
  std::function<std::unique_ptr<WritableFile>(std::unique_ptr<WritableFile>)> filter;
  // Called before the first byte is written and then every
  // kProgressCheckBytes with the bytes written so far; an error stops the
  // ingest with that error (the engine's free-space floor and quota).
  std::function<Status(uint64_t written)> check_progress;
  // When set, observed after every read and every wake-up while waiting
  // (on a steady clock); an error stops the ingest with that error (the
  // engine's minimum average rate). Not owned.
  RateFloor* rate_floor = nullptr;
};

// What Init found that the engine must act on.
struct InitReport {
  // Removals interrupted by a crash: finish them (drop their records).
  std::vector<Digest> interrupted_removals;
  // Things moved to quarantine/, as "<what> -> quarantine/<name>".
  std::vector<std::string> quarantined;
};

// A blob as found on disk (Scan).
struct ScanResult {
  std::vector<Digest> blobs;
  std::vector<std::pair<Digest, std::string>> private_files;  // (digest, owner tag)
  std::vector<std::string> quarantined;  // strays moved aside, as in InitReport
};

class BlobStore {
 public:
  // Sizes above this are refused as InvalidArgument.
  static constexpr uint64_t kMaxFileSize = uint64_t{1} << 50;

  BlobStore(Env* env, std::string root);

  static constexpr uint64_t kProgressCheckBytes = uint64_t{8} << 20;

  // Creates or checks the layout, writes CACHEDIR.TAG, and empties ingest/
  // (regular files and links are removed, but for the .deleting files it
  // reports; anything else is quarantined).
  // The engine holds the root's StoreLock.
  Status Init(InitReport* report);

  // Opens every later public-file read through a read-only view of the
  // store (Env::OpenReadOnlyView); IOError (and reads stay direct) where
  // the system gives none.
  Status UseReadOnlyView();
  bool has_read_only_view() const { return view_fd_ >= 0; }

  // Streams request.source_fd to EOF into ingest/. On success *staged holds
  // the verified file. A digest or size mismatch stores nothing and returns
  // DigestMismatch naming the digest and size that arrived; reading stops
  // one byte past expected_size. ENOSPC gives NoSpace; the partial file is
  // always removed.
  Status Ingest(const IngestRequest& request, StagedBlob* staged);

  // Publishes a staged file under blobs/ (read-only, directory fsynced).
  // If a blob already exists the staged copy is dropped and *existed set
  // (the engine moves a blob it does not trust out of the way first). On
  // success *committed is the blob's inode as it is now on disk.
  Status Commit(StagedBlob* staged, FileStat* committed, bool* existed);

  // A read-only descriptor on the blob (through the read-only view when
  // there is one) and the opened file's stat; NotFound if absent, IOError
  // if it is not a regular file (never opened: a FIFO does not block).
  Status OpenBlob(const Digest& digest, int* fd, FileStat* st);
  Status StatBlob(const Digest& digest, FileStat* st);
  // Removal in two steps (see the crash semantics above): BeginRemove moves
  // the blob into ingest/ durably (NotFound if absent); the caller drops
  // its record, then FinishRemove unlinks it, or UndoRemove puts it back.
  Status BeginRemove(const Digest& digest);
  Status FinishRemove(const Digest& digest);
  Status UndoRemove(const Digest& digest);
  // Moves whatever is at the blob's path to quarantine/ (NotFound if
  // nothing is); `why` becomes part of its name there.
  Status QuarantineBlob(const Digest& digest, const std::string& why, std::string* moved_to = nullptr);
  bool Contains(const Digest& digest);
  // Every blob and private file on disk; strays (wrong names, links,
  // FIFOs, directories) are moved to quarantine/.
  Status Scan(ScanResult* result);

  std::string BlobPath(const Digest& digest) const;
  const std::string& root() const { return root_; }

  // --- private files -------------------------------------------------------
  // `owner_tag` names the owner in the file name (32 lowercase hex digits,
  // see OwnerTag in daemon/engine/private_files.h).
  //
  // Publishes a staged (sealed) file as the private file of (digest,
  // owner). A file already there is replaced: the caller knows from the
  // catalog that no record names it (a crash left it).
  Status CommitPrivate(StagedBlob* staged, const std::string& owner_tag);
  Status OpenPrivate(const Digest& digest, const std::string& owner_tag, int* fd, FileStat* st = nullptr);
  Status RemovePrivate(const Digest& digest, const std::string& owner_tag);
  Status QuarantinePrivate(const Digest& digest, const std::string& owner_tag, const std::string& why);
  std::string PrivatePath(const Digest& digest, const std::string& owner_tag) const;

  // Moves `path` (inside the store) to quarantine/<UTC time>-<label>.
  Status Quarantine(const std::string& path, const std::string& label, std::string* moved_to = nullptr);

  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

 private:
  // Makes `dir` a real directory: anything else there is quarantined.
  Status EnsureDirectory(const std::string& dir, InitReport* report);
  Status ScanFanOuts(const std::string& dir, bool is_private, ScanResult* result);
  std::string DeletingPath(const std::string& name) const { return ingest_dir_ + "/" + name + ".deleting"; }

  Env* env_;
  std::string root_;
  std::string blobs_dir_;    // <root>/blobs/sha256
  std::string private_dir_;  // <root>/private/sha256
  std::string ingest_dir_;   // <root>/ingest
  std::string quarantine_dir_;  // <root>/quarantine
  int view_fd_ = -1;         // a read-only view of the root, or -1
};

}  // namespace costore
