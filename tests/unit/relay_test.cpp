// The one stream relay without sockets: a scripted body source and a client that records what
// was written. The commit point, backpressure order, the last piece going out with the last
// chunk, failures before and after the commit point, a client that goes away.

#include "michi/providers/adapter.hpp"
#include "michi/stream/relay.hpp"
#include "michi/surface/surface.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <deque>

namespace michi::stream {
namespace {

// A body source that hands out scripted pieces, one per next(); an error piece fails.
class scripted_source final : public body_source {
public:
    struct piece {
        std::string bytes;
        error_code ec;
        bool waits = false; // came from the network after a wait (not already buffered)
    };
    explicit scripted_source(std::deque<piece> script) : script_(std::move(script)) {}

    awaitable<std::pair<error_code, std::string_view>>
    next(const std::function<void()>* before_wait) override {
        ++reads;
        current_ = std::move(script_.front());
        script_.pop_front();
        if (before_wait != nullptr && current_.waits) {
            (*before_wait)();
        }
        co_return std::pair{current_.ec, std::string_view(current_.bytes)};
    }
    // Pieces that came without a wait are at hand when offers_at_hand is set.
    bool next_at_hand(std::pair<error_code, std::string_view>& out) override {
        if (!offers_at_hand || script_.empty() || script_.front().waits) {
            return false;
        }
        ++reads;
        ++at_hand_reads;
        current_ = std::move(script_.front());
        script_.pop_front();
        out = {current_.ec, std::string_view(current_.bytes)};
        return true;
    }
    bool done() const noexcept override { return script_.empty(); }
    void abort() noexcept override { aborted = true; }
    void release() noexcept override {
        released = true;
        if (scribble_on_release) { // as a connection back in its pool may read into its buffer
            std::fill(current_.bytes.begin(), current_.bytes.end(), '#');
        }
    }

    int reads = 0;
    int at_hand_reads = 0;
    bool offers_at_hand = false;
    bool scribble_on_release = false;
    bool aborted = false;
    bool released = false;

private:
    std::deque<piece> script_;
    piece current_;
};

// A client that records every write: what went out and whether the head was with it.
class recording_client final : public downstream::client_io {
public:
    struct write {
        bool head = false;
        std::string data;
        bool last = false;
    };
    explicit recording_client(net::io_context& ioc)
        : downstream::client_io(lowest_store_, nullptr), lowest_store_(ioc.get_executor()) {}

    awaitable<error_code> write_stream(std::string_view head, std::string_view data,
                                       bool last) override {
        writes.push_back({!head.empty(), std::string(data), last});
        if (fail_after >= 0 && static_cast<int>(writes.size()) > fail_after) {
            co_return error_code(net::error::broken_pipe);
        }
        co_return error_code{};
    }
    void watch_disconnect(std::function<void()> on_gone) override {
        watched = true;
        gone = std::move(on_gone);
    }
    void unwatch() noexcept override {}

    std::vector<write> writes;
    int fail_after = -1; // writes that succeed before the rest fail
    bool watched = false;
    std::function<void()> gone;

private:
    tcp_stream lowest_store_;
};

struct outcome {
    relay_result result = relay_result::done;
    relay_failure failure;
    bool committed = false;
    bool commit_goes_on = false; // the write that committed was not the stream's last
    bool ended = false;
};

// A relay of src through an OpenAI passthrough filter to a recording client.
struct relay_run {
    net::io_context ioc;
    recording_client io{ioc};
    std::unique_ptr<surface::stream_filter> filter = surface::passthrough_filter(
        api_kind::chat, providers::adapter_for(config::provider_type::openai), true);

    outcome go(scripted_source& src) {
        outcome out;
        relay_client client{io, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "p/m",
                            [&](bool goes_on) {
                                out.committed = true;
                                out.commit_goes_on = goes_on;
                            },
                            [&](relay_result) { out.ended = true; }};
        net::co_spawn(
            ioc,
            [&]() -> awaitable<void> {
                out.result = co_await relay(src, *filter, client, out.failure);
            },
            net::detached);
        ioc.run();
        return out;
    }
};

std::string event(const std::string& content) {
    return R"(data: {"choices":[{"delta":{"content":")" + content + "\"}}]}\n\n";
}
const std::string usage_event =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n";

TEST(RelayTest, NothingGoesOutBeforeTheFirstCompleteEvent) {
    const std::string first = event("a");
    scripted_source src({{first.substr(0, 10), {}},
                         {first.substr(10), {}},
                         {event("b"), {}},
                         {"data: [DONE]\n\n", {}}});
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::done);
    ASSERT_EQ(r.io.writes.size(), 3u);
    // The commit point: the head with the first whole event, never before it.
    EXPECT_TRUE(r.io.writes[0].head);
    EXPECT_EQ(r.io.writes[0].data, first);
    EXPECT_EQ(r.io.writes[1].data, event("b"));
    // The last piece goes out with the last chunk.
    EXPECT_EQ(r.io.writes[2].data, "data: [DONE]\n\n");
    EXPECT_TRUE(r.io.writes[2].last);
    EXPECT_TRUE(out.committed && out.ended);
    EXPECT_TRUE(out.commit_goes_on); // the request's storage may go while the stream lasts
    EXPECT_TRUE(src.released);
}

TEST(RelayTest, AWholeStreamInOnePieceIsOneWrite) {
    scripted_source src({{event("a") + usage_event + "data: [DONE]\n\n", {}}});
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::done);
    ASSERT_EQ(r.io.writes.size(), 1u);
    EXPECT_TRUE(r.io.writes[0].head && r.io.writes[0].last);
    // The usage event the client did not ask for is dropped; every other byte is as it came.
    EXPECT_EQ(r.io.writes[0].data, event("a") + "data: [DONE]\n\n");
    EXPECT_EQ(r.filter->usage().completion_tokens, 2u);
    EXPECT_FALSE(r.io.watched); // it never waited for the upstream
    EXPECT_TRUE(out.committed);
    EXPECT_FALSE(out.commit_goes_on); // committed by the write that ended it
}

// Passed through untouched, the last piece goes out from where the source holds it, and the
// source is let go only after that write.
TEST(RelayTest, TheLastPieceIsWrittenFromTheSourceBeforeItIsLetGo) {
    const std::string body = event("a") + usage_event + "data: [DONE]\n\n";
    scripted_source src({{event("0"), {}}, {body, {}}});
    src.scribble_on_release = true;
    relay_run r;
    r.filter = surface::passthrough_filter(
        api_kind::chat, providers::adapter_for(config::provider_type::openai), false);
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::done);
    ASSERT_EQ(r.io.writes.size(), 2u);
    EXPECT_EQ(r.io.writes[1].data, body);
    EXPECT_TRUE(r.io.writes[1].last);
    EXPECT_TRUE(src.released);
    EXPECT_EQ(r.filter->usage().completion_tokens, 2u);
}

// What the filter ends with (here an unterminated last event) follows the last piece's
// output in the same write, the head included when nothing went out before.
TEST(RelayTest, TheFiltersEndFollowsTheLastPieceInOneWrite) {
    scripted_source src({{event("a") + "data: [DONE]", {}}});
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::done);
    ASSERT_EQ(r.io.writes.size(), 1u);
    EXPECT_TRUE(r.io.writes[0].head && r.io.writes[0].last);
    EXPECT_EQ(r.io.writes[0].data, event("a") + "data: [DONE]");
}

TEST(RelayTest, AStreamThatWaitsForTheUpstreamWatchesTheClient) {
    scripted_source src({{event("a"), {}}, {event("b"), {}, true}, {"data: [DONE]\n\n", {}, true}});
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::done);
    EXPECT_TRUE(r.io.watched);
}

// Pieces the source already holds are taken without awaiting next(); what the client gets is
// the same, write for write, and a piece that needs a wait still goes through next() and
// starts the client's watch.
TEST(RelayTest, PiecesAtHandAreRelayedAsThoseAwaited) {
    const auto script = [] {
        return std::deque<scripted_source::piece>{{event("a"), {}},
                                                  {event("b"), {}},
                                                  {event("c"), {}, true},
                                                  {usage_event + "data: [DONE]\n\n", {}}};
    };
    scripted_source awaited(script());
    relay_run by_next;
    const auto out_awaited = by_next.go(awaited);
    scripted_source at_hand(script());
    at_hand.offers_at_hand = true;
    relay_run by_hand;
    const auto out_at_hand = by_hand.go(at_hand);

    EXPECT_EQ(out_at_hand.result, relay_result::done);
    EXPECT_EQ(out_awaited.result, relay_result::done);
    EXPECT_EQ(at_hand.reads, 4);
    EXPECT_EQ(at_hand.at_hand_reads, 3); // all but the one that waited
    EXPECT_TRUE(by_hand.io.watched);
    ASSERT_EQ(by_hand.io.writes.size(), by_next.io.writes.size());
    for (std::size_t i = 0; i < by_hand.io.writes.size(); ++i) {
        EXPECT_EQ(by_hand.io.writes[i].head, by_next.io.writes[i].head) << i;
        EXPECT_EQ(by_hand.io.writes[i].data, by_next.io.writes[i].data) << i;
        EXPECT_EQ(by_hand.io.writes[i].last, by_next.io.writes[i].last) << i;
    }
    EXPECT_EQ(by_hand.io.writes.back().data, "data: [DONE]\n\n");
    EXPECT_EQ(by_hand.filter->usage().completion_tokens, 2u);
    EXPECT_TRUE(at_hand.released);
}

TEST(RelayTest, AFailureBeforeTheCommitPointWritesNothingAndLetsTheExchangeFallBack) {
    scripted_source src({{"data: {\"choi", {}}, {"", net::error::connection_reset}});
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::failed_before_commit);
    EXPECT_TRUE(r.io.writes.empty());
    EXPECT_FALSE(out.ended); // nothing to settle: another target may still serve it
    EXPECT_TRUE(src.aborted);
    EXPECT_NE(out.failure.why.find("stream error"), std::string::npos);
}

TEST(RelayTest, AFailureAfterTheCommitPointEndsWithAnErrorEvent) {
    scripted_source src({{event("a"), {}}, {event("b"), {}}, {"", beast::error::timeout}});
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::failed_after_commit);
    EXPECT_TRUE(out.failure.timeout);
    ASSERT_EQ(r.io.writes.size(), 4u);
    EXPECT_NE(r.io.writes[2].data.find("\"code\":\"upstream_error\""), std::string::npos);
    EXPECT_NE(r.io.writes[2].data.find("Upstream p/m stream broke off: stream timeout"),
              std::string::npos);
    EXPECT_TRUE(r.io.writes[3].last);
    EXPECT_EQ(r.io.writes[3].data, "");
    EXPECT_TRUE(out.ended); // what was relayed is charged
}

TEST(RelayTest, AClientThatGoesAwayStopsTheRelay) {
    scripted_source src(
        {{event("a"), {}}, {event("b"), {}}, {event("c"), {}}, {"data: [DONE]\n\n", {}}});
    relay_run r;
    r.io.fail_after = 1; // the commit write succeeds, the next fails
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::client_gone);
    EXPECT_EQ(src.reads, 2); // no upstream read after the failed write (backpressure)
    EXPECT_TRUE(src.aborted);
}

TEST(RelayTest, AnEventThatNeverEndsIsNotHeldWithoutBound) {
    std::deque<scripted_source::piece> script;
    script.push_back({"data: ", {}});
    const std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 6; ++i) {
        script.push_back({chunk, {}});
    }
    script.push_back({"\n\n", {}});
    scripted_source src(std::move(script));
    relay_run r;
    const auto out = r.go(src);
    EXPECT_EQ(out.result, relay_result::failed_before_commit);
    EXPECT_LT(src.reads, 8);
}

} // namespace
} // namespace michi::stream
