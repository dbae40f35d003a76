#include "trellis/users/validation.h"

#include <gtest/gtest.h>

#include "trellis/users/user_store.h"

namespace trellis::users {
namespace {

TEST(Validation, Email) {
  EXPECT_EQ(check_email("ann@example.com"), "");
  EXPECT_EQ(check_email("Ann.B+tag@sub.example.co"), "");
  for (const char* bad : {"", "ann", "@example.com", "ann@", "ann@example", "ann@.com",
                          "ann@example.", "a b@example.com", "ann@@example.com", "ann\n@x.io"}) {
    EXPECT_NE(check_email(bad), "") << bad;
  }
  EXPECT_NE(check_email(std::string(250, 'a') + "@x.io"), "");
}

TEST(Validation, PasswordLengthCountsCharactersNotBytes) {
  EXPECT_NE(check_password("short"), "");
  EXPECT_EQ(check_password("eight chr"), "");
  EXPECT_EQ(check_password("пароль12"), "");  // 8 characters, 14 bytes
  EXPECT_NE(check_password("ключ"), "");      // 4 characters, 8 bytes
  EXPECT_NE(check_password(std::string(1025, 'x')), "");
}

TEST(Validation, DisplayName) {
  EXPECT_EQ(check_display_name("Ann"), "");
  EXPECT_NE(check_display_name(""), "");
  EXPECT_NE(check_display_name(" Ann"), "");
  EXPECT_NE(check_display_name("A\tnn"), "");
  EXPECT_NE(check_display_name(std::string(101, 'a')), "");
  EXPECT_NE(check_display_name("").find("display_name"), std::string::npos);
}

TEST(Validation, Uuid) {
  EXPECT_TRUE(is_uuid("0b6f7a52-2c57-4a43-9d0f-3f1a2a1e3c11"));
  EXPECT_FALSE(is_uuid("0b6f7a52-2c57-4a43-9d0f-3f1a2a1e3c1"));
  EXPECT_FALSE(is_uuid("0b6f7a52x2c57-4a43-9d0f-3f1a2a1e3c11"));
  EXPECT_FALSE(is_uuid("'; DROP TABLE users; --                "));
}

}  // namespace
}  // namespace trellis::users
