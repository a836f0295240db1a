#include "native-host/framing.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace costore::native_host {

int64_t FrameReader::ReadExactly(char* out, size_t size) {
  std::array<char, 64 * 1024> scratch;
  size_t done = 0;
  while (done < size) {
    char* target = out ? out + done : scratch.data();
    size_t want = size - done;
    if (!out && want > scratch.size()) want = scratch.size();
    ssize_t got = ::read(fd_, target, want);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return static_cast<int64_t>(done);
}

Frame FrameReader::Next() {
  Frame frame;
  uint32_t length = 0;
  int64_t got = ReadExactly(reinterpret_cast<char*>(&length), sizeof length);
  if (got < 0) {
    frame.status = FrameStatus::kIoError;
    frame.error_number = errno;
    return frame;
  }
  if (got == 0) {
    frame.status = FrameStatus::kEof;
    return frame;
  }
  if (got < static_cast<int64_t>(sizeof length)) {
    frame.status = FrameStatus::kTruncated;
    return frame;
  }
  frame.declared_length = length;
  if (length == 0) {
    frame.status = FrameStatus::kEmpty;
    return frame;
  }
  if (length > max_length_) {
    // Skip it, so that the next header is read where it starts.
    got = ReadExactly(nullptr, length);
    if (got < 0) {
      frame.status = FrameStatus::kIoError;
      frame.error_number = errno;
    } else if (static_cast<uint64_t>(got) < length) {
      frame.status = FrameStatus::kTruncated;
    } else {
      frame.status = FrameStatus::kTooLong;
    }
    return frame;
  }
  frame.payload.resize(length);
  got = ReadExactly(frame.payload.data(), length);
  if (got < 0) {
    frame.status = FrameStatus::kIoError;
    frame.error_number = errno;
    frame.payload.clear();
  } else if (static_cast<uint64_t>(got) < length) {
    frame.status = FrameStatus::kTruncated;
    frame.payload.clear();
  } else {
    frame.status = FrameStatus::kOk;
  }
  return frame;
}

std::string EncodeFrame(std::string_view payload) {
  uint32_t length = static_cast<uint32_t>(payload.size());
  std::string out(sizeof length + payload.size(), '\0');
  std::memcpy(out.data(), &length, sizeof length);
  std::memcpy(out.data() + sizeof length, payload.data(), payload.size());
  return out;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t put = ::write(fd, data, size);
    if (put < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += put;
    size -= static_cast<size_t>(put);
  }
  return true;
}

bool FrameWriter::Send(const nlohmann::json& message) {
  // Strings from elsewhere (a daemon message) might not be valid UTF-8:
  // replace, never throw.
  std::string text = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxOutgoingFrame) {
    nlohmann::json error = {{"ok", false},
                            {"error", "Failed"},
                            {"message", "the reply would exceed the 1 MiB native messaging limit"}};
    if (message.is_object() && message.contains("id")) error["id"] = message["id"];
    text = error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string frame = EncodeFrame(text);
  std::lock_guard<std::mutex> lock(mu_);
  return WriteAll(fd_, frame.data(), frame.size());
}

std::string DescribeFrameError(const Frame& frame) {
  switch (frame.status) {
    case FrameStatus::kEmpty:
      return "empty message (length 0)";
    case FrameStatus::kTooLong:
      return "message of " + std::to_string(frame.declared_length) + " bytes is longer than the " +
             std::to_string(kMaxIncomingFrame) + " byte limit; skipped";
    case FrameStatus::kTruncated:
      return "the input ended inside a message";
    case FrameStatus::kIoError:
      return std::string("cannot read the input: ") + std::strerror(frame.error_number);
    case FrameStatus::kOk:
    case FrameStatus::kEof:
      break;
  }
  return {};
}

int ReserveStdoutForFrames() {
  int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out < 0) return -1;
  if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    int saved = errno;
    ::close(out);
    errno = saved;
    return -1;
  }
  return out;
}

}  // namespace costore::native_host
