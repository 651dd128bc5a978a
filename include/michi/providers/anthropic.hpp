#pragma once
// Anthropic Messages API <-> OpenAI Chat Completions, both ways.

#include "michi/providers/translate.hpp"

#include <string_view>

namespace michi::providers::anthropic {

inline constexpr std::string_view api_version = "2023-06-01";
// The beta that structured outputs (a JSON schema the answer follows) need.
inline constexpr std::string_view structured_outputs_beta = "structured-outputs-2025-11-13";
// max_tokens sent when the OpenAI request has neither max_tokens nor max_completion_tokens.
inline constexpr std::uint64_t default_max_tokens = 4096;

// OpenAI chat request -> POST {base}/v1/messages with x-api-key and anthropic-version.
translated<upstream_request> build_chat(const nlohmann::json& openai_request,
                                        const std::string& upstream_model,
                                        const std::string& api_key, bool stream);
// Anthropic message response -> OpenAI chat.completion (model as given); fills usage.
nlohmann::json to_openai(const nlohmann::json& response, const std::string& model,
                         const std::string& id, std::int64_t created, usage_info& usage);
// Anthropic stream events -> OpenAI chunks (a usage chunk at the end when include_usage).
std::unique_ptr<chunk_translator> make_stream(std::string id, std::string model,
                                              std::int64_t created, bool include_usage);
// An Anthropic error body (any status) -> an OpenAI error body.
nlohmann::json error_to_openai(unsigned status, std::string_view body);

// The gateway's own /v1/messages endpoint: Anthropic requests in, any provider behind.
// Anthropic request -> OpenAI chat request (model kept as given).
translated<nlohmann::json> request_from_messages(const nlohmann::json& messages_request);
// OpenAI chat.completion -> Anthropic message (model as given).
nlohmann::json response_to_messages(const nlohmann::json& openai_response,
                                    const std::string& model);

// OpenAI chunks -> Anthropic stream events (message_start, content_block_*, message_delta,
// message_stop), each returned as a complete SSE event text ("event: x\ndata: {...}\n\n").
class messages_stream_writer {
public:
    messages_stream_writer(std::string id, std::string model);
    // One OpenAI chunk payload (parsed); appends zero or more SSE event texts.
    void on_chunk(const nlohmann::json& chunk, std::string& out);
    // Closes open blocks and ends the message (message_delta with usage, message_stop).
    void finish(std::string& out);
    // An error event for a stream that broke after it started.
    static std::string error_event(std::string_view message);

private:
    struct state;
    std::shared_ptr<state> s_;
};

} // namespace michi::providers::anthropic
