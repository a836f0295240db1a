// The engine's space policy: the free-space floor, the quota, the reserve
// that lets deletes commit on a full disk, and eviction (Collect).
#include <algorithm>

#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/quote.h"
#include "daemon/log.h"

namespace costore {
namespace {

constexpr uint64_t kAutoFloorCap = uint64_t{2} << 30;  // 2 GiB
constexpr uint64_t kAutoFloorPercent = 5;

std::string Bytes(uint64_t n) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(n);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return std::to_string(n) + " bytes";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

}  // namespace

uint64_t Engine::FloorFor(const FsSpace& fs) {
  const uint64_t setting = GetSpaceSettings().min_free_space;
  if (setting != 0) return setting;
  return std::min(kAutoFloorCap, fs.total / 100 * kAutoFloorPercent);
}

Status Engine::StoreBytes(uint64_t* bytes) {
  CatalogTotals totals;
  Status s = catalog_->GetTotals(&totals);
  if (!s.ok()) return s;
  uint64_t sum = totals.public_bytes;
  for (const auto& [size, chunk] : totals.private_sizes) sum += sealed::SealedSize(size, chunk);
  *bytes = sum;
  return Status::OK();
}

Status Engine::CheckFloor(uint64_t bytes, uint64_t in_flight, bool may_evict, const std::string& what) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    FsSpace fs;
    Status s = options_.env->GetFsSpace(options_.root, &fs);
    if (!s.ok()) return s;
    const uint64_t floor = FloorFor(fs);
    const uint64_t needed = bytes + in_flight + floor;
    if (fs.available >= needed) return Status::OK();
    if (may_evict && attempt == 0) {
      CollectResult evicted;
      s = EvictFor(needed - fs.available, &evicted);
      if (!s.ok()) return s;
      if (evicted.files_deleted > 0) continue;
    }
    return Status::NoSpace(what + " would leave " + Bytes(fs.available > bytes + in_flight ? fs.available - bytes - in_flight : 0) +
                           " free on the file system of " + options_.root + "; costore keeps at least " +
                           Bytes(floor) + " free (setting min-free-space)");
  }
  return Status::OK();
}

Status Engine::CheckQuota(uint64_t bytes, uint64_t in_flight, bool may_evict, const std::string& what) {
  const uint64_t quota = GetSpaceSettings().quota;
  if (quota == 0) return Status::OK();
  for (int attempt = 0; attempt < 2; ++attempt) {
    uint64_t used = 0;
    Status s = StoreBytes(&used);
    if (!s.ok()) return s;
    if (used + in_flight + bytes <= quota) return Status::OK();
    if (may_evict && attempt == 0) {
      CollectResult evicted;
      s = EvictFor(used + in_flight + bytes - quota, &evicted);
      if (!s.ok()) return s;
      if (evicted.files_deleted > 0) continue;
    }
    return Status::QuotaExceeded(what + " would bring the store to " + Bytes(used + in_flight + bytes) +
                                 ", past its quota of " + Bytes(quota) + " (setting quota)");
  }
  return Status::OK();
}

Status Engine::MakeRoomFor(uint64_t bytes, uint64_t in_flight) {
  const bool may_evict = GetSpaceSettings().auto_collect;
  const std::string what = "storing " + Bytes(bytes);
  Status s = CheckFloor(bytes, in_flight, may_evict, what);
  if (s.ok()) s = CheckQuota(bytes, in_flight, may_evict, what);
  return s;
}

Status Engine::CheckGrowth(uint64_t written) {
  // Looked at every BlobStore::kProgressCheckBytes: the disk must have room
  // for the next step above the floor, so that no step crosses it. The
  // quota is checked against what arrived (and again, exactly, once the
  // size is known).
  const bool may_evict = GetSpaceSettings().auto_collect;
  const std::string what = "a store of unknown size, after " + Bytes(written) + ",";
  Status s = CheckFloor(BlobStore::kProgressCheckBytes, reserved_bytes_.load(), may_evict, what);
  if (s.ok()) s = CheckQuota(written, reserved_bytes_.load(), may_evict, what);
  return s;
}

Status Engine::WithReserve(const std::function<Status()>& change) {
  Status s = change();
  if (s.code() != Code::kNoSpace || options_.reserve_bytes == 0) return s;
  {
    std::lock_guard<std::mutex> lock(reserve_mu_);
    Status removed = options_.env->RemoveFile(options_.root + "/reserve");
    if (!removed.ok()) return s;
  }
  LogWarning("the disk holding the store is full: released the " + Bytes(options_.reserve_bytes) +
             " reserve so that the catalog can commit");
  return change();
}

void Engine::RefillReserve() {
  if (options_.reserve_bytes == 0) return;
  std::lock_guard<std::mutex> lock(reserve_mu_);
  const std::string path = options_.root + "/reserve";
  if (options_.env->FileExists(path)) return;
  FsSpace fs;
  // Only when it costs nothing that matters: a nearly full disk keeps its
  // bytes for the user until a delete frees room.
  if (!options_.env->GetFsSpace(options_.root, &fs).ok() || fs.available < options_.reserve_bytes * 8) return;
  Status s = options_.env->Preallocate(path, options_.reserve_bytes);
  if (!s.ok()) LogDebug("no space reserve: " + s.message());
}

Status Engine::EvictFor(uint64_t bytes_needed, CollectResult* result) {
  uint64_t used = 0;
  Status s = StoreBytes(&used);
  if (!s.ok()) return s;
  CollectOptions options;
  options.target_size = used > bytes_needed ? used - bytes_needed : 0;
  s = Collect(options, result);
  if (s.ok() && result->files_deleted > 0) {
    LogInfo("auto-collect: deleted " + std::to_string(result->files_deleted) + " least recently used file(s), " +
            Bytes(result->bytes_freed) + ", to make room");
  }
  return s;
}

Status Engine::Collect(const CollectOptions& options, CollectResult* result) {
  if (!options.target_size && !options.unused_for_s) {
    return Status::InvalidArgument("Collect needs \"target-size\" or \"unused-for\" (or both)");
  }
  std::vector<FileRecord> files;
  Status s = catalog_->ListFiles(&files);
  if (!s.ok()) return s;
  uint64_t used = 0;
  s = StoreBytes(&used);
  if (!s.ok()) return s;
  // Least recently used (stored or read) first; pinned files never.
  std::erase_if(files, [](const FileRecord& f) { return f.pinned; });
  std::stable_sort(files.begin(), files.end(),
                   [](const FileRecord& a, const FileRecord& b) { return a.last_used_us < b.last_used_us; });
  const int64_t now = options_.env->NowMicros();
  CollectResult out;
  for (const FileRecord& file : files) {
    const bool stale = options.unused_for_s &&
                       now - file.last_used_us >= static_cast<int64_t>(*options.unused_for_s) * 1'000'000;
    const bool over = options.target_size && used > *options.target_size;
    if (!stale && !over) continue;
    if (!options.dry_run) {
      std::lock_guard<std::mutex> lock(LockFor(file.digest));
      s = RemovePublic(file.digest);
      if (s.code() == Code::kNotFound) continue;
      if (!s.ok()) return s;
    }
    used -= std::min(used, file.size);
    ++out.files_deleted;
    out.bytes_freed += file.size;
    out.digests.push_back(file.digest.ToString());
  }
  out.store_bytes = used;
  if (!options.dry_run && out.files_deleted > 0) {
    RefillReserve();
    for (const std::string& digest : out.digests) Publish({"deleted", digest});
    Publish({"collected", "*"});
  }
  *result = std::move(out);
  return Status::OK();
}

Status Engine::Space(SpaceReport* report) {
  CatalogTotals totals;
  Status s = catalog_->GetTotals(&totals);
  if (!s.ok()) return s;
  FsSpace fs;
  s = options_.env->GetFsSpace(options_.root, &fs);
  if (!s.ok()) return s;
  SpaceReport out;
  out.store_bytes = totals.public_bytes;
  for (const auto& [size, chunk] : totals.private_sizes) out.store_bytes += sealed::SealedSize(size, chunk);
  out.files = totals.files;
  out.damaged = totals.damaged;
  out.pinned = totals.pinned;
  out.free_bytes = fs.available;
  out.floor_bytes = FloorFor(fs);
  out.quota_bytes = GetSpaceSettings().quota;
  std::string text;
  if (catalog_->GetSetting("last-scrub", &text).ok()) out.last_scrub_us = std::atoll(text.c_str());
  *report = out;
  return Status::OK();
}

}  // namespace costore
