// Quoting untrusted text (digests, origins, names from callers) for error
// messages and logs: bounded in length, control characters escaped, so that a
// hostile caller can neither flood nor forge a log line.
#pragma once

#include <string>
#include <string_view>

namespace costore {

// "\"text\"", cut after `max_bytes` with "...", bytes < 0x20, 0x7f, '"' and
// '\\' written as \xHH.
std::string Quote(std::string_view text, size_t max_bytes = 80);

// True if `text` holds a byte < 0x20 or 0x7f.
bool HasControlCharacter(std::string_view text);

}  // namespace costore
