#pragma once
// Google Gemini API (generateContent, streamGenerateContent?alt=sse, embeddings) <-> OpenAI.

#include "michi/providers/translate.hpp"

#include <string_view>

namespace michi::providers::gemini {

// OpenAI chat request -> POST {base}/v1beta/models/{model}:generateContent, or
// :streamGenerateContent?alt=sse when stream; key in x-goog-api-key.
translated<upstream_request> build_chat(const nlohmann::json& openai_request,
                                        const std::string& upstream_model,
                                        const std::string& api_key, bool stream);
nlohmann::json to_openai(const nlohmann::json& response, const std::string& model,
                         const std::string& id, std::int64_t created, usage_info& usage);
std::unique_ptr<chunk_translator> make_stream(std::string id, std::string model,
                                              std::int64_t created, bool include_usage);
nlohmann::json error_to_openai(unsigned status, std::string_view body);

// OpenAI embeddings request -> POST {base}/v1beta/models/{model}:batchEmbedContents.
translated<upstream_request> build_embeddings(const nlohmann::json& openai_request,
                                              const std::string& upstream_model,
                                              const std::string& api_key);
// batchEmbedContents response -> OpenAI embeddings list (usage estimated when absent).
nlohmann::json embeddings_to_openai(const nlohmann::json& response, const std::string& model,
                                    usage_info& usage);

} // namespace michi::providers::gemini
