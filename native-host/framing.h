// Native messaging framing (Chrome/Chromium and Firefox): each message is a
// 32-bit length in native byte order followed by that many bytes of UTF-8
// JSON, on stdin (browser -> host) and stdout (host -> browser).
//
// The reader never trusts the length: a frame longer than the limit is read
// and thrown away (so the stream stays in step) and reported; a stream that
// ends inside a frame is reported as truncated. Nothing here throws on bad
// input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace costore::native_host {

// Browser -> host. Chrome allows up to 4 GiB; our messages are requests and,
// for the chunked fallback, base64 chunks of at most kMaxChunkBytes.
inline constexpr uint32_t kMaxIncomingFrame = 8u * 1024 * 1024;
// Host -> browser: Chrome refuses (and kills the host for) a message of more
// than 1 MiB.
inline constexpr uint32_t kMaxOutgoingFrame = 1024u * 1024;
// Raw bytes per chunk of the chunked fallback: 720 KiB is 983,040 base64
// characters, which leaves room for the JSON around them under 1 MiB.
inline constexpr size_t kMaxChunkBytes = 720u * 1024;

enum class FrameStatus {
  kOk,         // payload holds one message
  kEof,        // the stream ended cleanly between frames
  kEmpty,      // a zero-length frame (no JSON in it)
  kTooLong,    // longer than the limit: its bytes were skipped
  kTruncated,  // the stream ended inside a frame (header or payload)
  kIoError,    // read(2) failed
};

struct Frame {
  FrameStatus status = FrameStatus::kEof;
  std::string payload;           // kOk only
  uint64_t declared_length = 0;  // what the header said
  int error_number = 0;          // kIoError: errno
};

// Reads frames from a descriptor, coping with short reads and EINTR.
class FrameReader {
 public:
  explicit FrameReader(int fd, uint32_t max_length = kMaxIncomingFrame)
      : fd_(fd), max_length_(max_length) {}
  Frame Next();

 private:
  // Reads exactly `size` bytes (into `out` unless null); returns how many
  // arrived before EOF, or -1 on error.
  int64_t ReadExactly(char* out, size_t size);
  int fd_;
  uint32_t max_length_;
};

// The 4-byte header and the payload, as one string.
std::string EncodeFrame(std::string_view payload);

// Writes all of `data`, retrying short writes and EINTR. False on error.
bool WriteAll(int fd, const char* data, size_t size);

// Serializes messages to one descriptor from any thread, one whole frame at
// a time. A message that would be longer than kMaxOutgoingFrame is never
// sent: an error reply with the same id goes instead.
class FrameWriter {
 public:
  explicit FrameWriter(int fd) : fd_(fd) {}
  // False when the descriptor is gone (the browser closed the pipe).
  bool Send(const nlohmann::json& message);

 private:
  std::mutex mu_;
  int fd_;
};

// "FrameStatus::kTooLong" -> a sentence for the error reply.
std::string DescribeFrameError(const Frame& frame);

// Native messaging's stdout carries frames only: returns a close-on-exec
// descriptor (>= 3, so never one of the standard three) of the current
// stdout for the frames and points fd 1 at stderr, so that nothing else (a
// library's stray print, a child process) can write into the stream.
// -1 with errno set on failure.
int ReserveStdoutForFrames();

}  // namespace costore::native_host
