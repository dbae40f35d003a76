#include "trellis/gateway/http_types.h"

#include <gtest/gtest.h>

#include <string>

namespace trellis::gateway {
namespace {

std::string head(const HttpResponse& response, bool keep_alive = true) {
  std::string out;
  serialize_response_head(response, keep_alive, out);
  return out;
}

TEST(SerializeResponseHead, StatusLineHeadersAndContentLength) {
  auto response = json_response(200, R"({"a":1})");
  response.headers.emplace_back("X-Request-Id", "r1");
  EXPECT_EQ(head(response),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            "X-Request-Id: r1\r\n"
            "Server: trellis\r\n"
            "Content-Length: 7\r\n"
            "\r\n");
}

TEST(SerializeResponseHead, ConnectionCloseWhenNotKeptAlive) {
  auto text = head(json_response(404, "{}"), false);
  EXPECT_NE(text.find("HTTP/1.1 404 Not Found\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\r\nConnection: close\r\n\r\n"), std::string::npos) << text;
}

TEST(SerializeResponseHead, NoBodyStatusesHaveNoContentLength) {
  for (int status : {204, 304}) {
    HttpResponse response;
    response.status = status;
    response.headers.emplace_back("ETag", "\"x\"");
    auto text = head(response);
    EXPECT_EQ(text.find("Content-Length"), std::string::npos) << text;
    EXPECT_FALSE(status_has_body(status));
  }
  EXPECT_EQ(head(HttpResponse{304, {}, ""}).rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u);
  EXPECT_TRUE(status_has_body(200));
  EXPECT_TRUE(status_has_body(500));
  EXPECT_FALSE(status_has_body(101));
}

TEST(SerializeResponseHead, FramingAndServerHeadersComeOnlyFromTheSerializer) {
  HttpResponse response{200, {}, "hello"};
  response.headers = {{"Content-Length", "999"},
                      {"transfer-encoding", "chunked"},
                      {"Connection", "upgrade"},
                      {"Server", "upstream/1.0"},
                      {"X-Kept", "yes"}};
  EXPECT_EQ(head(response),
            "HTTP/1.1 200 OK\r\n"
            "X-Kept: yes\r\n"
            "Server: trellis\r\n"
            "Content-Length: 5\r\n"
            "\r\n");
}

TEST(SerializeResponseHead, NoHeaderCanSplitTheResponse) {
  HttpResponse response{200, {}, ""};
  response.headers = {{"X-Value", "a\r\nSet-Cookie: stolen=1\r\n\r\nbody"},
                      {"X-Nul", std::string("a\0b", 3)},
                      {"X-Controls",
                       "a\x01"
                       "b\x7f"
                       "\tc"},
                      {"Bad Name", "v"},
                      {"X-Colon:", "v"},
                      {"", "v"},
                      {"X\r\nInjected", "v"}};
  auto text = head(response);
  EXPECT_EQ(text,
            "HTTP/1.1 200 OK\r\n"
            "X-Value: a  Set-Cookie: stolen=1    body\r\n"
            "X-Nul: a b\r\n"
            "X-Controls: a b \tc\r\n"
            "Server: trellis\r\n"
            "Content-Length: 0\r\n"
            "\r\n");
}

// Every control character at every position of a long value (the check reads 8 bytes at a
// time), while bytes from 0x80 up (obs-text) and HTAB pass unchanged.
TEST(SerializeResponseHead, EveryControlCharacterAnywhereInAValueBecomesASpace) {
  for (int c = 0; c < 256; ++c) {
    bool control = (c < 0x20 && c != '\t') || c == 0x7f;
    for (size_t position = 0; position < 25; ++position) {
      std::string value(25, 'v');
      value[position] = static_cast<char>(c);
      HttpResponse response{204, {{"X-Value", value}}, ""};
      auto expected = value;
      if (control) expected[position] = ' ';
      auto text = head(response);
      ASSERT_NE(text.find("X-Value: " + expected + "\r\n"), std::string::npos)
          << "byte " << c << " at " << position;
    }
  }
}

}  // namespace
}  // namespace trellis::gateway
