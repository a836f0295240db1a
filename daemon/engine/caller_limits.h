// CallerLimits: how many of one kind of call (stores, opens) may be in
// flight at once, per principal, per app (every origin of one app
// together: a sandboxed app can claim as many origins as it likes) and in
// all. A call past any of the three is Busy at once, before it holds
// anything, so that one caller's stalled calls never make another caller's
// call wait or fail: only the global cap is shared, and it is set above
// what any one app may take.
//
// Busy messages end with "; try again in N s" (N >= 1 whole seconds), the
// contract libcostore parses to retry (ipc/io.github.costore.Store1.xml).
//
// Bookkeeping holds only callers with a call in flight, so it is bounded by
// the global cap, not by how many principals ever called.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "daemon/engine/principal.h"
#include "daemon/engine/status.h"

namespace costore {

struct CallerCaps {
  int per_principal = 4;
  int per_app = 8;
  int total = 24;
};

class CallerLimits {
 public:
  // A call admitted: its place is given back when the slot is destroyed
  // or released. Move-only; an empty slot holds nothing.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept { *this = std::move(other); }
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { Release(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    bool held() const { return limits_ != nullptr; }
    void Release();

   private:
    friend class CallerLimits;
    CallerLimits* limits_ = nullptr;
    Principal who_;
  };

  // `what` names the calls in messages ("stores", "opens"); `retry_after_s`
  // is the wait a Busy answer names.
  CallerLimits(std::string what, CallerCaps caps, uint32_t retry_after_s);
  CallerLimits(const CallerLimits&) = delete;
  CallerLimits& operator=(const CallerLimits&) = delete;

  // OK and *slot held, or Busy naming which cap is full and when to retry.
  Status Acquire(const Principal& who, Slot* slot);

  const CallerCaps& caps() const { return caps_; }
  // Calls in flight now (tests, logs).
  int in_flight() const;
  // Principals and apps with a call in flight now (the maps' sizes).
  size_t callers_tracked() const;

 private:
  void Give(const Principal& who);

  const std::string what_;
  const CallerCaps caps_;
  const uint32_t retry_after_s_;
  mutable std::mutex mu_;
  int total_ = 0;
  std::map<Principal, int> by_principal_;  // only non-zero counts
  std::map<std::string, int> by_app_;      // only non-zero counts
};

// "...; try again in N s", the tail every Busy answer ends with.
std::string RetryHint(uint32_t seconds);

}  // namespace costore
