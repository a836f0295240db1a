// Quoting untrusted text (digests, origins, names from callers) for error
// messages and logs: bounded in length, control characters escaped, so that a
// hostile caller can neither flood nor forge a log line.
#pragma once

#include <string>
#include <string_view>

namespace costore {

// "\"text\"", cut after at most `max_bytes` with "...", never inside a
// UTF-8 character; bytes < 0x20, 0x7f, '"', '\\' and bytes that are not
// UTF-8 written as \xHH. The result is always valid UTF-8: D-Bus refuses
// to send a string that is not, so an error reply quoting a hostile
// argument would otherwise never be sent (the caller would wait forever).
std::string Quote(std::string_view text, size_t max_bytes = 80);

// `text` with every byte that is not part of a valid UTF-8 character
// written as \xHH: what any message bound for D-Bus goes through.
std::string ValidUtf8(std::string_view text);

// The length of the UTF-8 character at text[i] (1 to 4), or 0 if the bytes
// there are not one (overlong, a surrogate, past U+10FFFF, cut short).
size_t Utf8SequenceLength(std::string_view text, size_t i);

// True if `text` holds a byte < 0x20 or 0x7f.
bool HasControlCharacter(std::string_view text);

}  // namespace costore
