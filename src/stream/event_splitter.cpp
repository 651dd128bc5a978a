#include "michi/stream/event_splitter.hpp"

#include <cstring>

namespace michi::stream {

std::size_t event_splitter::scan(std::string_view text, std::size_t i, std::size_t start,
                                 const std::function<void(std::string_view)>& on_event) {
    const char* const data = text.data();
    const std::size_t size = text.size();
    // Without a '\r' to mind, a line's bytes are skipped with memchr to its '\n'.
    const bool any_cr = after_cr_ || std::memchr(data + i, '\r', size - i) != nullptr;
    if (any_cr) {
        no_cr_ = false; // (the event under way may hold one)
    }
    while (i < size) {
        if (!at_line_start_ && !any_cr) {
            const auto* nl = static_cast<const char*>(std::memchr(data + i, '\n', size - i));
            if (nl == nullptr) {
                return start; // the line goes on in the next piece
            }
            i = static_cast<std::size_t>(nl - data);
        }
        const char c = data[i];
        if (c == '\n' && after_cr_) {
            after_cr_ = false; // the second half of "\r\n"
            ++i;
            continue;
        }
        after_cr_ = c == '\r';
        if (c != '\r' && c != '\n') {
            at_line_start_ = false;
            ++i;
            continue;
        }
        if (!at_line_start_) {
            at_line_start_ = true; // end of a non-empty line
            ++lines_;
            ++i;
            continue;
        }
        // A blank line: the event ends here (with a "\r\n" taken whole when it is in).
        std::size_t end = i + 1;
        if (c == '\r' && end < size && data[end] == '\n') {
            ++end;
            after_cr_ = false;
        }
        one_line_ = no_cr_ && lines_ == 1;
        on_event(text.substr(start, end - start));
        lines_ = 0;
        no_cr_ = !any_cr;
        start = end;
        i = end;
    }
    return start;
}

void event_splitter::feed(std::string_view bytes,
                          const std::function<void(std::string_view)>& on_event) {
    if (buf_.size() == start_) {
        // Nothing held: events are passed straight from bytes; only an unfinished one is kept.
        buf_.clear();
        start_ = 0;
        const std::size_t rest = scan(bytes, 0, 0, on_event);
        buf_.assign(bytes.substr(rest));
        return;
    }
    const std::size_t i = buf_.size();
    buf_.append(bytes);
    start_ = scan(buf_, i, start_, on_event);
    if (start_ > 0 && (start_ == buf_.size() || start_ > 64 * 1024)) {
        buf_.erase(0, start_);
        start_ = 0;
    }
}

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
