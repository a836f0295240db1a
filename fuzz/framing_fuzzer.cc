// The native-messaging frame reader (native-host/framing.h) on an arbitrary
// byte stream, with a limit taken from the input so that over-long frames
// are common. Properties: the frames it reports tile the stream exactly
// (each header where the previous frame ended, each payload the bytes after
// its header), a frame is never longer than the limit, the stream ends in
// kEof only at its end and in kTruncated only inside a frame; every
// payload then goes to the request parser, which never throws.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <variant>

#include "fuzz/check.h"
#include "native-host/framing.h"
#include "native-host/protocol.h"

using costore::native_host::Frame;
using costore::native_host::FrameReader;
using costore::native_host::FrameStatus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t limit = 1 + uint32_t{data[0]} * 16;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  int fd = memfd_create("framing-fuzz", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(costore::native_host::WriteAll(fd, stream.data(), stream.size()));
  FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);

  FrameReader reader(fd, limit);
  uint64_t offset = 0;  // where the next header starts
  for (;;) {
    Frame frame = reader.Next();
    const uint64_t left = stream.size() - offset;
    if (frame.status == FrameStatus::kEof) {
      FUZZ_CHECK(left == 0);
      break;
    }
    FUZZ_CHECK(frame.status != FrameStatus::kIoError);
    if (frame.status == FrameStatus::kTruncated) {
      FUZZ_CHECK(left < 4 || 4 + frame.declared_length > left);
      FUZZ_CHECK(frame.payload.empty());
      break;
    }
    FUZZ_CHECK(left >= 4 + frame.declared_length);
    uint32_t header = 0;
    std::memcpy(&header, stream.data() + offset, sizeof header);
    FUZZ_CHECK(frame.declared_length == header);
    switch (frame.status) {
      case FrameStatus::kEmpty: FUZZ_CHECK(header == 0 && frame.payload.empty()); break;
      case FrameStatus::kTooLong:
        FUZZ_CHECK(header > limit && frame.payload.empty());
        FUZZ_CHECK(!costore::native_host::DescribeFrameError(frame).empty());
        break;
      case FrameStatus::kOk: {
        FUZZ_CHECK(header > 0 && header <= limit);
        FUZZ_CHECK(frame.payload == stream.substr(offset + 4, header));
        FUZZ_CHECK(costore::native_host::EncodeFrame(frame.payload) == stream.substr(offset, 4 + header));
        auto parsed = costore::native_host::ParseRequest(frame.payload);
        if (auto* error = std::get_if<costore::native_host::RequestError>(&parsed)) {
          FUZZ_CHECK(!error->message.empty());
        }
        break;
      }
      default: FUZZ_CHECK(false);
    }
    offset += 4 + frame.declared_length;
  }
  close(fd);
  return 0;
}
