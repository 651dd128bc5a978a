#include "michi/core/http_wire.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace michi::wire {
namespace {

void append_version(std::string& out, unsigned version) {
    out.append("HTTP/");
    out.push_back(static_cast<char>('0' + version / 10));
    out.push_back('.');
    out.push_back(static_cast<char>('0' + version % 10));
}

void append_fields(std::string& out, const http::fields& f, std::string_view extra = {}) {
    for (const auto& field : f) {
        out.append(field.name_string());
        out.append(": ");
        out.append(field.value());
        out.append(crlf);
    }
    out.append(extra);
    out.append(crlf);
}

// Whether text holds a control character (below 0x20, or 0x7F), eight bytes at a time: a
// value almost never has one, and a byte loop would cost several times the rest of the field.
// (A word is flagged only when one of its bytes is a control character; see Hacker's
// Delight's zero-byte test.)
bool has_control(std::string_view text) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    const char* p = text.data();
    std::size_t i = 0;
    for (; i + 8 <= text.size(); i += 8) {
        std::uint64_t x = 0;
        std::memcpy(&x, p + i, 8);
        const std::uint64_t del = x ^ (ones * 0x7F);
        if ((((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs) {
            return true;
        }
    }
    for (; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(p[i]);
        if (c < 0x20 || c == 0x7F) {
            return true;
        }
    }
    return false;
}

std::size_t fields_size(const http::fields& f) {
    std::size_t n = 2;
    for (const auto& field : f) {
        n += field.name_string().size() + field.value().size() + 4;
    }
    return n;
}

} // namespace

std::string head(const http::response_header<>& h, std::string_view extra_fields) {
    std::string out;
    head(out, h, extra_fields);
    return out;
}

void head(std::string& out, const http::response_header<>& h, std::string_view extra_fields) {
    out.clear();
    const auto reason = h.reason();
    const std::size_t fields = h.begin() == h.end() ? 2 : fields_size(h);
    out.reserve(16 + reason.size() + fields + extra_fields.size());
    append_status_line(out, h.version(), h.result_int(), reason);
    append_fields(out, h, extra_fields);
}

void append_status_line(std::string& out, unsigned version, unsigned status,
                        std::string_view reason) {
    // The status line put together on the stack and appended at once (a reason phrase of
    // Beast's is short; a longer one set by hand goes piece by piece).
    char line[96];
    if (reason.size() <= sizeof line - 20) {
        char* p = line;
        std::memcpy(p, "HTTP/", 5);
        p[5] = static_cast<char>('0' + version / 10);
        p[6] = '.';
        p[7] = static_cast<char>('0' + version % 10);
        p[8] = ' ';
        p = std::to_chars(p + 9, p + 16, status).ptr;
        *p++ = ' ';
        std::memcpy(p, reason.data(), reason.size());
        p += reason.size();
        *p++ = '\r';
        *p++ = '\n';
        out.append(line, p);
    } else {
        append_version(out, version);
        out.push_back(' ');
        char code[8];
        const auto end = std::to_chars(code, code + sizeof code, status).ptr;
        out.append(code, end);
        out.push_back(' ');
        out.append(reason);
        out.append(crlf);
    }
}

void append_status_line(std::string& out, unsigned status) {
    append_status_line(out, 11, status, http::obsolete_reason(static_cast<http::status>(status)));
}

namespace {

// Each control character (CR, LF, NUL, ...) of text becomes a space (a tab may stay). Bytes
// above 0x7F are obs-text, allowed.
void blank_controls(char* text, std::size_t size) noexcept {
    for (std::size_t i = 0; i < size; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            text[i] = ' ';
        }
    }
}

} // namespace

void append_field(std::string& out, std::string_view name, std::string_view value) {
    const bool cut = value.size() > max_field_value;
    if (cut) {
        value = value.substr(0, max_field_value);
    }
    // A control character would end the field or reach the client raw: see blank_controls.
    const bool controls = has_control(value);
    // A usual field (a short name and value) is put together on the stack and appended at
    // once: one append instead of four.
    char line[320];
    if (name.size() + value.size() + 7 <= sizeof line) {
        std::memcpy(line, name.data(), name.size());
        char* p = line + name.size();
        *p++ = ':';
        *p++ = ' ';
        std::memcpy(p, value.data(), value.size());
        if (controls) {
            blank_controls(p, value.size());
        }
        p += value.size();
        if (cut) {
            std::memcpy(p, "...", 3);
            p += 3;
        }
        *p++ = '\r';
        *p++ = '\n';
        out.append(line, p);
        return;
    }
    out.reserve(out.size() + name.size() + value.size() + 7);
    out.append(name);
    out.append(": ");
    const std::size_t at = out.size();
    out.append(value);
    if (controls) {
        blank_controls(out.data() + at, value.size());
    }
    if (cut) {
        out.append("...");
    }
    out.append(crlf);
}

void append_field(std::string& out, std::string_view name, std::uint64_t value,
                  std::string_view suffix) {
    // One append of a line built on the stack (the names are Michi's own, short).
    char line[160];
    if (name.size() + suffix.size() > sizeof line - 2 - 20 - 2) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
        append_field(out, name, std::string(digits, end) + std::string(suffix));
        return;
    }
    std::memcpy(line, name.data(), name.size());
    char* p = line + name.size();
    *p++ = ':';
    *p++ = ' ';
    p = std::to_chars(p, p + 20, value).ptr;
    if (!suffix.empty()) {
        std::memcpy(p, suffix.data(), suffix.size());
        p += suffix.size();
    }
    *p++ = '\r';
    *p++ = '\n';
    out.append(line, p);
}

std::string_view chunk_size_line(std::array<char, 24>& room, std::size_t size) {
    auto* end = std::to_chars(room.data(), room.data() + 20, size, 16).ptr;
    *end++ = '\r';
    *end++ = '\n';
    return {room.data(), static_cast<std::size_t>(end - room.data())};
}

std::string chunk_size_line(std::size_t size) {
    std::array<char, 24> room;
    return std::string(chunk_size_line(room, size));
}

} // namespace michi::wire
