// The engine's space policy: the free-space floor, the quota, the reserve
// that lets deletes commit on a full disk, and eviction (Collect).
#include <algorithm>
#include <cstdint>

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

uint64_t Engine::EvictableBytes() {
  std::vector<FileRecord> files;
  if (!catalog_->ListFiles(&files).ok()) return 0;
  uint64_t sum = 0;
  for (const FileRecord& f : files) {
    if (!f.pinned) sum += f.size;
  }
  return sum;
}

// Evicting is never done for a promise: a store of known size is admitted
// when it would fit once the evictable files were gone (kCount), and files
// are evicted only as its bytes actually arrive (kEvict, from
// CheckGrowth), a step at a time. A caller that claims a huge size and
// sends nothing deletes nothing.
Status Engine::CheckFloor(uint64_t bytes, uint64_t in_flight, Evict evict, const std::string& what) {
  FsSpace fs;
  Status s = options_.env->GetFsSpace(options_.root, &fs);
  if (!s.ok()) return s;
  const uint64_t floor = FloorFor(fs);
  const uint64_t needed = bytes + in_flight + floor;
  if (fs.available >= needed) return Status::OK();
  const uint64_t missing = needed - fs.available;
  if (evict != Evict::kNever && EvictableBytes() >= missing) {
    if (evict == Evict::kCount) return Status::OK();
    CollectResult evicted;
    s = EvictFor(missing, &evicted);
    if (!s.ok()) return s;
    s = options_.env->GetFsSpace(options_.root, &fs);
    if (!s.ok()) return s;
    if (fs.available >= needed) return Status::OK();
  }
  return Status::NoSpace(what + " would leave " +
                         Bytes(fs.available > bytes + in_flight ? fs.available - bytes - in_flight : 0) +
                         " free on the file system of " + options_.root + "; costore keeps at least " +
                         Bytes(floor) + " free (setting min-free-space)");
}

Status Engine::CheckQuota(uint64_t bytes, uint64_t in_flight, Evict evict, const std::string& what) {
  const uint64_t quota = GetSpaceSettings().quota;
  if (quota == 0) return Status::OK();
  uint64_t used = 0;
  Status s = StoreBytes(&used);
  if (!s.ok()) return s;
  const uint64_t total = used + in_flight + bytes;
  if (total <= quota) return Status::OK();
  if (evict != Evict::kNever && EvictableBytes() >= total - quota) {
    if (evict == Evict::kCount) return Status::OK();
    CollectResult evicted;
    s = EvictFor(total - quota, &evicted);
    if (!s.ok()) return s;
    s = StoreBytes(&used);
    if (!s.ok()) return s;
    if (used + in_flight + bytes <= quota) return Status::OK();
  }
  return Status::QuotaExceeded(what + " would bring the store to " + Bytes(used + in_flight + bytes) +
                               ", past its quota of " + Bytes(quota) + " (setting quota)");
}

Status Engine::MakeRoomFor(uint64_t bytes, uint64_t in_flight, bool* evict_as_it_grows) {
  const Evict evict = GetSpaceSettings().auto_collect ? Evict::kCount : Evict::kNever;
  const std::string what = "storing " + Bytes(bytes);
  Status s = CheckFloor(bytes, in_flight, evict, what);
  if (s.ok()) s = CheckQuota(bytes, in_flight, evict, what);
  // Room that eviction would make is made as the bytes arrive.
  *evict_as_it_grows = s.ok() && evict == Evict::kCount;
  return s;
}

Status Engine::CheckGrowth(uint64_t written, uint64_t own_reservation) {
  // Looked at every BlobStore::kProgressCheckBytes: the disk must have room
  // for the next step above the floor, so that no step crosses it. The
  // quota is checked against what arrived (and again, exactly, once the
  // size is known). Other stores' promises count; this one's own does not
  // (what it wrote is already on disk).
  const Evict evict = GetSpaceSettings().auto_collect ? Evict::kEvict : Evict::kNever;
  const uint64_t others = reserved_bytes_.load() - std::min(reserved_bytes_.load(), own_reservation);
  const std::string what =
      std::string(own_reservation == 0 ? "a store of unknown size" : "a store") + ", after " + Bytes(written) + ",";
  Status s = CheckFloor(BlobStore::kProgressCheckBytes, others, evict, what);
  if (s.ok()) s = CheckQuota(written, others, evict, what);
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
    // Saturating: an absurd "unused-for" selects nothing rather than
    // overflowing into everything.
    const int64_t unused_us = *options.unused_for_s > static_cast<uint64_t>(INT64_MAX / 1'000'000)
                                  ? INT64_MAX
                                  : static_cast<int64_t>(*options.unused_for_s) * 1'000'000;
    const bool stale = options.unused_for_s && now - file.last_used_us >= unused_us;
    const bool over = options.target_size && used > *options.target_size;
    if (!stale && !over) continue;
    if (!options.dry_run) {
      std::lock_guard<std::mutex> lock(LockFor(file.digest));
      FileRecord now_record;
      if (!catalog_->GetFile(file.digest, &now_record).ok() || now_record.pinned) continue;  // pinned meanwhile
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
