#pragma once
// The client's side of an answer, shaped for the API the client called: its errors, a whole
// answer given in pivot form (OpenAI chat completions), and a stream's events, passed
// through or turned from the pivot chunks into the client's API's events.

#include "michi/core/api.hpp"
#include "michi/core/error.hpp"
#include "michi/core/result.hpp"
#include "michi/providers/adapter.hpp"
#include "michi/stream/event_filter.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace michi::surface {

// A request of the client's API in pivot form (a Chat Completions request), for a target that
// does not speak that API; 400 naming what the pivot form cannot carry.
result<nlohmann::json> to_pivot(api_kind api, nlohmann::json request);

// The body of one of the gateway's own errors in the client's API.
std::string error_body(api_kind api, const gateway_error& err);
// An upstream's error, given as an OpenAI error body (pivot), in the client's API.
std::string upstream_error_body(api_kind api, unsigned status, const nlohmann::json& pivot);
// A whole success answer in pivot form, in the client's API (client_model: the model as
// the client named it, which an Anthropic message repeats; client_body: the client's request
// as sent and answer_id the answer's own id, which a Responses API answer takes and echoes).
std::string whole_answer(api_kind api, const nlohmann::json& pivot, const std::string& client_model,
                         std::string_view client_body = {}, std::string_view answer_id = {});
// The error event that ends a stream broken after its commit point, when no translating
// filter knows the stream's state (a Responses stream's is an `error` event then: its
// response.failed must repeat the response's id).
std::string broken_event(api_kind api, std::string_view message);

// A stream's filter that also notes the usage its events report.
class stream_filter : public stream::event_filter {
public:
    // Usage as the events reported it, and the content relayed (for an estimate without it).
    virtual const providers::usage_info& usage() const noexcept = 0;
    virtual std::size_t content_chars() const noexcept = 0;
};

// A stream passed through as it came: every byte unchanged, but for the usage-only event
// when strip_usage (the gateway asked for it, the client did not).
std::unique_ptr<stream_filter> passthrough_filter(api_kind api, const providers::adapter& adapter,
                                                  bool strip_usage);
// A stream turned into the client's API's events: the provider's events become pivot chunks
// (translator), which become the client's events (message_id: the answer's own id;
// client_body: the client's request as sent, which a Responses stream echoes).
std::unique_ptr<stream_filter>
translating_filter(api_kind api, std::unique_ptr<providers::chunk_translator> translator,
                   std::string message_id, std::string client_model,
                   std::string_view client_body = {});

} // namespace michi::surface
