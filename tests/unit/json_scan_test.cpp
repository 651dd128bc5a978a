#include "michi/core/json_scan.hpp"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace michi::json_scan {
namespace {

using members = std::vector<std::pair<std::string, std::string>>;

// (key as written, value text) of each top-level member; nullopt when the scan fails.
std::optional<members> scan(std::string_view text) {
    members out;
    const bool ok = for_each_member(text, [&](const member& m) {
        out.emplace_back(std::string(m.key_raw),
                         std::string(text.substr(m.value_begin, m.value_end - m.value_begin)));
    });
    if (!ok) {
        return std::nullopt;
    }
    return out;
}

TEST(JsonScanTest, FindsEachTopLevelMemberAndItsValueBytes) {
    const std::string text = R"( { "model" : "gpt-4o" , "n":2,"stop":null,"ok":true, "x":-1.5e3,)"
                             R"( "messages":[{"role":"user","content":"a \"quoted\" } ] { text"}],)"
                             R"( "meta":{"a":[1,{"b":"}"}]}} )";
    const auto got = scan(text);
    ASSERT_TRUE(got.has_value());
    const members want{
        {"model", R"("gpt-4o")"},
        {"n", "2"},
        {"stop", "null"},
        {"ok", "true"},
        {"x", "-1.5e3"},
        {"messages", R"([{"role":"user","content":"a \"quoted\" } ] { text"}])"},
        {"meta", R"({"a":[1,{"b":"}"}]})"},
    };
    EXPECT_EQ(*got, want);
}

TEST(JsonScanTest, EmptyObjectHasNoMembers) {
    EXPECT_EQ(scan("{}"), members{});
    EXPECT_EQ(scan(" \r\n{ \t}\n"), members{});
}

TEST(JsonScanTest, TextThatIsNotOneObjectFails) {
    for (const std::string_view bad :
         {"", "[]", "\"s\"", "42", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{\"a\" 1}",
          "{a:1}", "{\"a\":\"unterminated}", "{\"a\":[1,2}", "{\"a\":1} x", "{\"a\":1}{}",
          "{\"a\":{\"b\":1}", "{,}", "{\"a\":}"}) {
        EXPECT_FALSE(scan(bad).has_value()) << bad;
    }
}

TEST(JsonScanTest, ScanAgreesWithAFullParseOnValidDocuments) {
    const std::vector<std::string> docs{
        R"({"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})",
        R"({"a":"\\","b":"\\\"","c":"\u00e9\ud83d\ude00","d":[[],[[]],{}],"e":""})",
        R"({"id":"x","choices":[{"message":{"content":"{\"usage\":1}"}}],"usage":null})",
    };
    for (const auto& doc : docs) {
        const auto parsed = nlohmann::json::parse(doc);
        const auto got = scan(doc);
        ASSERT_TRUE(got.has_value()) << doc;
        ASSERT_EQ(got->size(), parsed.size()) << doc;
        for (const auto& [key, value] : *got) {
            EXPECT_EQ(nlohmann::json::parse(value), parsed.at(key)) << doc << " key " << key;
        }
    }
}

TEST(JsonScanTest, FindUniqueReadsOnlyTheTopLevel) {
    const std::string body =
        R"({"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":999}"}}],)"
        R"("usage":{"prompt_tokens":9}})";
    EXPECT_EQ(find_unique(body, "usage"),
              std::optional<std::string_view>(R"({"prompt_tokens":9})"));
    EXPECT_EQ(find_unique(body, "prompt_tokens"), std::nullopt); // nested: not top-level
    EXPECT_EQ(find_unique(body, "missing"), std::nullopt);
}

TEST(JsonScanTest, FindUniqueRefusesDuplicatesEscapedKeysAndBrokenText) {
    EXPECT_EQ(find_unique(R"({"model":"a","model":"b"})", "model"), std::nullopt);
    // "\u006dodel" spells "model": a reader that decodes escapes would see a second one.
    EXPECT_EQ(find_unique(R"({"model":"a","\u006dodel":"b"})", "model"), std::nullopt);
    EXPECT_EQ(find_unique(R"({"model":"a",)", "model"), std::nullopt);
    EXPECT_EQ(find_unique(R"(["model"])", "model"), std::nullopt);
}

TEST(JsonScanTest, SkipValueStopsAtTheEndOfOneValue) {
    const std::string_view t = R"([1,"]",{"a":[]}] tail)";
    EXPECT_EQ(skip_value(t, 0), t.find(" tail"));
    EXPECT_EQ(skip_value("123,", 0), 3u);
    EXPECT_EQ(skip_value("\"a\\\"b\" x", 0), 6u);
    EXPECT_EQ(skip_value("", 0), std::string_view::npos);
    EXPECT_EQ(skip_value(",", 0), std::string_view::npos);
    EXPECT_EQ(skip_value("[1,2", 0), std::string_view::npos);
    EXPECT_EQ(skip_value("\"open", 0), std::string_view::npos);
}

TEST(JsonScanTest, FindTextFindsTheFirstPlaceAtOrAfterFrom) {
    const std::string_view t = R"({"usage":1,"x":"\"usage\"","usage":{"u":"uu"}})";
    EXPECT_EQ(find_text(t, "\"usage\""), 1u);
    EXPECT_EQ(find_text(t, "\"usage\"", 2), t.find("\"usage\"", 2));
    EXPECT_EQ(find_text(t, "\"usage\":{"), t.find("\"usage\":{"));
    EXPECT_EQ(find_text(t, "}}"), t.size() - 2); // at the very end
    EXPECT_EQ(find_text(t, t), 0u);              // the whole text
    EXPECT_EQ(find_text(t, "\"missing\""), std::string_view::npos);
    EXPECT_EQ(find_text(t, "x"), t.find('x')); // one character
    EXPECT_EQ(find_text(t, ""), 0u);
    EXPECT_EQ(find_text(t, "", 5), 5u);
    EXPECT_EQ(find_text(t, "}}", t.size() - 1), std::string_view::npos); // no room left
    EXPECT_EQ(find_text(t, "\"", t.size() + 1), std::string_view::npos); // past the end
    EXPECT_EQ(find_text("ab", "abc"), std::string_view::npos);
    // Every needle and start against string_view::find, on text full of near misses.
    const std::string text = "aab aaab abab aabb abba ba ab";
    for (const std::string needle : {"ab", "aab", "abab", "ba ab", "bb", "b a", "zz", "ab "}) {
        for (std::size_t from = 0; from <= text.size() + 1; ++from) {
            EXPECT_EQ(find_text(text, needle, from), std::string_view(text).find(needle, from))
                << needle << " from " << from;
        }
    }
}

// Answers as providers write them (usage last, or followed by short members), and texts
// built to mislead a search from the end: the same answer as the full scan in each.
TEST(JsonScanTest, FindUniqueNearEndAgreesWithTheFullScan) {
    const std::string pad(5000, 'x'); // pushes a member out of the tail window
    const std::vector<std::string> texts{
        R"({"id":"c","choices":[{"message":{"content":"Hi"}}],"usage":{"prompt_tokens":9}})",
        R"({"id":"c","usage":{"prompt_tokens":9},"service_tier":"default","fp":"fp_1"}  )",
        " \n{ \"usage\" : { \"prompt_tokens\" : 1 } }\r\n",
        R"({"usage":{"a":1}})",
        R"({"usage":7})",
        R"({"usage":null,"x":1})",
        R"({"a":1,"usage":{"a":1},"usage":{"a":2}})",
        R"({"usage":{"a":1},"b":2,"usage":{"a":2}})",
        R"({"usage":{"a":1},"x":{"usage":{"a":2}}})",
        R"({"x":{"y":1,"usage":{"a":2}}})",
        R"({"x":[{"usage":{"a":2}}]})",
        R"({"\u0075sage":{"a":1},"usage":{"a":2}})",
        R"({"usage":{"a":1},"\u0075sage":{"a":2}})",
        R"({"a\"usage":{"a":2}})",
        R"({"a":"x,\"usage\":{\"a\":3}}"})",
        R"({"a":"x,\"usage\":{\"a\":3}}","usage":{"a":4}})",
        R"({"type":"usage","usage":{"a":4}})",
        R"({"a":"\\","usage":{"a":5}})",
        R"({"a":"\\u","usage":{"a":5}})",
        R"({"a":"é \n \"q\"","usage":{"a":6}})",
        R"({"k\n":1,"usage":{"a":6},"tail\t":2})",
        R"({"usage":{"a":1}, "x": })",
        R"({"usage":{"a":1}} x)",
        R"({"usage":{"a":1})",
        R"(["usage",{"usage":1}])",
        R"({"usage":{"a":"}"}})",
        R"({"usage":{"a":1}"})",
        "{\"usage\":{\"a\":1},\"p\":\"" + pad + "\"}",
        "{\"p\":\"" + pad + "\",\"usage\":{\"a\":1}}",
        "{\"usage\":{\"a\":\"" + pad + "\"}}",
        "",
        "}",
        "{}",
    };
    for (const auto& text : texts) {
        EXPECT_EQ(find_unique_near_end(text, "usage"), find_unique(text, "usage")) << text;
    }
    // The same at every offset from the vectorized pass's blocks of 16 bytes: a member, a
    // second one, a \u escape before or after it, a quoted "usage" value.
    for (std::size_t n = 0; n < 48; ++n) {
        const std::string x(n, 'x');
        for (const std::string& text :
             {R"({"p":")" + x + R"(","usage":{"a":1}})",
              R"({"p":")" + x + R"(\u00e9","usage":{"a":1}})",
              R"({"usage":{"a":1},"p":")" + x + R"(\u00e9"})",
              R"({"p":")" + x + R"(","usage":{"a":1},"q":")" + x + R"(","usage":2})",
              R"({"p":")" + x + R"(","t":"usage","usage":{"a":1}})",
              R"({"p":")" + x + R"(\"usage\":3","usage":{"a":1}})", R"({"p":")" + x + R"("})"}) {
            EXPECT_EQ(find_unique_near_end(text, "usage"), find_unique(text, "usage")) << text;
        }
    }
    // Found from the end: the value's own bytes, as the full scan gives them.
    const std::string answer = R"({"choices":[],"usage":{"prompt_tokens":9},"x":"y"})";
    EXPECT_EQ(find_unique_near_end(answer, "usage"), std::string_view(R"({"prompt_tokens":9})"));
    // Where the two differ: a key before it escaped otherwise than by \u cannot spell the
    // name, and is not looked at from the end (the full scan refuses any escaped key).
    const std::string escaped = R"({"k\n":1,"usage":{"a":6}})";
    EXPECT_EQ(find_unique_near_end(escaped, "usage"), std::string_view(R"({"a":6})"));
    EXPECT_EQ(find_unique(escaped, "usage"), std::nullopt);
}

// Long texts (where 16 places are tested at once), a needle at every offset from the start
// and the end, near misses that match the bytes tested first but not the rest.
TEST(JsonScanTest, FindTextAgreesWithFindOnLongTexts) {
    std::string text;
    std::uint32_t x = 12345;
    for (int i = 0; i < 300; ++i) {
        x = x * 1103515245u + 12345u;
        text.push_back("ab\"u:e"[(x >> 16) % 6]);
    }
    for (const std::string needle :
         {"\"usage\"", "\"u:e\"", "abab", "\"content\":\"", "ueue", "a\"b:u", "zzzz"}) {
        for (std::size_t from = 0; from <= text.size(); ++from) {
            ASSERT_EQ(find_text(text, needle, from), std::string_view(text).find(needle, from))
                << needle << " from " << from;
        }
        for (std::size_t at = 0; at + needle.size() <= 80; ++at) {
            const std::string hay = std::string(at, '.') + needle + std::string(80, '.');
            const std::string near = std::string(at, '.') + needle.front() + needle[1] +
                                     std::string(needle.size() - 4, '#') +
                                     needle[needle.size() - 2] + '#' + std::string(80, '.');
            EXPECT_EQ(find_text(hay, needle), at) << needle << " at " << at;
            EXPECT_EQ(find_text(std::string_view(hay).substr(0, at + needle.size()), needle), at);
            EXPECT_EQ(find_text(std::string_view(hay).substr(0, at + needle.size() - 1), needle),
                      std::string_view::npos);
            EXPECT_EQ(find_text(near, needle), std::string_view(near).find(needle));
        }
    }
}

// One pass for two needles finds what two find_text calls would: the first place of either
// (the first needle's where both start), at every offset, near the text's end, from anywhere.
TEST(JsonScanTest, FindEitherAgreesWithTwoFindTexts) {
    const auto expected = [](std::string_view text, std::string_view a, std::string_view b,
                             std::size_t from) {
        const std::size_t at1 = find_text(text, a, from);
        const std::size_t at2 = find_text(text, b, from);
        return at2 < at1 ? text_place{at2, true} : text_place{at1, false};
    };
    const auto same = [](text_place x, text_place y) {
        return x.at == y.at && (x.at == std::string_view::npos || x.second == y.second);
    };
    std::string text;
    std::uint32_t x = 4321;
    for (int i = 0; i < 400; ++i) {
        x = x * 1103515245u + 12345u;
        text.push_back("\"usagecont:\"e"[(x >> 16) % 13]);
    }
    const std::vector<std::pair<std::string, std::string>> pairs = {{"\"content\":\"", "\"usage\""},
                                                                    {"\"usage\"", "\"content\":\""},
                                                                    {"\"use\"", "\"usage\""},
                                                                    {"sage", "\"ont"},
                                                                    {"abcd", "zzzz"}};
    for (const auto& [a, b] : pairs) {
        for (std::size_t from = 0; from <= text.size() + 1; ++from) {
            ASSERT_TRUE(same(find_either(text, a, b, from), expected(text, a, b, from)))
                << a << " / " << b << " from " << from;
        }
        for (std::size_t at = 0; at < 60; ++at) {
            for (const std::string& needle : {a, b}) {
                const std::string hay = std::string(at, '.') + needle + std::string(at % 23, '.');
                ASSERT_TRUE(same(find_either(hay, a, b), expected(hay, a, b, 0)))
                    << needle << " at " << at;
                EXPECT_EQ(find_either(hay, a, b).at, at) << needle << " at " << at;
            }
        }
    }
}

// A string's end found 16 bytes at a time agrees with a byte-by-byte walk: strings of every
// length around a block, with runs of backslashes (even and odd) and quotes at each place,
// in a text that may break off.
TEST(JsonScanTest, SkipStringAgreesWithAByteWalk) {
    const auto reference = [](std::string_view t, std::size_t i) {
        for (std::size_t j = i + 1; j < t.size(); ++j) {
            if (t[j] == '\\') {
                ++j;
            } else if (t[j] == '"') {
                return j + 1;
            }
        }
        return std::string_view::npos;
    };
    const std::vector<std::string> pieces = {"\\\"", "\\\\",    "\\\\\\\"",
                                             "\"",   "\\u0022", "\xc3\xa9"};
    for (std::size_t len = 0; len < 48; ++len) {
        for (std::size_t at = 0; at <= len; ++at) {
            for (const auto& piece : pieces) {
                std::string text = "\"" + std::string(at, 'x') + piece + std::string(len - at, 'y');
                for (const std::string& t : {text, text + "\"", text + "\",\"k\":1}"}) {
                    EXPECT_EQ(detail::skip_string(t, 0), reference(t, 0)) << t;
                }
            }
        }
    }
}

} // namespace
} // namespace michi::json_scan
