#pragma once
// Where a relayed response body comes from, piece by piece: an upstream's answer read from
// its connection, or a local provider's output made as it is asked for. The relay asks for
// the next piece only once the previous one reached the client: that is the backpressure,
// and what keeps a stream's memory constant.

#include "michi/core/net.hpp"

#include <functional>
#include <string_view>
#include <utility>

namespace michi::stream {

class body_source {
public:
    virtual ~body_source() = default;
    // The next piece of the body, a view valid until the next call (empty at the end).
    // `before_wait`, when given, runs before the source waits for the network (not when the
    // piece was at hand already).
    virtual awaitable<std::pair<error_code, std::string_view>>
    next(const std::function<void()>* before_wait) = 0;
    // The next piece when it is at hand without a wait (the source already holds it): true,
    // with the piece in `out` as next() would give it; false when next() must be awaited.
    // Saves the relay a suspension and its coroutine frames a piece that was already read.
    virtual bool next_at_hand(std::pair<error_code, std::string_view>& /*out*/) { return false; }
    // The body has ended cleanly.
    virtual bool done() const noexcept = 0;
    // Ends a pending next() at once (the client went away, the stream broke); the source is
    // then spent.
    virtual void abort() noexcept = 0;
    // The body ended cleanly and was read to its end: what the source holds may be kept for
    // another request (an upstream connection goes back to its pool).
    virtual void release() noexcept {}
};

} // namespace michi::stream
