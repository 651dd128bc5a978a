#pragma once
// The one stream relay: reads the body piece by piece, passes each through the event filter,
// and writes what comes out to the client, one HTTP chunk a piece; the next piece is read
// only once that write completed (backpressure: constant memory per stream, whatever the
// client's speed). Nothing reaches the client before the first complete upstream event: the
// commit point. Before it the exchange may still fall back to another target; after it, a
// stream that breaks ends with an error event in the client's API.

#include "michi/downstream/client_io.hpp"
#include "michi/stream/body_source.hpp"
#include "michi/stream/event_filter.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace michi::stream {

enum class relay_result { done, failed_before_commit, failed_after_commit, client_gone };

// The client's side of one relay.
struct relay_client {
    downstream::client_io& io;
    // The stream's response head, serialised whole (written at commit): its status line, its
    // fields (Transfer-Encoding: chunked among them) and the blank line. Its bytes stay put
    // until the relay returns (the connection's stream_head_room()).
    std::string_view head;
    std::string target; // what serves it ("provider/model"), for errors
    // The commit point passed (its time, and the request's body no longer needed). goes_on:
    // more is to come after the write that commits (false when that write ends the stream:
    // nothing is worth letting go of then, the connection's next request reuses the room).
    std::function<void(bool goes_on)> on_commit;
    // The stream ended (not failed before its commit point): runs before its last bytes go
    // out, so that what it cost is settled before the client has the whole answer.
    std::function<void(relay_result)> on_end;
    // Set when a write to the client failed: the connection cannot carry another response.
    bool broken = false;
};

// Why a relay did not end cleanly.
struct relay_failure {
    std::string why;
    bool timeout = false; // the upstream went silent for longer than its timeout
};

// Relays src through f to the client.
awaitable<relay_result> relay(body_source& src, event_filter& f, relay_client& client,
                              relay_failure& failure);

} // namespace michi::stream
