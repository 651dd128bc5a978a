#pragma once
// Client-controlled text made safe to write where it could do harm: a log line (a newline
// would forge a line, NUL and invalid UTF-8 would reach the file raw) or a message (a JSON
// string must be valid UTF-8). Each function bounds its output, marking a cut.

#include <cstddef>
#include <string>
#include <string_view>

namespace michi::safe_text {

// How much of a client-controlled value a log line or an error message keeps.
inline constexpr std::size_t value_max = 256;
// How much of a value a header field Michi writes carries (wire::append_field); configured
// header values and API keys longer than this are refused at load instead of being cut.
inline constexpr std::size_t header_value_max = 1024;

// The length of the valid UTF-8 sequence at text[i] (1 to 4), or 0 when the byte there does
// not start one (a stray continuation byte, an overlong form, a surrogate, a cut sequence).
std::size_t utf8_sequence(std::string_view text, std::size_t i) noexcept;

// Whether v can go into a log line as it is: printable ASCII and valid UTF-8 only, no
// control character, quote, backslash or space.
bool is_plain(std::string_view v) noexcept;

// Appends v escaped: backslash and double quote as \\ and \", control characters as \n,
// \r, \t or \xNN, and every byte that is not part of valid UTF-8 as \xNN. At most `max`
// bytes of v are written (never half a character); the rest is replaced by
// "...[cut N bytes]".
void append_escaped(std::string& out, std::string_view v, std::size_t max = value_max);
std::string escaped(std::string_view v, std::size_t max = value_max);

// v as valid UTF-8 (each invalid byte becomes U+FFFD) and without control characters (as
// U+FFFD too), at most `max` bytes of it, a cut marked by "...": for a client's value
// quoted in a message.
std::string printable(std::string_view v, std::size_t max = value_max);

} // namespace michi::safe_text
