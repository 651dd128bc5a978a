// Boost's assertions (BOOST_ASSERT, BOOST_VERIFY) in builds without NDEBUG: as assert() does,
// except for one of Beast 1.81's own that is wrong. Release builds compile them all out
// (BOOST_ENABLE_ASSERT_DEBUG_HANDLER).
//
// basic_parser::parse_chunk_header asserts `n >= 5` when it comes back to a last chunk it had
// begun ("0\r\n") with more bytes; a peer whose final CRLF arrives split ("0\r\n\r", then
// "\n") reaches it with four. The code after it handles that (it looks for the end of the
// message and asks for more), and Beast corrected the assertion in 2024 (boostorg/beast pull
// request 2861): a debug build must not abort on that legal request or answer.

#include <boost/assert.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

bool is_known_wrong(const char* expr, const char* file) {
    constexpr const char beast_parser[] = "beast/http/impl/basic_parser.ipp";
    const std::size_t n = std::strlen(file);
    const std::size_t m = sizeof beast_parser - 1;
    return std::strcmp(expr, "n >= 5") == 0 && n >= m &&
           std::strcmp(file + n - m, beast_parser) == 0;
}

} // namespace

namespace boost {

void assertion_failed_msg(const char* expr, const char* msg, const char* function, const char* file,
                          long line) {
    if (is_known_wrong(expr, file)) {
        return;
    }
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed%s%s.\n", file, line, function, expr,
                 msg != nullptr ? ": " : "", msg != nullptr ? msg : "");
    std::abort();
}

void assertion_failed(const char* expr, const char* function, const char* file, long line) {
    assertion_failed_msg(expr, nullptr, function, file, line);
}

} // namespace boost
