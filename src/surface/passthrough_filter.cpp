// A stream passed through to a client of the provider's own API.

#include "michi/stream/event_splitter.hpp"
#include "michi/stream/sse.hpp"
#include "michi/surface/surface.hpp"

namespace michi::surface {
namespace {

class passthrough final : public stream_filter {
public:
    passthrough(api_kind api, const providers::adapter& adapter, bool strip_usage)
        : api_(api), adapter_(adapter), strip_(strip_usage) {}

    // Whole events are found so that filtering can drop one and pass every other byte
    // unchanged. The usual event, one "data:" line, is read where it is; anything else goes
    // through the SSE parser (a first event led by a byte-order mark, which the parser drops,
    // is not a plain "data:" line either).
    std::string_view feed(std::string_view in) override {
        kept_.clear();
        if (in.empty()) {
            return {};
        }
        splitter_.feed(in, [this](std::string_view raw) { on_raw_event(raw); });
        if (splitter_.pending_size() > stream::sse_parser::default_max_event_bytes) {
            failure_ = "stream error (an event is larger than " +
                       std::to_string(stream::sse_parser::default_max_event_bytes) + " bytes)";
        }
        return strip_ ? std::string_view(kept_) : in;
    }
    std::uint64_t events() const noexcept override { return events_; }
    bool finished() const noexcept override { return false; }
    bool needs_end_event() const noexcept override { return false; }
    std::optional<std::string> failure() const override { return failure_; }
    std::string_view finish() override {
        // An unterminated last event, passed on as it was (unfiltered, it has gone already).
        return strip_ ? splitter_.pending() : std::string_view{};
    }
    std::string broken(std::string_view message) const override {
        return broken_event(api_, message);
    }
    const providers::usage_info& usage() const noexcept override { return usage_; }
    std::size_t content_chars() const noexcept override { return content_chars_; }

private:
    void on_raw_event(std::string_view raw) {
        drop_ = false;
        const auto data = splitter_.single_data_line(raw);
        if (first_event_ && data) {
            sse_.started_without_bom(); // (a BOM would have failed single_data_line)
        }
        first_event_ = false;
        if (data) {
            inspect(*data);
        } else {
            sse_.feed(raw, [this](stream::sse_event&& ev) { inspect(ev.data); });
        }
        if (strip_ && !drop_) {
            kept_.append(raw);
        }
    }
    // Looks at each event for usage (and the content, in case usage never comes).
    void inspect(std::string_view data) {
        ++events_;
        if (adapter_.read_event(api_, data, usage_, content_chars_)) {
            drop_ = strip_;
        }
    }

    api_kind api_;
    const providers::adapter& adapter_;
    bool strip_;
    stream::sse_parser sse_;
    stream::event_splitter splitter_;
    std::string kept_; // this piece's events, when filtering
    providers::usage_info usage_;
    std::optional<std::string> failure_;
    std::uint64_t events_ = 0;
    std::size_t content_chars_ = 0;
    bool drop_ = false;
    bool first_event_ = true;
};

} // namespace

std::unique_ptr<stream_filter> passthrough_filter(api_kind api, const providers::adapter& adapter,
                                                  bool strip_usage) {
    return std::make_unique<passthrough>(api, adapter, strip_usage);
}

} // namespace michi::surface
