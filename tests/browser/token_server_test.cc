// The one-time loopback endpoint: loopback binds only, one request per
// token, nothing but the token paths, Host and Origin checks.
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "native-host/token_server.h"

namespace costore::native_host {
namespace {

constexpr const char* kSite = "http://127.0.0.1:8001";
constexpr const char* kExtension = "chrome-extension://gpdbhgnnafkfpcibjihdpggnihoolggj";

std::shared_ptr<ReadTransfer> FileWith(const std::string& bytes, const std::string& origin = kSite) {
  char path[] = "/tmp/costore-token-test-XXXXXX";
  int fd = ::mkstemp(path);
  ::unlink(path);
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  auto transfer = std::make_shared<ReadTransfer>();
  transfer->fd = client::UniqueFd(fd);
  transfer->size = bytes.size();
  transfer->origin = origin;
  return transfer;
}

std::string PathOf(const std::string& url) {
  size_t slash = url.find('/', std::string("http://").size());
  return url.substr(slash);
}

class TokenServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TokenServer::Options options;
    options.extension_origins = {kExtension};
    std::string error;
    server_ = TokenServer::Start(
        options, &registry_,
        [this](const WriteTransfer& transfer, std::optional<uint64_t> length, const BodySource& body) {
          std::string got;
          bool complete = body([&](const char* data, size_t size) {
            got.append(data, size);
            return true;
          });
          uploads_.push_back(got);
          UploadOutcome outcome;
          outcome.body = {{"ok", complete}, {"digest", transfer.digest}, {"length", length ? *length : 0}};
          if (got == "wrong bytes") {
            outcome.http_status = 422;
            outcome.body = {{"ok", false}, {"error", "DigestMismatch"}, {"message", "arrived sha256:..."}};
          }
          return outcome;
        },
        &error);
    ASSERT_TRUE(server_) << error;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  httplib::Result Get(const std::string& path, const std::string& origin = kSite) {
    httplib::Headers headers;
    if (!origin.empty()) headers.emplace("Origin", origin);
    return client_->Get(path.c_str(), headers);
  }

  TokenRegistry registry_;
  std::unique_ptr<TokenServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::vector<std::string> uploads_;
};

TEST(TokenServerBind, RefusesNonLoopbackAddresses) {
  TokenRegistry registry;
  for (const char* address : {"0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "8.8.8.8", "localhost", "example.com",
                              "", "127.0.0.1 ", "::ffff:192.168.1.1", "fe80::1"}) {
    TokenServer::Options options;
    options.bind_address = address;
    std::string error;
    EXPECT_EQ(TokenServer::Start(options, &registry, nullptr, &error), nullptr) << address;
    EXPECT_NE(error.find("loopback"), std::string::npos) << error;
  }
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackAddress("127.5.6.7"));
  EXPECT_TRUE(IsLoopbackAddress("::1"));
  EXPECT_FALSE(IsLoopbackAddress("128.0.0.1"));
}

TEST(TokenServerBind, BindsToLoopbackOnAKernelChosenPort) {
  TokenRegistry registry;
  std::string error;
  auto server = TokenServer::Start({}, &registry, nullptr, &error);
  ASSERT_TRUE(server) << error;
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->ReadUrl(std::string(64, 'a')),
            "http://127.0.0.1:" + std::to_string(server->port()) + "/t/" + std::string(64, 'a'));
}

TEST(Tokens, AreLongRandomAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string token = NewToken();
    ASSERT_EQ(token.size(), 64u);  // 256 bits
    EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_TRUE(seen.insert(token).second);
  }
}

TEST(Tokens, ExpireAndAreBounded) {
  // A clock of the test's own: no sleeping, no wall-clock margins.
  auto now = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  TokenRegistry registry(std::chrono::seconds(120), 2, [now] { return *now; });
  std::string a = registry.Add(std::make_shared<WriteTransfer>());
  *now += std::chrono::seconds(60);
  std::string b = registry.Add(std::make_shared<WriteTransfer>());
  EXPECT_FALSE(a.empty());
  EXPECT_FALSE(b.empty());
  EXPECT_TRUE(registry.Add(std::make_shared<WriteTransfer>()).empty());  // full
  EXPECT_TRUE(registry.Peek(a));
  *now += std::chrono::seconds(59);  // a: 119 s old, still live
  EXPECT_EQ(registry.live(), 2u);
  EXPECT_TRUE(registry.Peek(a));
  *now += std::chrono::seconds(1);  // a: 120 s old, expired; b: 60 s
  EXPECT_FALSE(registry.Take(a));
  EXPECT_EQ(registry.live(), 1u);
  EXPECT_FALSE(registry.Add(std::make_shared<WriteTransfer>()).empty());  // room again
  *now += std::chrono::seconds(60);
  EXPECT_FALSE(registry.Take(b));
  EXPECT_EQ(registry.live(), 1u);
}

TEST(Tokens, AreCountedPerOrigin) {
  TokenRegistry registry;
  auto for_origin = [](const char* origin) {
    auto transfer = std::make_shared<WriteTransfer>();
    transfer->origin = origin;
    return transfer;
  };
  std::string a1 = registry.Add(for_origin("https://a.example"));
  registry.Add(for_origin("https://a.example"));
  registry.Add(for_origin("https://b.example"));
  EXPECT_EQ(registry.LiveFor("https://a.example"), 2u);
  EXPECT_EQ(registry.LiveFor("https://b.example"), 1u);
  EXPECT_EQ(registry.LiveFor("https://c.example"), 0u);
  registry.Take(a1);
  EXPECT_EQ(registry.LiveFor("https://a.example"), 1u);
}

TEST(Tokens, TheSecretHalfMustMatch) {
  TokenRegistry registry;
  std::string token = registry.Add(std::make_shared<WriteTransfer>());
  std::string forged = token.substr(0, 32) + std::string(32, token[32] == '0' ? '1' : '0');
  EXPECT_FALSE(registry.Take(forged));
  EXPECT_FALSE(registry.Take(token.substr(0, 63)));
  EXPECT_FALSE(registry.Take(token + "0"));
  EXPECT_TRUE(registry.Take(token));
}

TEST_F(TokenServerTest, ServesATokenOnceOnly) {
  std::string token = registry_.Add(FileWith("model bytes"));
  std::string path = PathOf(server_->ReadUrl(token));
  auto first = Get(path);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "model bytes");
  EXPECT_EQ(first->get_header_value("Access-Control-Allow-Origin"), kSite);
  EXPECT_EQ(first->get_header_value("Cache-Control"), "no-store");
  auto again = Get(path);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404);
  EXPECT_TRUE(again->body.empty());
}

TEST_F(TokenServerTest, RefusesWrongTokens) {
  std::string token = registry_.Add(FileWith("secret"));
  std::string wrong_secret = token.substr(0, 32) + std::string(32, token[63] == 'f' ? 'e' : 'f');
  for (const std::string& path : {"/t/" + std::string(64, '0'), "/t/" + wrong_secret, "/t/" + token.substr(0, 63),
                                  "/t/" + token + "0", "/t/" + token.substr(0, 32),
                                  "/t/" + std::string(token.begin(), token.end() - 1) + "G"}) {
    auto result = Get(path);
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 404) << path;
    EXPECT_TRUE(result->body.empty());
  }
  auto right = Get("/t/" + token);  // none of that consumed it
  ASSERT_TRUE(right);
  EXPECT_EQ(right->body, "secret");
}

TEST_F(TokenServerTest, ServesNoOtherPathOrMethod) {
  std::string token = registry_.Add(FileWith("data"));
  for (const std::string& path :
       {std::string("/"), std::string("/index.html"), std::string("/t/"), "/t/" + token + "/",
        "/t/" + token + "/x", "/x/" + token, "/u/" + token, "//t/" + token, "/T/" + token, "/t/../t/" + token,
        std::string("/etc/passwd"), std::string("/favicon.ico")}) {
    auto result = Get(path);
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 404) << path;
    EXPECT_TRUE(result->body.empty()) << path;
  }
  httplib::Headers origin = {{"Origin", kSite}};
  auto head = client_->Head(("/t/" + token).c_str(), origin);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 404);
  auto del = client_->Delete(("/t/" + token).c_str(), origin);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 404);
  EXPECT_TRUE(del->body.empty());
  auto post = client_->Post(("/t/" + token).c_str(), origin, "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  EXPECT_TRUE(post->body.empty());
  auto put = client_->Put(("/t/" + token).c_str(), origin, "x", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 404);
  auto patch = client_->Patch(("/t/" + token).c_str(), origin, "x", "text/plain");
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 404);
  // None of them consumed the token.
  auto right = Get("/t/" + token);
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  EXPECT_EQ(right->body, "data");
}

TEST_F(TokenServerTest, ChecksTheHostHeader) {
  std::string token = registry_.Add(FileWith("data"));
  for (const char* host : {"evil.example", "localhost", "127.0.0.1", "127.0.0.1:1"}) {
    httplib::Headers headers = {{"Host", host}, {"Origin", kSite}};
    auto result = client_->Get(("/t/" + token).c_str(), headers);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 404) << host;
  }
  auto right = Get("/t/" + token);
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
}

TEST_F(TokenServerTest, ChecksTheOriginAndBurnsTheToken) {
  for (const char* origin : {"http://localhost:8002", "https://evil.example", "null", "moz-extension://x"}) {
    std::string token = registry_.Add(FileWith("data"));
    auto wrong = Get("/t/" + token, origin);
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 404) << origin;
    auto after = Get("/t/" + token);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 404) << origin;  // a token answers one request, good or bad
  }
  std::string token = registry_.Add(FileWith("data"));
  auto extension = Get("/t/" + token, kExtension);
  ASSERT_TRUE(extension);
  EXPECT_EQ(extension->status, 200);
  EXPECT_EQ(extension->get_header_value("Access-Control-Allow-Origin"), kExtension);
  // No Origin at all (the extension's own GET): served, with no CORS grant.
  token = registry_.Add(FileWith("data"));
  auto none = Get("/t/" + token, "");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 200);
  EXPECT_FALSE(none->has_header("Access-Control-Allow-Origin"));
  // Two Origin headers: refused.
  token = registry_.Add(FileWith("data"));
  auto twice = client_->Get(("/t/" + token).c_str(), {{"Origin", kSite}, {"Origin", kSite}});
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->status, 404);
}

TEST_F(TokenServerTest, UploadsNeedAnOrigin) {
  auto transfer = std::make_shared<WriteTransfer>();
  transfer->origin = kSite;
  std::string token = registry_.Add(transfer);
  auto none = client_->Post(PathOf(server_->WriteUrl(token)).c_str(), "bytes", "");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
  EXPECT_TRUE(uploads_.empty());
}

TEST_F(TokenServerTest, UploadsOnceAndPreflightsDoNotConsume) {
  auto transfer = std::make_shared<WriteTransfer>();
  transfer->origin = kSite;
  transfer->digest = "sha256:" + std::string(64, 'c');
  std::string token = registry_.Add(transfer);
  std::string path = PathOf(server_->WriteUrl(token));

  httplib::Headers preflight = {{"Origin", kSite}, {"Access-Control-Request-Method", "PUT"}};
  auto options = client_->Options(path.c_str(), preflight);
  ASSERT_TRUE(options);
  EXPECT_EQ(options->status, 204);
  EXPECT_EQ(options->get_header_value("Access-Control-Allow-Origin"), kSite);
  auto bad_preflight = client_->Options(path.c_str(), {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(bad_preflight);
  EXPECT_EQ(bad_preflight->status, 404);

  // A read token's path does not take uploads, nor an upload token reads.
  auto as_read = Get("/t/" + token);
  ASSERT_TRUE(as_read);
  EXPECT_EQ(as_read->status, 404);
  token = registry_.Add(transfer);
  path = PathOf(server_->WriteUrl(token));

  std::string body(3 * 1024 * 1024 + 7, 'q');
  auto put = client_->Put(path.c_str(), {{"Origin", kSite}}, body, "application/octet-stream");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200) << put->body;
  EXPECT_EQ(put->get_header_value("Access-Control-Allow-Origin"), kSite);
  auto reply = nlohmann::json::parse(put->body);
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["length"], body.size());
  ASSERT_EQ(uploads_.size(), 1u);
  EXPECT_EQ(uploads_[0], body);

  auto again = client_->Post(path.c_str(), {{"Origin", kSite}}, "x", "text/plain");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404);
  EXPECT_EQ(uploads_.size(), 1u);
}

TEST_F(TokenServerTest, AnUploadsErrorAnswerReachesThePage) {
  auto transfer = std::make_shared<WriteTransfer>();
  transfer->origin = kSite;
  transfer->digest = "sha256:" + std::string(64, 'd');
  std::string token = registry_.Add(transfer);
  auto post = client_->Post(PathOf(server_->WriteUrl(token)).c_str(), {{"Origin", kSite}}, "wrong bytes", "");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 422);
  EXPECT_EQ(post->get_header_value("Access-Control-Allow-Origin"), kSite);
  auto reply = nlohmann::json::parse(post->body);
  EXPECT_EQ(reply["error"], "DigestMismatch");
}

TEST_F(TokenServerTest, StopsServing) {
  std::string token = registry_.Add(FileWith("data"));
  server_->Stop();
  client_->set_connection_timeout(std::chrono::seconds(2));
  auto result = Get("/t/" + token);
  EXPECT_FALSE(result);
}

}  // namespace
}  // namespace costore::native_host
