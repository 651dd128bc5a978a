#include "michi/stream/event_splitter.hpp"

#include <cstring>

namespace michi::stream {

std::optional<std::string_view>
event_splitter::single_data_line(std::string_view raw) const noexcept {
    constexpr std::string_view field = "data:";
    if (!one_line_) {
        return stream::single_data_line(raw);
    }
    // One line, "\n\n" after it, no '\r': what is left to check is the field's name.
    if (!raw.starts_with(field)) {
        return std::nullopt;
    }
    std::string_view value = raw.substr(field.size(), raw.size() - field.size() - 2);
    if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    return value;
}

std::optional<std::string_view> single_data_line(std::string_view raw) noexcept {
    constexpr std::string_view field = "data:";
    if (!raw.starts_with(field) || !raw.ends_with("\n\n")) {
        return std::nullopt;
    }
    std::string_view value = raw.substr(field.size(), raw.size() - field.size() - 2);
    if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    // (memchr, not find_first_of, which tests each byte against each of the set)
    if (std::memchr(value.data(), '\n', value.size()) != nullptr ||
        std::memchr(value.data(), '\r', value.size()) != nullptr) {
        return std::nullopt;
    }
    return value;
}

} // namespace michi::stream
