#include "michi/stream/event_splitter.hpp"

namespace michi::stream {

void event_splitter::feed(std::string_view bytes,
                          const std::function<void(std::string_view)>& on_event) {
    std::size_t i = buf_.size();
    buf_.append(bytes);
    for (; i < buf_.size(); ++i) {
        const char c = buf_[i];
        if (c == '\n' && after_cr_) {
            after_cr_ = false; // the second half of "\r\n"
            continue;
        }
        after_cr_ = c == '\r';
        if (c != '\r' && c != '\n') {
            at_line_start_ = false;
            continue;
        }
        if (!at_line_start_) {
            at_line_start_ = true; // end of a non-empty line
            continue;
        }
        // A blank line: the event ends here (with a "\r\n" taken whole when it is in).
        std::size_t end = i + 1;
        if (c == '\r' && end < buf_.size() && buf_[end] == '\n') {
            ++end;
            ++i;
            after_cr_ = false;
        }
        on_event(std::string_view(buf_).substr(start_, end - start_));
        start_ = end;
    }
    if (start_ > 0 && (start_ == buf_.size() || start_ > 64 * 1024)) {
        buf_.erase(0, start_);
        start_ = 0;
    }
}

} // namespace michi::stream
