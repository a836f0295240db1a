#include "daemon/engine/caller_limits.h"

#include <algorithm>

#include "daemon/engine/quote.h"

namespace costore {

std::string RetryHint(uint32_t seconds) { return "; try again in " + std::to_string(std::max(seconds, 1u)) + " s"; }

CallerLimits::Slot& CallerLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    limits_ = other.limits_;
    who_ = std::move(other.who_);
    other.limits_ = nullptr;
  }
  return *this;
}

void CallerLimits::Slot::Release() {
  if (limits_ == nullptr) return;
  limits_->Give(who_);
  limits_ = nullptr;
}

CallerLimits::CallerLimits(std::string what, CallerCaps caps, uint32_t retry_after_s)
    : what_(std::move(what)), caps_(caps), retry_after_s_(retry_after_s) {}

Status CallerLimits::Acquire(const Principal& who, Slot* slot) {
  std::lock_guard<std::mutex> lock(mu_);
  auto count_of = [](const auto& map, const auto& key) {
    auto it = map.find(key);
    return it == map.end() ? 0 : it->second;
  };
  std::string full;
  if (count_of(by_principal_, who) >= caps_.per_principal) {
    full = std::to_string(caps_.per_principal) + " for origin " + Quote(who.origin) + " of app " + Quote(who.app);
  } else if (count_of(by_app_, who.app) >= caps_.per_app) {
    full = std::to_string(caps_.per_app) + " for app " + Quote(who.app) + ", all its origins together";
  } else if (total_ >= caps_.total) {
    full = std::to_string(caps_.total) + " for all callers";
  }
  if (!full.empty()) {
    return Status::Busy("too many " + what_ + " in flight (at most " + full + ")" + RetryHint(retry_after_s_));
  }
  ++total_;
  ++by_principal_[who];
  ++by_app_[who.app];
  slot->Release();
  slot->limits_ = this;
  slot->who_ = who;
  return Status::OK();
}

void CallerLimits::Give(const Principal& who) {
  std::lock_guard<std::mutex> lock(mu_);
  --total_;
  if (auto it = by_principal_.find(who); it != by_principal_.end() && --it->second <= 0) by_principal_.erase(it);
  if (auto it = by_app_.find(who.app); it != by_app_.end() && --it->second <= 0) by_app_.erase(it);
}

int CallerLimits::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

size_t CallerLimits::callers_tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_principal_.size() + by_app_.size();
}

}  // namespace costore
