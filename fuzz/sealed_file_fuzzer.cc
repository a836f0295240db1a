// The private-file reader (daemon/crypto/sealed_file.h,
// docs/private-format.md) on a file made of the fuzz bytes, opened with a
// fixed data key. Properties: the header either parses into values the
// format allows or is refused with a message; a chunk either authenticates
// and holds exactly the plaintext the seeds sealed (fuzz/
// make_sealed_seeds.cc) at its position, or is an IOError and the output
// holds nothing of it; a whole file that authenticates hashes to the
// digest its header names. ASan catches any read out of bounds.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/sha256.h"
#include "fuzz/check.h"
#include "fuzz/sealed_fuzz_support.h"

namespace {

using costore::Status;
namespace sealed = costore::sealed;

// The fuzz bytes as a file the reader can pread and fstat.
int FileWith(const uint8_t* data, size_t size) {
  int fd = memfd_create("sealed-fuzz", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  size_t written = 0;
  while (written < size) {
    ssize_t n = write(fd, data + written, size - written);
    FUZZ_CHECK(n > 0);
    written += static_cast<size_t>(n);
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const costore::SecretKey key = costore::fuzz::SealedFuzzKey();

  costore::SealedHeader header;
  Status parsed = costore::ParseHeader(std::span<const uint8_t>(data, size), &header);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.message().empty() && costore::fuzz::IsValidUtf8(parsed.message()));
    return 0;
  }
  FUZZ_CHECK(size >= sealed::kHeaderSize);
  FUZZ_CHECK(header.chunk_size >= sealed::kMinChunkSize && header.chunk_size <= sealed::kMaxChunkSize);
  FUZZ_CHECK((header.chunk_size & (header.chunk_size - 1)) == 0);
  // The header round-trips byte for byte.
  const auto encoded = costore::EncodeHeader(header);
  FUZZ_CHECK(std::equal(encoded.begin(), encoded.end(), data));

  // Expect what the header and length say, as the catalog would for a
  // file it wrote; a length no plaintext seals to must be refused.
  uint64_t plain_size = 0;
  const bool layout_ok = sealed::PlaintextSize(size, header.chunk_size, &plain_size);
  if (layout_ok) FUZZ_CHECK(sealed::SealedSize(plain_size, header.chunk_size) == size);
  costore::SealedReader::Expect expect{header.digest, layout_ok ? plain_size : plain_size + 1, header.cipher};

  const int fd = FileWith(data, size);
  std::unique_ptr<costore::SealedReader> reader;
  Status opened = costore::SealedReader::Open(fd, expect, key, "fuzz file", &reader);
  if (!opened.ok()) {
    close(fd);
    // Refused: a bad layout, or a cipher this machine lacks.
    FUZZ_CHECK(costore::fuzz::IsValidUtf8(opened.message()));
    return 0;
  }
  FUZZ_CHECK(layout_ok && reader->size() == plain_size);

  std::vector<uint8_t> out(reader->chunk_size());
  costore::Sha256 hash;
  bool all_authentic = true;
  for (uint64_t index = 0; index < reader->chunk_count(); ++index) {
    size_t n = 0;
    Status read = reader->ReadChunk(index, out.data(), &n);
    if (!read.ok()) {
      all_authentic = false;
      FUZZ_CHECK(read.code() == costore::Code::kIOError);
      FUZZ_CHECK(costore::fuzz::IsValidUtf8(read.message()));
      continue;
    }
    FUZZ_CHECK(n == reader->ChunkPlainSize(index));
    const uint64_t start = index * reader->chunk_size();
    for (size_t i = 0; i < n; ++i) FUZZ_CHECK(out[i] == costore::fuzz::PlaintextByte(start + i));
    hash.Update(std::as_bytes(std::span<const uint8_t>(out.data(), n)));
  }
  if (all_authentic) FUZZ_CHECK(hash.Finish() == header.digest);
  close(fd);
  return 0;
}
