#pragma once
// Splits a text/event-stream byte stream into the raw bytes of each event (up to and
// including its blank line), so the relay can drop a whole event and pass every other
// byte on unchanged. Holds only the unfinished event between pieces.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace michi::stream {

class event_splitter {
public:
    // Calls on_event for every event completed by bytes, with its exact bytes.
    void feed(std::string_view bytes, const std::function<void(std::string_view)>& on_event);
    // Bytes of the unfinished event.
    std::string_view pending() const { return std::string_view(buf_).substr(start_); }
    std::size_t pending_size() const { return buf_.size() - start_; }
    // single_data_line (below) of the event on_event was last given, which the splitter
    // mostly knows the shape of already: without scanning it again when it was one line.
    std::optional<std::string_view> single_data_line(std::string_view raw) const noexcept;

private:
    // Scans text from i (the event under way began at start); calls on_event for each
    // event ending in it and returns where the unfinished one begins.
    std::size_t scan(std::string_view text, std::size_t i, std::size_t start,
                     const std::function<void(std::string_view)>& on_event);

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

} // namespace michi::stream
