#pragma once
// The settle stage: what the request used becomes its cost, the ledger's hold becomes that
// cost (once, as soon as it is known and before the answer's last bytes go out, so a client
// that has its answer also sees its spend), and the request log and the recent fallbacks
// get the request.

#include "michi/guard/ledger.hpp"
#include "michi/obs/fallback_log.hpp"
#include "michi/pipeline/request_context.hpp"
#include "michi/providers/translate.hpp"
#include "michi/store/request_log.hpp"

namespace michi::pipeline {

// Prices what the request used into its log entry. Without reported usage (a cut stream, an
// upstream that does not report it) the prompt estimate and the content relayed stand in.
void account(request_context& ctx, const config::model_config& model,
             const providers::usage_info& u, std::size_t content_chars);
// Settles the request's hold to its cost so far (the first call only).
void settle(request_context& ctx, guard::ledger& ledger);
// An API request's row in the request log, and its fallbacks in the recent list.
void record(const request_context& ctx, store::request_log& log, obs::fallback_log& fallbacks);

} // namespace michi::pipeline
