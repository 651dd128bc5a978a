#pragma once
// Splits a text/event-stream byte stream into the raw bytes of each event (up to and
// including its blank line), so the relay can drop a whole event and pass every other
// byte on unchanged. Holds only the unfinished event between pieces.

#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace michi::stream {

class event_splitter {
public:
    // Calls on_event(std::string_view) for every event completed by bytes, with its exact
    // bytes (a template: the call is inlined, once an event).
    template <class OnEvent>
    void feed(std::string_view bytes, OnEvent&& on_event);
    // Bytes of the unfinished event.
    std::string_view pending() const { return std::string_view(buf_).substr(start_); }
    std::size_t pending_size() const { return buf_.size() - start_; }
    // single_data_line (below) of the event on_event was last given, which the splitter
    // mostly knows the shape of already: without scanning it again when it was one line.
    std::optional<std::string_view> single_data_line(std::string_view raw) const noexcept;

private:
    // Scans text from i (the event under way began at start); calls on_event for each
    // event ending in it and returns where the unfinished one begins.
    template <class OnEvent>
    std::size_t scan(std::string_view text, std::size_t i, std::size_t start, OnEvent& on_event);

    std::string buf_;
    std::size_t start_ = 0;     // first byte of the unfinished event
    bool at_line_start_ = true; // nothing but line endings since the last line ending
    bool after_cr_ = false;     // a '\n' next belongs to the preceding '\r'
    std::size_t lines_ = 0;     // non-empty lines ended in the event under way
    bool no_cr_ = true;         // no '\r' in the event under way
    bool one_line_ = false;     // the last event: one line ended by '\n', then '\n', no '\r'
};

// The data of a raw event that is one "data:" line ended by "\n\n" (what OpenAI-type
// upstreams send), as an SSE parser would dispatch it: nullopt for any other shape.
std::optional<std::string_view> single_data_line(std::string_view raw) noexcept;

// ---------------------------------------------------------------- implementation

template <class OnEvent>
std::size_t event_splitter::scan(std::string_view text, std::size_t i, std::size_t start,
                                 OnEvent& on_event) {
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

template <class OnEvent>
void event_splitter::feed(std::string_view bytes, OnEvent&& on_event) {
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

} // namespace michi::stream
