#pragma once
// The built-in `echo` provider: answers with the last user message, streams it word by
// word, and reports usage. Pure functions, no I/O.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace michi::providers::echo {

struct reply {
    std::string text;
    std::uint64_t prompt_tokens = 0;
    std::uint64_t completion_tokens = 0;
};

// The text to echo and its token counts for a chat completions request body.
reply make_reply(const nlohmann::json& request);
// A chat.completion object.
nlohmann::json completion(const reply& r, const std::string& model, const std::string& id,
                          std::int64_t created);
// The data payloads of a chat.completion.chunk stream (without "data: " framing),
// ending with "[DONE]"; a usage chunk is included when include_usage is set.
std::vector<std::string> stream_chunks(const reply& r, const std::string& model,
                                       const std::string& id, std::int64_t created,
                                       bool include_usage);

// An OpenAI embeddings list for the request's input (one or many strings): small
// deterministic vectors derived from each text, with usage.
nlohmann::json embeddings(const nlohmann::json& request, const std::string& model);

} // namespace michi::providers::echo
