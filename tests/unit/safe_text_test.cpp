// Client text made safe for logs and messages: escaped, valid UTF-8, bounded.

#include "michi/core/safe_text.hpp"

#include <gtest/gtest.h>

namespace michi::safe_text {
namespace {

TEST(SafeTextTest, Utf8SequencesAreValidatedAsTheStandardSays) {
    EXPECT_EQ(utf8_sequence("a", 0), 1u);
    EXPECT_EQ(utf8_sequence("\xc3\xa9", 0), 2u);         // é
    EXPECT_EQ(utf8_sequence("\xe2\x82\xac", 0), 3u);     // €
    EXPECT_EQ(utf8_sequence("\xf0\x9f\x98\x80", 0), 4u); // an emoji
    EXPECT_EQ(utf8_sequence("\xc0\xaf", 0), 0u);         // overlong
    EXPECT_EQ(utf8_sequence("\xe0\x80\xaf", 0), 0u);     // overlong
    EXPECT_EQ(utf8_sequence("\xed\xa0\x80", 0), 0u);     // a surrogate
    EXPECT_EQ(utf8_sequence("\xf4\x90\x80\x80", 0), 0u); // above U+10FFFF
    EXPECT_EQ(utf8_sequence("\x80", 0), 0u);             // a stray continuation
    EXPECT_EQ(utf8_sequence("\xe2\x82", 0), 0u);         // cut short
    EXPECT_EQ(utf8_sequence("\xff", 0), 0u);
}

TEST(SafeTextTest, EscapedForALogLine) {
    EXPECT_EQ(escaped("plain/model-1"), "plain/model-1");
    EXPECT_EQ(escaped("a\nb\r\tc"), "a\\nb\\r\\tc");
    EXPECT_EQ(escaped(std::string("nul\0here", 8)), "nul\\x00here");
    EXPECT_EQ(escaped("\x1b[31m\x7f"), "\\x1b[31m\\x7f");
    EXPECT_EQ(escaped("q\"b\\s"), "q\\\"b\\\\s");
    EXPECT_EQ(escaped("caf\xc3\xa9 \xff\xfe"), "caf\xc3\xa9 \\xff\\xfe");
    EXPECT_EQ(escaped(std::string(300, 'x')), std::string(256, 'x') + "...[cut 44 bytes]");
    // A cut never splits a character.
    EXPECT_EQ(escaped("ab\xc3\xa9", 3), "ab...[cut 2 bytes]");
}

TEST(SafeTextTest, PlainTokens) {
    EXPECT_TRUE(is_plain("openai/gpt-4o-mini"));
    EXPECT_TRUE(is_plain("caf\xc3\xa9"));
    EXPECT_FALSE(is_plain("a b"));
    EXPECT_FALSE(is_plain("a\"b"));
    EXPECT_FALSE(is_plain("a\\b"));
    EXPECT_FALSE(is_plain("a\nb"));
    EXPECT_FALSE(is_plain("a\xff"));
    EXPECT_TRUE(is_plain(""));
}

TEST(SafeTextTest, PrintableForAMessage) {
    EXPECT_EQ(printable("echo/x"), "echo/x");
    EXPECT_EQ(printable("a\nb\xff"), "a\xef\xbf\xbd"
                                     "b\xef\xbf\xbd");
    EXPECT_EQ(printable(std::string(1000, 'm'), 10), std::string(10, 'm') + "...");
}

} // namespace
} // namespace michi::safe_text
