// LruMap: a map that holds at most `capacity` entries; inserting past that
// evicts the least recently used one (Find and Insert count as use). For
// per-caller bookkeeping that callers can create at will (one entry per
// origin a page claims), so that it never grows without bound.
//
// Not thread-safe: its owner locks.
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <list>
#include <map>
#include <utility>

namespace costore {

template <typename Key, typename Value>
class LruMap {
 public:
  // Called with each entry just before it is evicted.
  using OnEvict = std::function<void(const Key&, const Value&)>;

  explicit LruMap(size_t capacity, OnEvict on_evict = {})
      : capacity_(capacity == 0 ? 1 : capacity), on_evict_(std::move(on_evict)) {}

  // The entry, now the most recently used; null if there is none.
  Value* Find(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // The entry for `key`, made with `value` if there was none (evicting the
  // least recently used one past capacity); *inserted says which.
  Value& FindOrInsert(const Key& key, Value value, bool* inserted = nullptr) {
    if (Value* found = Find(key)) {
      if (inserted != nullptr) *inserted = false;
      return *found;
    }
    if (index_.size() >= capacity_) {
      auto& [old_key, old_value] = order_.back();
      if (on_evict_) on_evict_(old_key, old_value);
      index_.erase(old_key);
      order_.pop_back();
    }
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    if (inserted != nullptr) *inserted = true;
    return order_.front().second;
  }

  void Erase(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Order = std::list<std::pair<Key, Value>>;
  const size_t capacity_;
  OnEvict on_evict_;
  Order order_;  // most recently used first
  std::map<Key, typename Order::iterator> index_;
};

}  // namespace costore
