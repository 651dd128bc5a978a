// OpenAI /v1/embeddings <-> Gemini batchEmbedContents.

#include "michi/providers/gemini.hpp"

#include "gemini_detail.hpp"

namespace michi::providers::gemini {
namespace {

using detail::count_at;
using detail::fail;
using detail::find;
using detail::json;

std::vector<std::string> inputs(const json& request) {
    const json* input = find(request, "input");
    if (input != nullptr && input->is_string()) {
        return {input->get<std::string>()};
    }
    if (input == nullptr || !input->is_array() || input->empty()) {
        fail("input must be a string or a non-empty array of strings", "input");
    }
    std::vector<std::string> texts;
    for (const json& item : *input) {
        if (item.is_number() || item.is_array()) {
            fail("token arrays are not supported by Gemini", "input");
        }
        if (!item.is_string()) {
            fail("input must be a string or a non-empty array of strings", "input");
        }
        texts.push_back(item.get<std::string>());
    }
    return texts;
}

upstream_request build(const json& request, const std::string& model, const std::string& key) {
    if (!request.is_object()) {
        fail("the request body must be a JSON object", "");
    }
    const json* dimensions = find(request, "dimensions");
    if (dimensions != nullptr && !dimensions->is_null() &&
        (!dimensions->is_number_unsigned() || dimensions->get<std::uint64_t>() == 0)) {
        fail("dimensions must be a positive integer", "dimensions");
    }
    const std::string id = detail::model_id(model);
    json requests = json::array();
    for (std::string& text : inputs(request)) {
        json one = {{"model", "models/" + id},
                    {"content", {{"parts", json::array({{{"text", std::move(text)}}})}}}};
        if (dimensions != nullptr && !dimensions->is_null()) {
            one["outputDimensionality"] = *dimensions;
        }
        requests.push_back(std::move(one));
    }
    return detail::make_request("/v1beta/models/" + id + ":batchEmbedContents", key,
                                {{"requests", std::move(requests)}});
}

json embeddings_list(const json& response, const std::string& model, usage_info& usage) {
    json data = json::array();
    std::uint64_t reported = 0; // Vertex-style per-embedding statistics.tokenCount
    const json* embeddings = find(response, "embeddings");
    if (embeddings != nullptr && embeddings->is_array()) {
        for (const json& embedding : *embeddings) {
            const json* values = find(embedding, "values");
            if (const json* stats = find(embedding, "statistics")) {
                reported += count_at(*stats, "tokenCount");
            }
            data.push_back(
                {{"object", "embedding"},
                 {"index", data.size()},
                 {"embedding", values != nullptr && values->is_array() ? *values : json::array()}});
        }
    }
    if (const json* meta = find(response, "usageMetadata"); meta != nullptr && reported == 0) {
        reported = count_at(*meta, "promptTokenCount");
    }
    // Gemini usually reports nothing: then usage.prompt_tokens as passed in is kept, the
    // caller's estimate of the input (the response does not carry the texts to count).
    const std::uint64_t prompt = reported != 0 ? reported : usage.prompt_tokens;
    usage = usage_info{true, prompt, 0, 0, 0, 0, 0};
    return {{"object", "list"},
            {"data", std::move(data)},
            {"model", model},
            {"usage", {{"prompt_tokens", prompt}, {"total_tokens", prompt}}}};
}

} // namespace

translated<upstream_request> build_embeddings(const nlohmann::json& openai_request,
                                              const std::string& upstream_model,
                                              const std::string& api_key) {
    return detail::guarded([&] { return build(openai_request, upstream_model, api_key); });
}

nlohmann::json embeddings_to_openai(const nlohmann::json& response, const std::string& model,
                                    usage_info& usage) {
    try {
        return embeddings_list(response, model, usage);
    } catch (const std::exception&) {
        return embeddings_list(json::object(), model, usage);
    }
}

} // namespace michi::providers::gemini
