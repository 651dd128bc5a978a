#pragma once
// What a relay does with a stream's events on their way to the client: passes the bytes on
// as they came (dropping, at most, whole events), or turns them into the events of the
// client's API.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace michi::stream {

class event_filter {
public:
    virtual ~event_filter() = default;
    // Takes the next piece of the upstream body (split anywhere); returns the bytes for the
    // client, a view of `in` or of the filter's own text, valid until the next call.
    virtual std::string_view feed(std::string_view in) = 0;
    // Complete upstream events so far: the commit point is the first.
    virtual std::uint64_t events() const noexcept = 0;
    // The provider's last event came: what is left of the body carries nothing more.
    virtual bool finished() const noexcept = 0;
    // Whether a stream must say its last event (a translated one) or may simply end (a
    // passed-through one ends with its body).
    virtual bool needs_end_event() const noexcept = 0;
    // Why the stream cannot go on (an upstream error event, an event too large), if so.
    virtual std::optional<std::string> failure() const = 0;
    // What ends a clean stream: an unterminated last event passed on, [DONE], message_stop.
    // The view the last feed() returned stays valid (the relay writes both at once).
    virtual std::string_view finish() = 0;
    // The error event that ends a stream broken after the commit point, in the client's API.
    virtual std::string broken(std::string_view message) const = 0;
};

} // namespace michi::stream
