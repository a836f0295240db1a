// BlobStore: the content-addressed files on disk.
//
//   <root>/blobs/sha256/ab/<hex>   public files, mode 0444, never rewritten
//   <root>/private/sha256/ab/<hex>.<owner tag>
//                                  private files, sealed (daemon/crypto/),
//                                  mode 0400; one per (digest, owner)
//   <root>/ingest/                 writes in flight; emptied at Init
//   <root>/CACHEDIR.TAG            so that backup tools skip the store
//
// A write streams the caller's descriptor into ingest/, hashing as bytes
// pass (one pass, a fixed-size buffer: memory stays flat whatever the size),
// fsyncs, and compares digest and size. Only a verified file is staged; only
// Commit makes it visible, by a rename that never replaces an existing blob.
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
};

class BlobStore {
 public:
  // Sizes above this are refused as InvalidArgument.
  static constexpr uint64_t kMaxFileSize = uint64_t{1} << 50;

  BlobStore(Env* env, std::string root);

  // Creates the layout (mode 0700 for the root), writes CACHEDIR.TAG, and
  // removes whatever a crash left in ingest/.
  Status Init();

  // Streams request.source_fd to EOF into ingest/. On success *staged holds
  // the verified file. A digest or size mismatch stores nothing and returns
  // DigestMismatch naming the digest and size that arrived; reading stops
  // one byte past expected_size. ENOSPC gives NoSpace; the partial file is
  // always removed.
  Status Ingest(const IngestRequest& request, StagedBlob* staged);

  // Publishes a staged file under blobs/ (read-only, directory fsynced).
  // If the blob already exists the staged copy is dropped: the bytes are
  // identical, the digest says so.
  Status Commit(StagedBlob* staged);

  // A read-only descriptor on the blob; NotFound if absent.
  Status OpenBlob(const Digest& digest, int* fd);
  Status RemoveBlob(const Digest& digest);
  bool Contains(const Digest& digest);
  // Every blob on disk (to find orphans left by a crash).
  Status ListBlobs(std::vector<Digest>* digests);

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
  Status OpenPrivate(const Digest& digest, const std::string& owner_tag, int* fd);
  Status RemovePrivate(const Digest& digest, const std::string& owner_tag);
  // Every private file on disk, as (digest, owner tag).
  Status ListPrivate(std::vector<std::pair<Digest, std::string>>* files);
  std::string PrivatePath(const Digest& digest, const std::string& owner_tag) const;

 private:
  Env* env_;
  std::string root_;
  std::string blobs_dir_;    // <root>/blobs/sha256
  std::string private_dir_;  // <root>/private/sha256
  std::string ingest_dir_;   // <root>/ingest
};

}  // namespace costore
