// Text for humans: sizes, times, digests, aligned tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace costore::cli {

// "0 B", "512 B", "2.2 MiB", "1.5 GiB".
std::string HumanSize(uint64_t bytes);

// Local time "2024-05-01 12:03:04" for microseconds since the epoch; "-"
// for 0 (never).
std::string HumanTime(int64_t usec);

// The first 12 hex digits of "sha256:<hex>"; "*" and malformed text as is.
std::string ShortDigest(std::string_view digest);

// "-" for the empty origin (the app itself).
std::string HumanOrigin(std::string_view origin);

// Columns padded to their widest cell; the last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace costore::cli
