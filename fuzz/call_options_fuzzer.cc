// The a{sv} options of Store, Open, Collect and Verify
// (daemon/dbus/call_options.h), from a dictionary built out of the fuzz
// input: keys from the known set and random ones, values of random D-Bus
// types. Properties: a key of the expected type is read exactly, any other
// type is an InvalidArgument naming the key (valid UTF-8), unknown keys
// change nothing, and nothing throws.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/dbus/call_options.h"
#include "fuzz/check.h"

namespace {

using costore::CallOptions;
using costore::Status;

constexpr std::array<const char*, 9> kKnownKeys = {"size",       "name",       "private", "stream", "target-size",
                                                   "unused-for", "dry-run",    "digests", "digest"};

// A string D-Bus can carry: sd-bus refuses to marshal invalid UTF-8, a
// NUL or a noncharacter (U+FFFE, ...), so no such option ever reaches the
// daemon; those become "".
std::string BusString(FuzzedDataProvider& in, size_t max_length) {
  std::string text = in.ConsumeRandomLengthString(max_length);
  try {
    sdbus::Variant probe(text);
  } catch (const sdbus::Error&) {
    return "";
  }
  return text;
}

sdbus::Variant RandomVariant(FuzzedDataProvider& in, int depth) {
  switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 0: return sdbus::Variant(BusString(in, 64));
    case 1: return sdbus::Variant(in.ConsumeIntegral<uint64_t>());
    case 2: return sdbus::Variant(in.ConsumeIntegral<uint32_t>());
    case 3: return sdbus::Variant(in.ConsumeBool());
    case 4: {
      std::vector<std::string> strings(in.ConsumeIntegralInRange<size_t>(0, 4));
      for (auto& s : strings) s = BusString(in, 80);
      return sdbus::Variant(strings);
    }
    case 5: return sdbus::Variant(in.ConsumeIntegral<int64_t>());
    case 6: return sdbus::Variant(in.ConsumeIntegral<int32_t>());
    case 7: return sdbus::Variant(in.ConsumeFloatingPoint<double>());
    case 8: return sdbus::Variant(in.ConsumeIntegral<uint8_t>());
    default:  // a variant in a variant, or a nested dictionary
      if (depth >= 2) return sdbus::Variant(in.ConsumeIntegral<int16_t>());
      if (in.ConsumeBool()) return sdbus::Variant(RandomVariant(in, depth + 1));
      std::map<std::string, sdbus::Variant> nested;
      nested.emplace(BusString(in, 16), RandomVariant(in, depth + 1));
      return sdbus::Variant(nested);
  }
}

// After a successful parse, option `key` of type T holds exactly what was
// sent, or its default when absent; a present key of another type would
// have been refused.
template <typename T>
void CheckOption(const CallOptions& options, const char* key, const Status& parsed, const T& got,
                 const T& absent) {
  if (!parsed.ok()) return;
  auto it = options.find(key);
  if (it == options.end()) {
    FUZZ_CHECK(got == absent);
    return;
  }
  FUZZ_CHECK(it->second.containsValueOfType<T>());
  FUZZ_CHECK(got == it->second.get<T>());
}

void CheckError(const Status& s) {
  if (s.ok()) return;
  FUZZ_CHECK(s.code() == costore::Code::kInvalidArgument);
  FUZZ_CHECK(costore::fuzz::StartsWith(s.message(), "option \""));
  FUZZ_CHECK(s.message().find("must be of D-Bus type") != std::string::npos);
  FUZZ_CHECK(costore::fuzz::IsValidUtf8(s.message()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  CallOptions options;
  const size_t count = in.ConsumeIntegralInRange<size_t>(0, 8);
  for (size_t i = 0; i < count && in.remaining_bytes() > 0; ++i) {
    std::string key = in.ConsumeBool() ? kKnownKeys[in.ConsumeIntegralInRange<size_t>(0, kKnownKeys.size() - 1)]
                                       : BusString(in, 24);
    options.insert_or_assign(std::move(key), RandomVariant(in, 0));
  }

  costore::StoreRequest store;
  Status s = costore::ParseStoreOptions(options, &store);
  CheckError(s);
  if (s.ok()) {
    auto size_it = options.find("size");
    FUZZ_CHECK(store.size.has_value() == (size_it != options.end()));
    if (store.size) FUZZ_CHECK(*store.size == size_it->second.get<uint64_t>());
    CheckOption<std::string>(options, "name", s, store.name, "");
    CheckOption<bool>(options, "private", s, store.is_private, false);
  } else {
    // A refusal names a key that is present and of another type.
    bool named = false;
    for (const char* key : {"size", "name", "private"}) {
      if (s.message().find("\"" + std::string(key) + "\"") != std::string::npos) named = options.count(key) > 0;
    }
    FUZZ_CHECK(named);
  }

  costore::OpenOptions open;
  s = costore::ParseOpenOptions(options, &open);
  CheckError(s);
  CheckOption<bool>(options, "stream", s, open.stream, false);

  costore::CollectOptions collect;
  s = costore::ParseCollectOptions(options, &collect);
  CheckError(s);
  if (s.ok()) {
    FUZZ_CHECK(collect.target_size.has_value() == (options.count("target-size") > 0));
    FUZZ_CHECK(collect.unused_for_s.has_value() == (options.count("unused-for") > 0));
    CheckOption<bool>(options, "dry-run", s, collect.dry_run, false);
  }

  std::vector<std::string> digests;
  s = costore::ParseVerifyOptions(options, &digests);
  CheckError(s);
  CheckOption<std::vector<std::string>>(options, "digests", s, digests, {});

  // Unknown keys are ignored: the same options without them parse alike.
  CallOptions known;
  for (const char* key : kKnownKeys) {
    if (auto it = options.find(key); it != options.end()) known.insert(*it);
  }
  costore::StoreRequest store_known;
  Status s_known = costore::ParseStoreOptions(known, &store_known);
  FUZZ_CHECK(s_known.ok() == costore::ParseStoreOptions(options, &store).ok());
  if (s_known.ok()) FUZZ_CHECK(store_known.size == store.size && store_known.name == store.name);
  return 0;
}
