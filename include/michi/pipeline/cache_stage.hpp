#pragma once
// The response cache's stage, looked up between admission and the ledger (the ledger admits a
// hit as free: checked and counted, holding nothing) and answered after the ledger, before the
// exchange: when the route, or else the key, keeps a cache (`cache: { ttl }`), an answer kept
// for the same request answers here, as the client got it the first time (a whole answer with
// its status and type, or a stream's events replayed byte for byte), with `x-michi-cache: hit`,
// charged nothing; on a miss (`x-michi-cache: miss`) the exchange's answer is kept once it
// completed well (a 2xx whole answer, a stream that ended cleanly), within the size bound.
//
// The client's `cache-control: no-cache` skips the lookup (the answer is still kept);
// `no-store` skips both. A request that sets temperature above 0 is cached only when the
// policy says `nondeterministic: true`.

#include "michi/cache/cached_answer.hpp"
#include "michi/downstream/client_io.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/routing/plan.hpp"
#include "michi/surface/surface.hpp"

#include <memory>
#include <string>

namespace michi::pipeline {

// What the cache said of a request, looked up before the ledger (a hit holds nothing of the
// key's budgets: it is admitted as free) and answered after it.
struct cache_lookup {
    const config::cache_policy* policy = nullptr; // null: the request does not use the cache
    bool no_cache = false;                        // the client's cache-control: no-cache
    std::shared_ptr<const cache::cached_answer> hit;
    std::string digest;  // the key's, for the fill on a miss (or the lookup in Redis)
    std::string headers; // what else the key covers (the anthropic-* headers)
};

enum class lookup { done, elsewhere };

// The lookup without a suspension: the key (one remembered, or made here) and memory; else
// (a large body's key, made off the event loop, or Redis to be asked) look_up_elsewhere.
lookup look_up_here(deps& d, request_context& ctx, const routing::dispatch_plan& plan,
                    cache_lookup& look);
// The rest of the lookup; true when the request ended there (its answer went out).
awaitable<bool> look_up_elsewhere(deps& d, downstream::client_io& io, request_context& ctx,
                                  const routing::dispatch_plan& plan, cache_lookup& look);

// Once the ledger admitted the request: a hit answers (counted, charged nothing), as the
// client got it the first time; `hit` must stay put until this is done.
awaitable<void> answer_from_cache(deps& d, downstream::client_io& io, request_context& ctx,
                                  const cache::cached_answer& hit);
// Else, when the request uses the cache, a miss: counted, and ctx.cache_fill set to keep the
// answer.
void note_miss(deps& d, request_context& ctx, cache_lookup& look);

// The filter of a stream, recording what reaches the client when its answer is to be kept.
std::unique_ptr<surface::stream_filter> recorded(request_context& ctx,
                                                 std::unique_ptr<surface::stream_filter> f);
// A stream's relay ended (clean: done, every byte out): its answer is kept when clean.
void stream_ended(request_context& ctx, bool clean);

} // namespace michi::pipeline
