#pragma once
// The response cache's stage, between admission (and the ledger) and the exchange: when the
// route, or else the key, keeps a cache (`cache: { ttl }`), an answer kept for the same
// request answers here, as the client got it the first time (a whole answer with its status
// and type, or a stream's events replayed byte for byte), with `x-michi-cache: hit`, charged
// nothing; on a miss (`x-michi-cache: miss`) the exchange's answer is kept once it completed
// well (a 2xx whole answer, a stream that ended cleanly), within the size bound.
//
// The client's `cache-control: no-cache` skips the lookup (the answer is still kept);
// `no-store` skips both. A request that sets temperature above 0 is cached only when the
// policy says `nondeterministic: true`.

#include "michi/downstream/client_io.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/routing/plan.hpp"
#include "michi/surface/surface.hpp"

#include <memory>

namespace michi::pipeline {

// Answers the request from the cache when it can (true); else, when the answer is to be
// kept, sets ctx.cache_fill (false).
awaitable<bool> answer_from_cache(deps& d, downstream::client_io& io, request_context& ctx,
                                  const routing::dispatch_plan& plan);

// The filter of a stream, recording what reaches the client when its answer is to be kept.
std::unique_ptr<surface::stream_filter> recorded(request_context& ctx,
                                                 std::unique_ptr<surface::stream_filter> f);
// A stream's relay ended (clean: done, every byte out): its answer is kept when clean.
void stream_ended(request_context& ctx, bool clean);

} // namespace michi::pipeline
