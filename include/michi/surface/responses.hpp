#pragma once
// The OpenAI Responses API (POST /v1/responses, stateless) over the pivot form: a Responses
// request becomes an OpenAI chat request, and the pivot's chat.completion answers and
// chat.completion.chunk streams become Responses `response` objects and OpenAI's stream
// events. Pure functions and one stream writer: no I/O, never a throw on hostile JSON.

#include "michi/providers/translate.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace michi::surface::responses {

// A Responses request -> an OpenAI chat request (model kept as given). What the request asks
// that a chat target cannot do is refused (translate_error::unsupported, the field's path
// in param: "input[3].content[1]", "tools[2]"); hints that cannot change the answer are
// dropped (the list is in responses_request.cpp).
providers::translated<nlohmann::json> request_to_chat(const nlohmann::json& responses_request);

// A pivot chat.completion -> a Responses `response` object as OpenAI returns it: status,
// output items (reasoning, message, function calls), usage, and the request's settings echoed.
// `request` is the client's Responses request (its tools name the namespaced functions);
// `model` the model as the client named it; `response_id` "resp_..." (item ids derive from
// it); `created` the Unix time of the answer.
nlohmann::json chat_to_response(const nlohmann::json& completion, const nlohmann::json& request,
                                const std::string& model, const std::string& response_id,
                                std::int64_t created);

// Pivot chunks -> the Responses API's stream events, each a complete SSE event text
// ("event: <type>\ndata: {...}\n\n"), numbered by sequence_number from 0: response.created,
// response.in_progress, one output item at a time (added, its parts and deltas, done), and
// response.completed (or response.incomplete) with the whole response.
class stream_writer {
public:
    stream_writer(std::string response_id, std::string model, const nlohmann::json& request,
                  std::int64_t created);
    ~stream_writer();
    stream_writer(stream_writer&&) noexcept;
    stream_writer& operator=(stream_writer&&) noexcept;

    // One pivot chunk (parsed); appends zero or more events. Usage comes in the last chunk
    // (choices: [] with usage).
    void on_chunk(const nlohmann::json& pivot_chunk, std::string& out);
    // Closes the open item and ends the response (response.completed, or response.incomplete
    // when the answer was cut by the token limit or the content filter). Once only.
    void finish(std::string& out);
    // The response.failed event that ends this stream when it broke after it started: the
    // response as far as it went, with error {code: "server_error", message}.
    std::string failed_event(std::string_view message) const;
    // The `error` event for a Responses stream that broke with no writer (a passed-through
    // one): {type: "error", code: "server_error", message, param: null, sequence_number}.
    static std::string error_event(std::string_view message, std::uint64_t sequence_number = 0);

private:
    struct state;
    std::unique_ptr<state> s_;
};

} // namespace michi::surface::responses
