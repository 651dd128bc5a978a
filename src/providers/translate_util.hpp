#pragma once
// Private helpers shared by the provider translators (anthropic_*.cpp, gemini*.cpp); not a
// public interface.

#include "michi/core/json_parse.hpp"
#include "michi/providers/translate.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace michi::providers::translate_util {

using json = nlohmann::json;

// Serialises without ever throwing on invalid UTF-8 (replaced by U+FFFD).
inline std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The first max bytes of text, trimmed, as valid UTF-8 (bad bytes become U+FFFD).
inline std::string clean_text(std::string_view text, std::size_t max) {
    const std::size_t begin = text.find_first_not_of(" \t\r\n");
    if (begin == std::string_view::npos) {
        return {};
    }
    text = text.substr(begin, text.find_last_not_of(" \t\r\n") + 1 - begin).substr(0, max);
    return json::parse(dump(json(std::string(text))), nullptr, false).get<std::string>();
}

// Base of the stream translators that emit OpenAI chat.completion.chunk objects: the fields
// every chunk of one stream repeats.
class openai_chunk_stream : public chunk_translator {
public:
    openai_chunk_stream(std::string id, std::string model, std::int64_t created, bool include_usage)
        : id_(std::move(id)), model_(std::move(model)), created_(created),
          include_usage_(include_usage) {}

protected:
    // A chunk without choices yet: id, object, created, model.
    json base_chunk() const {
        return {{"id", id_},
                {"object", "chat.completion.chunk"},
                {"created", created_},
                {"model", model_}};
    }

    std::string id_;
    std::string model_;
    std::int64_t created_;
    bool include_usage_;
};

} // namespace michi::providers::translate_util
