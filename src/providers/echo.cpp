#include "michi/providers/echo.hpp"

#include "michi/providers/token_estimate.hpp"

namespace michi::providers::echo {
namespace {

// Serialises without ever throwing: a client's model name may hold invalid UTF-8.
std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// An embeddings input that is not a string (token ids, or anything else), as text to hash:
// its scalars in order, without walking into nested arrays or objects.
std::string input_text(const nlohmann::json& item) {
    if (!item.is_array()) {
        return item.is_structured() ? std::string(item.type_name()) : dump(item);
    }
    std::string out;
    for (const auto& e : item) {
        out += e.is_structured() ? std::string(e.type_name()) : dump(e);
        out += ',';
    }
    return out;
}

std::string content_text(const nlohmann::json& content) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    std::string out;
    if (content.is_array()) {
        for (const auto& part : content) {
            if (part.is_object() && part.contains("text") && part["text"].is_string()) {
                if (!out.empty()) {
                    out += ' ';
                }
                out += part["text"].get<std::string>();
            }
        }
    }
    return out;
}

nlohmann::json usage_json(const reply& r) {
    return {{"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"total_tokens", r.prompt_tokens + r.completion_tokens}};
}

nlohmann::json chunk(const std::string& id, std::int64_t created, const std::string& model,
                     nlohmann::json delta, nlohmann::json finish) {
    return {{"id", id},
            {"object", "chat.completion.chunk"},
            {"created", created},
            {"model", model},
            {"choices", nlohmann::json::array({{{"index", 0},
                                                {"delta", std::move(delta)},
                                                {"finish_reason", std::move(finish)}}})}};
}

} // namespace

reply make_reply(const nlohmann::json& request) {
    reply r;
    const auto messages = request.find("messages");
    if (messages != request.end() && messages->is_array()) {
        for (auto it = messages->rbegin(); it != messages->rend(); ++it) {
            const auto role = it->is_object() ? it->find("role") : it->end();
            if (it->is_object() && role != it->end() && *role == "user" &&
                it->contains("content")) {
                r.text = content_text((*it)["content"]);
                break;
            }
        }
    }
    r.prompt_tokens = estimate_prompt_tokens(request);
    r.completion_tokens = std::max<std::uint64_t>(1, estimate_text_tokens(r.text));
    return r;
}

nlohmann::json completion(const reply& r, const std::string& model, const std::string& id,
                          std::int64_t created) {
    return {{"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices",
             nlohmann::json::array({{{"index", 0},
                                     {"message", {{"role", "assistant"}, {"content", r.text}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", "stop"}}})},
            {"usage", usage_json(r)}};
}

std::vector<std::string> stream_chunks(const reply& r, const std::string& model,
                                       const std::string& id, std::int64_t created,
                                       bool include_usage) {
    std::vector<std::string> out;
    out.push_back(
        dump(chunk(id, created, model, {{"role", "assistant"}, {"content", ""}}, nullptr)));
    // One chunk per word, each keeping its leading space, so the pieces join back exactly.
    std::size_t start = 0;
    while (start < r.text.size()) {
        std::size_t end = r.text.find(' ', start + 1);
        if (end == std::string::npos) {
            end = r.text.size();
        }
        out.push_back(dump(
            chunk(id, created, model, {{"content", r.text.substr(start, end - start)}}, nullptr)));
        start = end;
    }
    out.push_back(dump(chunk(id, created, model, nlohmann::json::object(), "stop")));
    if (include_usage) {
        nlohmann::json u = {
            {"id", id},       {"object", "chat.completion.chunk"},  {"created", created},
            {"model", model}, {"choices", nlohmann::json::array()}, {"usage", usage_json(r)}};
        out.push_back(dump(u));
    }
    out.emplace_back("[DONE]");
    return out;
}

nlohmann::json embeddings(const nlohmann::json& request, const std::string& model) {
    std::vector<std::string> inputs;
    const auto input = request.find("input");
    if (input != request.end() && input->is_string()) {
        inputs.push_back(input->get<std::string>());
    } else if (input != request.end() && input->is_array()) {
        for (const auto& item : *input) {
            inputs.push_back(item.is_string() ? item.get<std::string>() : input_text(item));
        }
    }
    nlohmann::json data = nlohmann::json::array();
    std::uint64_t tokens = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        // 8 dimensions from a simple rolling hash of the text: same text, same vector.
        nlohmann::json vec = nlohmann::json::array();
        std::uint64_t h = 1469598103934665603ULL;
        for (unsigned char ch : inputs[i]) {
            h = (h ^ ch) * 1099511628211ULL;
        }
        for (int d = 0; d < 8; ++d) {
            h = h * 6364136223846793005ULL + 1442695040888963407ULL;
            vec.push_back(static_cast<double>(h >> 40) / static_cast<double>(1ULL << 24) - 0.5);
        }
        data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(vec)}});
        tokens += estimate_text_tokens(inputs[i]);
    }
    return {{"object", "list"},
            {"data", std::move(data)},
            {"model", model},
            {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
}

} // namespace michi::providers::echo
