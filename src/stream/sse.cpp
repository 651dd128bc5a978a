#include "michi/stream/sse.hpp"

#include <charconv>
#include <cstring>
#include <system_error>
#include <utility>

namespace michi::stream {

namespace {

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

// Index of the first '\r' or '\n' in s at or after from, or npos. (memchr: lines are long
// and a byte loop was most of the parser's cost.)
std::size_t find_line_end(std::string_view s, std::size_t from) noexcept {
    if (from >= s.size()) {
        return std::string_view::npos;
    }
    const char* begin = s.data() + from;
    const std::size_t len = s.size() - from;
    const void* lf = std::memchr(begin, '\n', len);
    // A '\r' ends the line only when it comes before the first '\n' (or there is none).
    const std::size_t scan = lf != nullptr ? static_cast<const char*>(lf) - begin : len;
    if (const void* cr = std::memchr(begin, '\r', scan); cr != nullptr) {
        return from + static_cast<std::size_t>(static_cast<const char*>(cr) - begin);
    }
    return lf != nullptr ? from + scan : std::string_view::npos;
}

// A retry value is valid when it is ASCII digits only and fits 64 bits.
std::optional<std::uint64_t> parse_retry(std::string_view value) noexcept {
    std::uint64_t n = 0;
    const char* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, n);
    if (value.empty() || ec != std::errc{} || ptr != end) {
        return std::nullopt;
    }
    return n;
}

} // namespace

sse_parser::sse_parser(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

bool sse_parser::at_boundary() const noexcept {
    return !failed_ && line_.empty() && !block_open_ && (bom_checked_ || bom_matched_ == 0);
}

bool sse_parser::fail() noexcept {
    failed_ = true;
    return false;
}

std::string_view sse_parser::consume_bom(std::string_view bytes) {
    while (!bytes.empty()) {
        if (bytes.front() != utf8_bom[bom_matched_]) {
            // Not a BOM: the bytes matched so far start the first line (none is a line end).
            bom_checked_ = true;
            line_.assign(utf8_bom.substr(0, bom_matched_));
            if (line_.size() > max_event_bytes_) {
                fail();
            }
            return bytes;
        }
        bytes.remove_prefix(1);
        if (++bom_matched_ == utf8_bom.size()) {
            bom_checked_ = true;
            return bytes;
        }
    }
    return bytes;
}

bool sse_parser::feed(std::string_view bytes, const std::function<void(sse_event&&)>& on_event) {
    if (failed_) {
        return false;
    }
    if (!bom_checked_) {
        bytes = consume_bom(bytes);
        if (failed_) {
            return false;
        }
    }
    std::size_t pos = 0;
    if (skip_lf_ && !bytes.empty()) {
        skip_lf_ = false;
        if (bytes.front() == '\n') {
            pos = 1;
        }
    }
    // One pass over the new bytes: complete lines are handled in place (or joined once with
    // the carried tail), the unterminated rest is carried. line_.size() <= max_event_bytes_.
    while (pos < bytes.size()) {
        const std::size_t end = find_line_end(bytes, pos);
        if (end == std::string_view::npos) {
            const std::string_view tail = bytes.substr(pos);
            if (tail.size() > max_event_bytes_ - line_.size()) {
                return fail();
            }
            line_.append(tail);
            return true;
        }
        const std::string_view piece = bytes.substr(pos, end - pos);
        if (piece.size() > max_event_bytes_ - line_.size()) {
            return fail();
        }
        if (line_.empty()) {
            process_line(piece, on_event);
        } else {
            line_.append(piece);
            process_line(line_, on_event);
            line_.clear();
        }
        if (failed_) {
            return false;
        }
        pos = end + 1;
        if (bytes[end] == '\r') {
            if (pos == bytes.size()) {
                skip_lf_ = true;
            } else if (bytes[pos] == '\n') {
                ++pos;
            }
        }
    }
    return true;
}

void sse_parser::process_line(std::string_view line,
                              const std::function<void(sse_event&&)>& on_event) {
    if (line.empty()) {
        dispatch(on_event);
        return;
    }
    if (line.front() == ':') {
        return;
    }
    std::string_view name = line;
    std::string_view value;
    if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
        name = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
        }
    }
    block_open_ = true;
    if (name == "data") {
        if (has_data_) {
            data_.push_back('\n');
        }
        data_.append(value);
        has_data_ = true;
    } else if (name == "event") {
        event_.assign(value);
        has_event_ = true;
    } else if (name == "id") {
        if (value.find('\0') == std::string_view::npos) {
            last_id_.assign(value);
        }
    } else if (name == "retry") {
        if (const auto retry = parse_retry(value)) {
            retry_ = retry;
        }
    }
    if (data_.size() + event_.size() > max_event_bytes_) {
        fail();
    }
}

void sse_parser::dispatch(const std::function<void(sse_event&&)>& on_event) {
    const bool dispatchable = has_data_ || has_event_;
    const std::optional<std::uint64_t> retry = retry_;
    retry_.reset();
    has_data_ = false;
    has_event_ = false;
    block_open_ = false;
    if (!dispatchable) {
        event_.clear();
        data_.clear();
        return;
    }
    // The event borrows the parser's buffers and hands them back afterwards (unless on_event
    // moved them out), so a stream reuses one allocation instead of making one per event.
    out_.event.swap(event_);
    out_.data.swap(data_);
    out_.id.assign(last_id_);
    out_.retry = retry;
    ++events_;
    on_event(std::move(out_));
    event_.swap(out_.event);
    data_.swap(out_.data);
    event_.clear();
    data_.clear();
}

std::string format_sse(std::string_view data, std::string_view event) {
    std::string out;
    out.reserve(data.size() + event.size() + 16);
    if (!event.empty()) {
        out.append("event: ");
        const std::size_t name_start = out.size();
        for (const char c : event) {
            if (c != '\r' && c != '\n') {
                out.push_back(c);
            }
        }
        if (out.size() == name_start) {
            out.clear();
        } else {
            out.push_back('\n');
        }
    }
    std::size_t pos = 0;
    while (true) {
        const std::size_t end = find_line_end(data, pos);
        out.append("data: ");
        out.append(data.substr(pos, end == std::string_view::npos ? end : end - pos));
        out.push_back('\n');
        if (end == std::string_view::npos) {
            break;
        }
        pos = end + 1;
        if (data[end] == '\r' && pos < data.size() && data[pos] == '\n') {
            ++pos;
        }
    }
    out.push_back('\n');
    return out;
}

} // namespace michi::stream
