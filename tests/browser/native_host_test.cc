// The native host without a browser or a daemon: framing, message parsing
// and validation, and the request handlers over a fake store.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "native-host/framing.h"
#include "native-host/host.h"
#include "native-host/protocol.h"

namespace costore::native_host {
namespace {

using nlohmann::json;

std::string Header(uint32_t length) {
  std::string header(4, '\0');
  std::memcpy(header.data(), &length, 4);
  return header;
}

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    read_fd = fds[0];
    write_fd = fds[1];
    ::fcntl(write_fd, F_SETPIPE_SZ, 1 << 20);  // replies wait here until read
  }
  ~Pipe() {
    CloseWrite();
    if (read_fd >= 0) ::close(read_fd);
  }
  void CloseWrite() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }
};

// Writes `data` from another thread in pieces of `piece` bytes, pausing
// between them, then closes the pipe.
std::thread Trickle(Pipe* pipe, std::string data, size_t piece) {
  return std::thread([pipe, data = std::move(data), piece] {
    for (size_t at = 0; at < data.size(); at += piece) {
      size_t n = std::min(piece, data.size() - at);
      ASSERT_TRUE(WriteAll(pipe->write_fd, data.data() + at, n));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    pipe->CloseWrite();
  });
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (unsigned int i = 0; i < length; ++i) {
    text += kHex[digest[i] >> 4];
    text += kHex[digest[i] & 15];
  }
  return text;
}

// --- framing ----------------------------------------------------------------

TEST(Framing, ReadsFramesDeliveredByteByByte) {
  Pipe pipe;
  std::string first = R"({"id":1,"op":"hello"})";
  std::string second(3000, 'x');
  std::thread writer = Trickle(&pipe, EncodeFrame(first) + EncodeFrame(second), 1);
  FrameReader reader(pipe.read_fd);
  Frame a = reader.Next();
  ASSERT_EQ(a.status, FrameStatus::kOk);
  EXPECT_EQ(a.payload, first);
  Frame b = reader.Next();
  ASSERT_EQ(b.status, FrameStatus::kOk);
  EXPECT_EQ(b.payload, second);
  EXPECT_EQ(reader.Next().status, FrameStatus::kEof);
  writer.join();
}

TEST(Framing, ReadsFramesInOddPieces) {
  Pipe pipe;
  std::string data;
  for (int i = 0; i < 50; ++i) data += EncodeFrame("{\"id\":" + std::to_string(i) + ",\"op\":\"hello\"}");
  std::thread writer = Trickle(&pipe, data, 7);
  FrameReader reader(pipe.read_fd);
  for (int i = 0; i < 50; ++i) {
    Frame frame = reader.Next();
    ASSERT_EQ(frame.status, FrameStatus::kOk) << i;
    EXPECT_EQ(json::parse(frame.payload)["id"], i);
  }
  EXPECT_EQ(reader.Next().status, FrameStatus::kEof);
  writer.join();
}

TEST(Framing, ZeroLengthIsReportedAndTheStreamGoesOn) {
  Pipe pipe;
  std::thread writer = Trickle(&pipe, Header(0) + EncodeFrame("{}"), 64);
  FrameReader reader(pipe.read_fd);
  Frame empty = reader.Next();
  EXPECT_EQ(empty.status, FrameStatus::kEmpty);
  EXPECT_FALSE(DescribeFrameError(empty).empty());
  Frame next = reader.Next();
  EXPECT_EQ(next.status, FrameStatus::kOk);
  EXPECT_EQ(next.payload, "{}");
  writer.join();
}

TEST(Framing, OverLongFrameIsSkippedWithoutLosingStep) {
  Pipe pipe;
  const uint32_t limit = 1024;
  std::string data = Header(5000) + std::string(5000, 'y') + EncodeFrame(R"({"id":2,"op":"hello"})");
  std::thread writer = Trickle(&pipe, data, 333);
  FrameReader reader(pipe.read_fd, limit);
  Frame skipped = reader.Next();
  EXPECT_EQ(skipped.status, FrameStatus::kTooLong);
  EXPECT_EQ(skipped.declared_length, 5000u);
  EXPECT_TRUE(skipped.payload.empty());
  Frame next = reader.Next();
  ASSERT_EQ(next.status, FrameStatus::kOk);
  EXPECT_EQ(json::parse(next.payload)["id"], 2);
  writer.join();
}

TEST(Framing, HugeDeclaredLengthNeitherAllocatesNorHangs) {
  Pipe pipe;
  std::thread writer = Trickle(&pipe, Header(0xFFFFFFFFu) + "garbage", 64);
  FrameReader reader(pipe.read_fd);  // 8 MiB default limit
  Frame frame = reader.Next();
  EXPECT_EQ(frame.status, FrameStatus::kTruncated);
  EXPECT_EQ(frame.declared_length, 0xFFFFFFFFu);
  writer.join();
}

TEST(Framing, TruncatedHeaderAndPayload) {
  {
    Pipe pipe;
    std::thread writer = Trickle(&pipe, std::string("\x05\x00", 2), 1);
    FrameReader reader(pipe.read_fd);
    EXPECT_EQ(reader.Next().status, FrameStatus::kTruncated);
    writer.join();
  }
  {
    Pipe pipe;
    std::thread writer = Trickle(&pipe, Header(10) + "abc", 1);
    FrameReader reader(pipe.read_fd);
    EXPECT_EQ(reader.Next().status, FrameStatus::kTruncated);
    writer.join();
  }
}

TEST(Framing, EncodeIsNativeEndianLengthThenPayload) {
  std::string frame = EncodeFrame("hello");
  ASSERT_EQ(frame.size(), 9u);
  uint32_t length = 0;
  std::memcpy(&length, frame.data(), 4);
  EXPECT_EQ(length, 5u);
  EXPECT_EQ(frame.substr(4), "hello");
}

TEST(Framing, WriterNeverSendsMoreThanOneMebibyte) {
  Pipe pipe;
  FrameWriter writer(pipe.write_fd);
  std::string big(kMaxOutgoingFrame, 'z');
  std::thread sender([&] {
    EXPECT_TRUE(writer.Send(json{{"id", 7}, {"ok", true}, {"data", big}}));
    EXPECT_TRUE(writer.Send(json{{"id", 8}, {"ok", true}, {"bad", std::string("\xff\xfe", 2)}}));
    pipe.CloseWrite();
  });
  FrameReader reader(pipe.read_fd, 16 * 1024 * 1024);
  Frame first = reader.Next();
  ASSERT_EQ(first.status, FrameStatus::kOk);
  EXPECT_LE(first.payload.size(), kMaxOutgoingFrame);
  json reply = json::parse(first.payload);
  EXPECT_EQ(reply["id"], 7);
  EXPECT_EQ(reply["ok"], false);
  Frame second = reader.Next();  // invalid UTF-8 replaced, not thrown
  ASSERT_EQ(second.status, FrameStatus::kOk);
  EXPECT_EQ(json::parse(second.payload)["id"], 8);
  sender.join();
}

// --- parsing and validation -----------------------------------------------

TEST(Protocol, InvalidJsonAndUtf8AreErrors) {
  for (std::string bad : {std::string("{"), std::string("not json"), std::string("{\"id\":1,\"op\":\"hello\"} x"),
                          std::string("{\"id\":1,\"op\":\"\xff\"}"), std::string("\0\0", 2)}) {
    auto parsed = ParseRequest(bad);
    ASSERT_TRUE(std::holds_alternative<RequestError>(parsed)) << bad;
    EXPECT_TRUE(std::get<RequestError>(parsed).id.is_null());
  }
  // A number beyond a double is an error reply, not an exception that ends
  // the host (found by fuzz/protocol_fuzzer).
  auto huge = ParseRequest(R"({"id":1,"op":"open","size":1e400})");
  ASSERT_TRUE(std::holds_alternative<RequestError>(huge));
  EXPECT_EQ(std::get<RequestError>(huge).message, "the message is not valid JSON (a number is out of range)");
}

TEST(Protocol, WrongTypesAreErrors) {
  for (std::string bad : {R"([1,2])", R"("text")", R"(42)", R"(null)", R"({"op":"hello"})",
                          R"({"id":true,"op":"hello"})", R"({"id":1.5,"op":"hello"})", R"({"id":-1,"op":"hello"})",
                          R"({"id":{},"op":"hello"})", R"({"id":"has space","op":"hello"})",
                          R"({"id":9007199254740993,"op":"hello"})"}) {
    auto parsed = ParseRequest(bad);
    ASSERT_TRUE(std::holds_alternative<RequestError>(parsed)) << bad;
  }
  auto no_op = ParseRequest(R"({"id":3})");
  ASSERT_TRUE(std::holds_alternative<RequestError>(no_op));
  EXPECT_EQ(std::get<RequestError>(no_op).id, 3);  // the id is echoed when usable
  auto op_number = ParseRequest(R"({"id":"a-1","op":5})");
  ASSERT_TRUE(std::holds_alternative<RequestError>(op_number));
  EXPECT_EQ(std::get<RequestError>(op_number).id, "a-1");

  auto good = ParseRequest(R"({"id":12,"op":"open","origin":"https://a.example","digest":"x"})");
  ASSERT_TRUE(std::holds_alternative<Request>(good));
  const Request& request = std::get<Request>(good);
  std::string value, error;
  uint64_t number = 0;
  EXPECT_FALSE(GetUint(request.body, "origin", &number, &error));
  EXPECT_NE(error.find("origin"), std::string::npos);
  EXPECT_FALSE(GetString(request.body, "missing", &value, &error));
  EXPECT_TRUE(GetString(request.body, "missing", &value, &error, 10, false));
  EXPECT_FALSE(GetString(json{{"s", 1}}, "s", &value, &error));
  EXPECT_FALSE(GetString(json{{"s", std::string(20, 'a')}}, "s", &value, &error, 10));
  EXPECT_FALSE(GetUint(json{{"n", -1}}, "n", &number, &error));
  EXPECT_FALSE(GetUint(json{{"n", 1.5}}, "n", &number, &error));
  EXPECT_FALSE(GetUint(json{{"n", "1"}}, "n", &number, &error));
  EXPECT_TRUE(GetUint(json{{"n", 3.0}}, "n", &number, &error));
  EXPECT_EQ(number, 3u);
}

// The host takes origins by the daemon's rule (daemon/engine/origin.h), in
// canonical form: spellings of one site are one site.
TEST(Protocol, OriginsAreTakenInCanonicalForm) {
  const std::pair<const char*, const char*> good[] = {
      {"https://huggingface.co", "https://huggingface.co"},
      {"http://127.0.0.1:8001", "http://127.0.0.1:8001"},
      {"http://localhost:8002", "http://localhost:8002"},
      {"https://a-b.example.org:8443", "https://a-b.example.org:8443"},
      {"http://[::1]:9000", "http://[::1]:9000"},
      {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
      {"https://Example.com", "https://example.com"},
      {"HTTPS://EXAMPLE.COM:443", "https://example.com"},
      {"https://example.com:0443", "https://example.com"},
      {"https://example.com:08080", "https://example.com:8080"},
      {"http://LOCALHOST:80", "http://localhost"},
      {"http://app.localhost:3000", "http://app.localhost:3000"},
      {"http://[0:0::1]", "http://[::1]"},
  };
  for (const auto& [given, canonical] : good) {
    std::string origin, error;
    EXPECT_TRUE(GetOrigin(json{{"origin", given}}, &origin, &error)) << given << ": " << error;
    EXPECT_EQ(origin, canonical) << given;
  }
  for (const char* bad : {"", "null", "https://", "https://example.com/", "https://example.com/path",
                          "https://example.com:0", "https://example.com:65536", "ftp://example.com",
                          "chrome-extension://abc", "moz-extension://x", "ws://x", "file:///etc/passwd",
                          "https://exa mple.com", "https://-a.example", "https://a..example", "https://a_b.c",
                          "https://0x7f.1", "http://127.1", "https://user@example.com", "https://[::g]",
                          "https://[::1", "https://example.com\n", "javascript:alert(1)", "http://example.com",
                          "http://example.com:8080", "http://192.168.1.1", "http://[::2]:1",
                          "http://[::ffff:127.0.0.1]", "http://localhost.example.com", "http://xlocalhost"}) {
    std::string origin, error;
    EXPECT_FALSE(GetOrigin(json{{"origin", bad}}, &origin, &error)) << bad;
    EXPECT_NE(error.find("\"origin\""), std::string::npos) << error;
  }
  std::string origin, error;
  EXPECT_FALSE(GetOrigin(json{{"origin", 7}}, &origin, &error));
  EXPECT_FALSE(GetOrigin(json::object(), &origin, &error));
  EXPECT_FALSE(GetOrigin(json{{"origin", "https://a_b.c"}}, &origin, &error));
  EXPECT_NE(error.find("\"https://a_b.c\""), std::string::npos) << error;  // names the origin
}

TEST(Protocol, Digests) {
  std::string hex = "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49";
  EXPECT_EQ(ParseDigest(hex), "sha256:" + hex);
  EXPECT_EQ(ParseDigest("sha256:" + hex), "sha256:" + hex);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(ParseDigest(upper), "sha256:" + hex);
  EXPECT_FALSE(ParseDigest(hex.substr(1)));
  EXPECT_FALSE(ParseDigest(hex + "0"));
  EXPECT_FALSE(ParseDigest("sha512:" + hex));
  EXPECT_FALSE(ParseDigest(hex.substr(0, 63) + "g"));
}

TEST(Protocol, Base64) {
  std::mt19937 rng(1);
  for (size_t size : {0, 1, 2, 3, 4, 5, 100, 1000, 65537}) {
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    std::string encoded = Base64Encode(reinterpret_cast<const unsigned char*>(data.data()), data.size());
    EXPECT_EQ(encoded.size() % 4, 0u);
    EXPECT_EQ(Base64Decode(encoded), data) << size;
  }
  EXPECT_EQ(Base64Decode("aGVsbG8="), "hello");
  for (const char* bad : {"a", "ab", "abc", "a===", "ab=c", "aGVsbG8=aGVs", "aGVs bG8=", "aGVsbG9=", "****"}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;
  }
}

// --- the handlers, over a fake store --------------------------------------

class FakeBackend : public Backend {
 public:
  std::map<std::string, std::string> files;  // digest -> bytes (readable by everyone)
  std::mutex mu;

  std::vector<std::string> origins;  // as the host passed them on

  client::OpenedFile Open(const std::string& digest, const std::string& origin) override {
    std::string bytes;
    {
      std::lock_guard<std::mutex> lock(mu);
      origins.push_back(origin);
      auto it = files.find(digest);
      if (it == files.end()) throw client::Error(client::ErrorCode::kNotFound, "no file " + digest + " here");
      bytes = it->second;
    }
    char path[] = "/tmp/costore-native-host-test-XXXXXX";
    int fd = ::mkstemp(path);
    ::unlink(path);
    WriteAll(fd, bytes.data(), bytes.size());
    ::lseek(fd, 0, SEEK_SET);
    client::OpenedFile file;
    file.fd = client::UniqueFd(fd);
    file.info.digest = digest;
    file.info.size = bytes.size();
    return file;
  }

  client::FileInfo Store(int fd, const std::string& digest, const std::string& origin,
                         std::optional<uint64_t> size) override {
    if (origin.empty()) throw client::Error(client::ErrorCode::kInvalidArgument, "origin");
    std::string bytes;
    char buffer[65536];
    for (;;) {
      ssize_t got = ::read(fd, buffer, sizeof buffer);
      if (got <= 0) break;
      bytes.append(buffer, static_cast<size_t>(got));
    }
    std::string arrived = "sha256:" + Sha256Hex(bytes);
    if (arrived != digest || (size && *size != bytes.size())) {
      throw client::Error(client::ErrorCode::kDigestMismatch, "arrived " + arrived);
    }
    std::lock_guard<std::mutex> lock(mu);
    origins.push_back(origin);
    files[digest] = bytes;
    return {digest, bytes.size(), "", 0};
  }

  std::vector<SiteFile> ListStoredBy(const std::string& origin) override {
    std::lock_guard<std::mutex> lock(mu);
    origins.push_back(origin);
    std::vector<SiteFile> out;
    for (const auto& [digest, bytes] : files) out.push_back({digest, bytes.size(), "", 0});
    return out;
  }
};

class HostTest : public ::testing::Test {
 protected:
  HostTest() : writer_(sink_.write_fd) {
    Host::Options options;
    options.http = false;
    host_ = std::make_unique<Host>(&backend_, &writer_, options);
  }

  json Call(json request) {
    request["id"] = 1;
    auto parsed = ParseRequest(request.dump());
    EXPECT_TRUE(std::holds_alternative<Request>(parsed));
    return host_->Dispatch(std::get<Request>(parsed));
  }

  FakeBackend backend_;
  Pipe sink_;
  FrameWriter writer_;
  std::unique_ptr<Host> host_;
};

TEST_F(HostTest, MalformedMessagesGetErrorRepliesNeverACrash) {
  std::vector<std::string> bad = {"", "{", "[]", "{\"id\":1}", "{\"id\":1,\"op\":\"nope\"}",
                                  R"({"id":1,"op":"open"})", R"({"id":1,"op":"open","origin":5,"digest":"x"})",
                                  R"({"id":1,"op":"open","origin":"null","digest":"x"})",
                                  R"({"id":1,"op":"read","transfer":[],"offset":0})",
                                  R"({"id":1,"op":"write","transfer":"x","offset":0,"data":"!"})",
                                  R"({"id":1,"op":"create","origin":"https://a.example","digest":"00","size":-4})"};
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string noise(static_cast<size_t>(rng() % 64), '\0');
    for (char& c : noise) c = static_cast<char>(rng());
    bad.push_back(noise);
  }
  for (const std::string& payload : bad) host_->HandleMessage(payload);
  Frame empty;
  empty.status = FrameStatus::kEmpty;
  host_->HandleFrameError(empty);
  host_.reset();  // waits for every reply
  sink_.CloseWrite();
  FrameReader reader(sink_.read_fd);
  size_t replies = 0;
  for (Frame frame = reader.Next(); frame.status == FrameStatus::kOk; frame = reader.Next()) {
    json reply = json::parse(frame.payload);
    EXPECT_EQ(reply["ok"], false) << frame.payload;
    EXPECT_TRUE(reply["error"].is_string());
    ++replies;
  }
  EXPECT_EQ(replies, bad.size() + 1);
}

// Bytes that are not UTF-8 inside a frame's JSON (a stray byte, a
// character cut short, an overlong form, a UTF-16 surrogate, past
// U+10FFFF) get a JSON error reply that says so, and the reply itself is
// valid UTF-8 (Chrome drops the host otherwise).
TEST_F(HostTest, InvalidUtf8InAFrameGetsAnErrorReplyNamingIt) {
  const std::vector<std::string> bad_bytes = {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                              "\xe6\x97", "\x80\x80"};
  std::vector<std::string> payloads;
  for (const std::string& bad : bad_bytes) {
    payloads.push_back(R"({"id":1,"op":"open","origin":"https://a)" + bad + R"(.example","digest":"x"})");
    payloads.push_back(R"({"id":2,"op":"open","origin":"https://a.example","digest":"sha256:)" + bad + R"("})");
    payloads.push_back(R"({"id":3,"op":"hello",")" + bad + R"(":1})");
  }
  for (const std::string& payload : payloads) host_->HandleMessage(payload);
  host_.reset();  // waits for every reply
  sink_.CloseWrite();
  FrameReader reader(sink_.read_fd);
  size_t replies = 0;
  for (Frame frame = reader.Next(); frame.status == FrameStatus::kOk; frame = reader.Next()) {
    json reply = json::parse(frame.payload);  // throws on a reply that is not UTF-8
    EXPECT_EQ(reply["ok"], false) << frame.payload;
    EXPECT_EQ(reply["message"].get<std::string>().rfind("the message is not valid UTF-8 (at byte ", 0), 0u)
        << frame.payload;
    ++replies;
  }
  EXPECT_EQ(replies, payloads.size());
}

TEST_F(HostTest, OpenRefusesBadOriginsAndDigests) {
  std::string hex(64, 'a');
  EXPECT_EQ(Call({{"op", "open"}, {"origin", "null"}, {"digest", hex}})["error"], "InvalidArgument");
  EXPECT_EQ(Call({{"op", "open"}, {"origin", "https://a.example/x"}, {"digest", hex}})["error"], "InvalidArgument");
  EXPECT_EQ(Call({{"op", "open"}, {"origin", "https://a.example"}, {"digest", "abc"}})["error"], "InvalidArgument");
  EXPECT_EQ(Call({{"op", "open"}, {"origin", "https://a.example"}, {"digest", 12}})["error"], "InvalidArgument");
  EXPECT_EQ(Call({{"op", "list"}, {"origin", "chrome-extension://x"}})["error"], "InvalidArgument");
}

TEST_F(HostTest, SpellingsOfASiteAreOneSite) {
  std::string data = "spelled bytes";
  std::string hex = Sha256Hex(data);
  json created = Call({{"op", "create"}, {"origin", "HTTPS://A.Example:443"}, {"digest", hex}});
  ASSERT_EQ(created["ok"], true) << created.dump();
  // The chunk operations of the transfer accept any spelling of its site...
  ASSERT_EQ(Call({{"op", "write"}, {"origin", "https://a.example"}, {"transfer", created["transfer"]}, {"offset", 0},
                  {"data", Base64Encode(reinterpret_cast<const unsigned char*>(data.data()), data.size())}})["ok"],
            true);
  json finished = Call({{"op", "finish"}, {"origin", "https://a.EXAMPLE:0443"}, {"transfer", created["transfer"]}});
  ASSERT_EQ(finished["ok"], true) << finished.dump();
  EXPECT_EQ(Call({{"op", "list"}, {"origin", "https://A.example"}})["ok"], true);
  EXPECT_EQ(Call({{"op", "open"}, {"origin", "HTTPS://a.example"}, {"digest", hex}})["ok"], true);
  // ... and the store is asked in the canonical form only.
  std::lock_guard<std::mutex> lock(backend_.mu);
  ASSERT_EQ(backend_.origins.size(), 3u);
  for (const std::string& origin : backend_.origins) EXPECT_EQ(origin, "https://a.example");
}

TEST_F(HostTest, WhatIsNoSecureOriginIsRefusedByName) {
  std::string hex(64, 'a');
  for (const std::string origin : {"https://0x7f.1", "https://a_b.c", "ws://x", "moz-extension://x"}) {
    for (const char* op : {"open", "create"}) {
      json reply = Call({{"op", op}, {"origin", origin}, {"digest", hex}});
      EXPECT_EQ(reply["error"], "InvalidArgument") << op << " " << origin;
      EXPECT_NE(reply["message"].get<std::string>().find("\"" + origin + "\""), std::string::npos) << reply.dump();
    }
    EXPECT_EQ(Call({{"op", "list"}, {"origin", origin}})["error"], "InvalidArgument") << origin;
  }
}

TEST_F(HostTest, NonSecureOriginsAreRefused) {
  std::string hex(64, 'a');
  for (const char* origin : {"http://example.com", "http://example.com:8001", "http://192.168.0.2:8002"}) {
    EXPECT_EQ(Call({{"op", "open"}, {"origin", origin}, {"digest", hex}})["error"], "InvalidArgument") << origin;
    EXPECT_EQ(Call({{"op", "create"}, {"origin", origin}, {"digest", hex}})["error"], "InvalidArgument") << origin;
    EXPECT_EQ(Call({{"op", "list"}, {"origin", origin}})["error"], "InvalidArgument") << origin;
  }
  for (const char* origin : {"http://127.0.0.1:8001", "http://localhost:8002", "http://[::1]:1", "https://x"}) {
    EXPECT_EQ(Call({{"op", "open"}, {"origin", origin}, {"digest", hex}})["error"], "NotFound") << origin;
    EXPECT_EQ(Call({{"op", "create"}, {"origin", origin}, {"digest", hex}})["ok"], true) << origin;
    EXPECT_EQ(Call({{"op", "list"}, {"origin", origin}})["ok"], true) << origin;
  }
}

TEST_F(HostTest, AMissIsNotFoundInFixedWords) {
  json reply = Call({{"op", "open"}, {"origin", "https://a.example"}, {"digest", std::string(64, 'b')}});
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["error"], "NotFound");
  EXPECT_EQ(reply["message"], "not found");  // not the daemon's words
}

TEST_F(HostTest, ChunkedUploadThenChunkedRead) {
  std::string data(2 * kMaxChunkBytes + 12345, '\0');
  std::mt19937 rng(3);
  for (char& c : data) c = static_cast<char>(rng());
  std::string hex = Sha256Hex(data);

  json created = Call({{"op", "create"}, {"origin", "https://a.example"}, {"digest", hex}, {"size", data.size()}});
  ASSERT_EQ(created["ok"], true) << created;
  EXPECT_FALSE(created.contains("url"));  // no loopback endpoint in this host
  std::string transfer = created["transfer"];
  for (size_t at = 0; at < data.size(); at += kMaxChunkBytes) {
    size_t n = std::min(kMaxChunkBytes, data.size() - at);
    json wrote = Call({{"op", "write"},
                       {"origin", "https://a.example"},
                       {"transfer", transfer},
                       {"offset", at},
                       {"data", Base64Encode(reinterpret_cast<const unsigned char*>(data.data() + at), n)}});
    ASSERT_EQ(wrote["ok"], true) << wrote;
  }
  json finished = Call({{"op", "finish"}, {"origin", "https://a.example"}, {"transfer", transfer}});
  ASSERT_EQ(finished["ok"], true) << finished;
  EXPECT_EQ(finished["digest"], "sha256:" + hex);
  EXPECT_EQ(Call({{"op", "finish"}, {"origin", "https://a.example"}, {"transfer", transfer}})["error"],
            "Gone");  // once

  json opened = Call({{"op", "open"}, {"origin", "https://b.example"}, {"digest", hex}});
  ASSERT_EQ(opened["ok"], true) << opened;
  EXPECT_EQ(opened["size"], data.size());
  // Another origin cannot use the transfer.
  EXPECT_EQ(Call({{"op", "read"}, {"origin", "https://a.example"}, {"transfer", opened["transfer"]}, {"offset", 0}})
                ["error"],
            "Gone");
  std::string read;
  for (bool eof = false; !eof;) {
    json chunk = Call({{"op", "read"},
                       {"origin", "https://b.example"},
                       {"transfer", opened["transfer"]},
                       {"offset", read.size()}});
    ASSERT_EQ(chunk["ok"], true) << chunk;
    EXPECT_LE(chunk.dump().size(), kMaxOutgoingFrame);
    read += *Base64Decode(chunk["data"].get<std::string>());
    eof = chunk["eof"];
  }
  EXPECT_EQ(read, data);
  EXPECT_EQ(Call({{"op", "read"}, {"origin", "https://b.example"}, {"transfer", opened["transfer"]}, {"offset", 0}})
                ["error"],
            "Gone");
}

TEST_F(HostTest, WrongBytesAreDigestMismatchAndStoreNothing) {
  std::string hex = Sha256Hex("the right bytes");
  json created = Call({{"op", "create"}, {"origin", "https://a.example"}, {"digest", hex}});
  std::string wrong = "the wrong bytes";
  Call({{"op", "write"},
        {"origin", "https://a.example"},
        {"transfer", created["transfer"]},
        {"offset", 0},
        {"data", Base64Encode(reinterpret_cast<const unsigned char*>(wrong.data()), wrong.size())}});
  json finished = Call({{"op", "finish"}, {"origin", "https://a.example"}, {"transfer", created["transfer"]}});
  EXPECT_EQ(finished["ok"], false);
  EXPECT_EQ(finished["error"], "DigestMismatch");
  EXPECT_TRUE(backend_.files.empty());
}

TEST_F(HostTest, OutOfOrderChunksAbortTheUpload) {
  std::string hex = Sha256Hex("abcdef");
  json created = Call({{"op", "create"}, {"origin", "https://a.example"}, {"digest", hex}});
  const json site = {{"origin", "https://a.example"}, {"transfer", created["transfer"]}};
  json first = site, second = site, finish = site;
  first.update({{"op", "write"}, {"offset", 0}, {"data", "YWJj"}});
  second.update({{"op", "write"}, {"offset", 5}, {"data", "ZGVm"}});
  finish.update({{"op", "finish"}});
  EXPECT_EQ(Call(first)["ok"], true);
  EXPECT_EQ(Call(second)["error"], "InvalidArgument");
  EXPECT_EQ(Call(finish)["error"], "Gone");
  EXPECT_TRUE(backend_.files.empty());
}

// --- limits per site ---------------------------------------------------------

// Opens wait until released; files are never found.
class GatedBackend : public FakeBackend {
 public:
  client::OpenedFile Open(const std::string& digest, const std::string& origin) override {
    std::unique_lock<std::mutex> lock(gate_mu);
    ++waiting;
    gate_cv.notify_all();
    gate_cv.wait(lock, [this] { return open; });
    lock.unlock();
    return FakeBackend::Open(digest, origin);
  }
  void WaitForWaiting(int n) {
    std::unique_lock<std::mutex> lock(gate_mu);
    ASSERT_TRUE(gate_cv.wait_for(lock, std::chrono::seconds(10), [&] { return waiting >= n; })) << waiting;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
    gate_cv.notify_all();
  }
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  int waiting = 0;
  bool open = false;
};

std::string OpenMessage(int id, const std::string& origin) {
  return json{{"id", id}, {"op", "open"}, {"origin", origin}, {"digest", std::string(64, 'c')}}.dump();
}

TEST(HostLimits, OneSiteCannotTakeEveryRequestSlot) {
  GatedBackend backend;
  Pipe sink;
  FrameWriter writer(sink.write_fd);
  Host::Options options;
  options.http = false;
  options.max_in_flight = 32;
  options.max_in_flight_per_origin = 8;
  auto host = std::make_unique<Host>(&backend, &writer, options);
  const std::string a = "https://a.example", b = "https://b.example";
  for (int id = 1; id <= 8; ++id) host->HandleMessage(OpenMessage(id, a));
  backend.WaitForWaiting(8);
  host->HandleMessage(OpenMessage(9, a));  // refused at once
  host->HandleMessage(OpenMessage(10, b));  // another site still gets in
  backend.WaitForWaiting(9);
  FrameReader reader(sink.read_fd);
  json refused = json::parse(reader.Next().payload);
  EXPECT_EQ(refused["id"], 9);
  EXPECT_EQ(refused["error"], "Busy");
  EXPECT_EQ(refused["message"], "too many requests in flight for this site");
  backend.Release();
  host.reset();  // waits for every reply
  sink.CloseWrite();
  std::set<int> answered;
  for (Frame frame = reader.Next(); frame.status == FrameStatus::kOk; frame = reader.Next()) {
    json reply = json::parse(frame.payload);
    EXPECT_EQ(reply["error"], "NotFound") << reply;
    answered.insert(reply["id"].get<int>());
  }
  EXPECT_EQ(answered, (std::set<int>{1, 2, 3, 4, 5, 6, 7, 8, 10}));
}

TEST(HostLimits, TransfersAreCappedPerSiteChunkedOnesIncluded) {
  FakeBackend backend;
  Pipe sink;
  FrameWriter writer(sink.write_fd);
  Host::Options options;
  options.http = false;
  options.max_transfers = 5;
  options.max_transfers_per_origin = 2;
  Host host(&backend, &writer, options);
  auto call = [&](json request) {
    request["id"] = 1;
    return host.Dispatch(std::get<Request>(ParseRequest(request.dump())));
  };
  const std::string a = "https://a.example", b = "https://b.example", c = "https://c.example";
  std::string hex = Sha256Hex("abc");
  json first = call({{"op", "create"}, {"origin", a}, {"digest", hex}});
  ASSERT_EQ(first["ok"], true);
  // Its first chunk takes it out of the token registry: it still counts.
  ASSERT_EQ(call({{"op", "write"}, {"origin", a}, {"transfer", first["transfer"]}, {"offset", 0}, {"data", "YWI="}})
                ["ok"],
            true);
  EXPECT_EQ(call({{"op", "create"}, {"origin", a}, {"digest", hex}})["ok"], true);
  json third = call({{"op", "create"}, {"origin", a}, {"digest", hex}});
  EXPECT_EQ(third["error"], "Busy");
  EXPECT_EQ(third["message"], "too many transfers in flight for this site");
  // Other sites are not starved by a's transfers.
  EXPECT_EQ(call({{"op", "create"}, {"origin", b}, {"digest", hex}})["ok"], true);
  EXPECT_EQ(call({{"op", "create"}, {"origin", b}, {"digest", hex}})["ok"], true);
  // ... up to the cap of all sites.
  json fifth = call({{"op", "create"}, {"origin", c}, {"digest", hex}});
  EXPECT_EQ(fifth["ok"], true) << fifth;
  EXPECT_EQ(call({{"op", "create"}, {"origin", c}, {"digest", hex}})["error"], "Busy");
  // Finishing the chunked one frees its place.
  EXPECT_EQ(call({{"op", "finish"}, {"origin", a}, {"transfer", first["transfer"]}})["ok"], false);  // "ab" != "abc"
  EXPECT_EQ(call({{"op", "create"}, {"origin", a}, {"digest", hex}})["ok"], true);
}

// --- what a page is told ------------------------------------------------------

class LeakyBackend : public FakeBackend {
 public:
  client::OpenedFile Open(const std::string&, const std::string&) override {
    throw client::Error(client::ErrorCode::kIOError,
                        "cannot open /home/alice/.local/share/costore/objects/ab/cdef: Permission denied");
  }
  client::FileInfo Store(int fd, const std::string&, const std::string&, std::optional<uint64_t>) override {
    char buffer[4096];
    while (::read(fd, buffer, sizeof buffer) > 0) {
    }
    throw client::Error(client::ErrorCode::kNoSpace, "no space on /home/alice/.local/share/costore (4 bytes left)");
  }
};

TEST(HostErrors, PagesGetFixedWordsNotTheStoresMessage) {
  LeakyBackend backend;
  Pipe sink;
  FrameWriter writer(sink.write_fd);
  Host::Options options;
  options.http = false;
  Host host(&backend, &writer, options);
  auto call = [&](json request) {
    request["id"] = 1;
    return host.Dispatch(std::get<Request>(ParseRequest(request.dump())));
  };
  const std::string a = "https://a.example";
  json opened = call({{"op", "open"}, {"origin", a}, {"digest", std::string(64, 'd')}});
  EXPECT_EQ(opened["error"], "IOError");
  EXPECT_EQ(opened["message"], "the store failed");
  json created = call({{"op", "create"}, {"origin", a}, {"digest", Sha256Hex("x")}});
  json finished = call({{"op", "finish"}, {"origin", a}, {"transfer", created["transfer"]}});
  EXPECT_EQ(finished["error"], "NoSpace");
  EXPECT_EQ(finished["message"], "there is no space left for the store");
  for (const json& reply : {opened, finished}) {
    EXPECT_EQ(reply.dump().find("/home"), std::string::npos) << reply;
    EXPECT_EQ(reply.dump().find("alice"), std::string::npos) << reply;
  }
}

TEST_F(HostTest, DigestMismatchSaysNothingOfTheArrivedBytes) {
  std::string hex = Sha256Hex("right");
  json created = Call({{"op", "create"}, {"origin", "https://a.example"}, {"digest", hex}});
  Call({{"op", "write"}, {"origin", "https://a.example"}, {"transfer", created["transfer"]}, {"offset", 0},
        {"data", "d3Jvbmc="}});
  json finished = Call({{"op", "finish"}, {"origin", "https://a.example"}, {"transfer", created["transfer"]}});
  EXPECT_EQ(finished["error"], "DigestMismatch");
  EXPECT_EQ(finished["message"], "the bytes do not match the hash");  // not "arrived sha256:..."
}

// --- uploads and descriptors -----------------------------------------------

// Stores only once released.
class GatedStore : public FakeBackend {
 public:
  client::FileInfo Store(int fd, const std::string& digest, const std::string& origin,
                         std::optional<uint64_t> size) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return open_; });
    }
    return FakeBackend::Store(fd, digest, origin, size);
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

std::string FdTarget(int fd) {
  char buffer[256];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

TEST(UploadSessionTest, FinishNeverClosesThePipeUnderAWrite) {
  GatedStore backend;
  std::string data(4 * 1024 * 1024, 'x');  // more than the pipe holds: the write blocks
  WriteTransfer transfer{"https://a.example", "sha256:" + Sha256Hex(data), std::nullopt};
  std::set<int> before;
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) before.insert(fd);
  }
  UploadSession session(&backend, transfer, std::nullopt);
  // The session's write end: the newest pipe descriptor.
  int write_fd = -1;
  for (int fd = 0; fd < 1024; ++fd) {
    if (!before.count(fd) && ::fcntl(fd, F_GETFD) >= 0) write_fd = fd;
  }
  ASSERT_GE(write_fd, 0);
  std::string pipe_name = FdTarget(write_fd);
  ASSERT_EQ(pipe_name.rfind("pipe:", 0), 0u) << pipe_name;

  std::atomic<bool> wrote{false};
  std::thread writer([&] { wrote = session.Write(data.data(), data.size()); });
  // Bytes in the pipe: the writer is inside Write, blocked in write(2) (the
  // pipe holds at most 1 MiB and the store does not read yet).
  int queued = 0;
  for (int i = 0; i < 1000 && queued == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(::ioctl(write_fd, FIONREAD, &queued), 0);
  }
  ASSERT_GT(queued, 0);
  json outcome;
  std::thread finisher([&] { outcome = session.Finish(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Finish waits for the write: the descriptor is still that pipe, not
  // closed (and free to be reused by any open()) under the writer.
  EXPECT_EQ(FdTarget(write_fd), pipe_name);
  backend.Release();
  writer.join();
  finisher.join();
  EXPECT_TRUE(wrote);
  EXPECT_EQ(outcome["ok"], true) << outcome;
  EXPECT_EQ(session.written(), data.size());
  EXPECT_FALSE(session.Write("y", 1));  // finished: nothing more goes anywhere
}

TEST(Descriptors, TheFramesDescriptorIsCloseOnExecAndAboveTheStandardThree) {
  int saved = ::dup(STDOUT_FILENO);
  ASSERT_GE(saved, 0);
  int out = ReserveStdoutForFrames();
  int flags = out >= 0 ? ::fcntl(out, F_GETFD) : -1;
  struct stat out_stat {}, saved_stat {}, one_stat {}, err_stat {};
  ::fstat(out, &out_stat);
  ::fstat(saved, &saved_stat);
  ::fstat(STDOUT_FILENO, &one_stat);
  ::fstat(STDERR_FILENO, &err_stat);
  ::dup2(saved, STDOUT_FILENO);  // give gtest its stdout back
  ::close(saved);
  ASSERT_GE(out, 3);
  EXPECT_TRUE(flags & FD_CLOEXEC);
  EXPECT_EQ(out_stat.st_ino, saved_stat.st_ino);  // the original stdout
  EXPECT_EQ(one_stat.st_ino, err_stat.st_ino);    // fd 1 went to stderr
  ::close(out);
}

TEST(Descriptors, TheManagerInheritsNoDescriptorButTheStandardThree) {
  char dir_template[] = "/tmp/costore-manager-test-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir_template));
  std::string dir = dir_template;
  std::string script = dir + "/manager";
  std::string report = dir + "/fds";
  {
    std::ofstream out(script);
    // The descriptors the manager inherited, as "ls" (a child of the
    // script's shell) sees its own.
    out << "#!/bin/sh\n"
           "ls /proc/self/fd > \"$COSTORE_TEST_FD_REPORT.tmp\"\n"
           "mv \"$COSTORE_TEST_FD_REPORT.tmp\" \"$COSTORE_TEST_FD_REPORT\"\n";
  }
  ::chmod(script.c_str(), 0755);
  ::setenv("COSTORE_TEST_FD_REPORT", report.c_str(), 1);
  // A descriptor opened without O_CLOEXEC (as a library might), at a number
  // no shell uses.
  int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 0);
  int high = ::fcntl(stray, F_DUPFD, 57);
  ::close(stray);
  ASSERT_GE(high, 57);

  FakeBackend backend;
  Pipe sink;  // pipe(2): not close-on-exec either
  FrameWriter writer(sink.write_fd);
  Host::Options options;
  options.http = false;
  options.manager_command = script;
  Host host(&backend, &writer, options);
  json reply = host.Dispatch(std::get<Request>(ParseRequest(R"({"id":1,"op":"manager"})")));
  ASSERT_EQ(reply["ok"], true) << reply;
  for (int i = 0; i < 500 && ::access(report.c_str(), F_OK) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::ifstream in(report);
  ASSERT_TRUE(in) << "the manager did not run";
  std::set<int> fds;
  for (std::string line; std::getline(in, line);) fds.insert(std::stoi(line));
  ::close(high);
  ::unsetenv("COSTORE_TEST_FD_REPORT");
  // 0-2, and the lowest free one, 3, that ls opened to read /proc/self/fd:
  // not the stray descriptor, not the frames' pipe.
  EXPECT_EQ(fds.count(high), 0u);
  EXPECT_EQ(fds.count(sink.write_fd), 0u);
  EXPECT_GT(sink.write_fd, 3);
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2, 3}));
  ::unlink(report.c_str());
  ::unlink(script.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace costore::native_host
