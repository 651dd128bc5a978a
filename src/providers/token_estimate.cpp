#include "michi/providers/token_estimate.hpp"

namespace michi::providers {
namespace {

std::uint64_t content_tokens(const nlohmann::json& content) noexcept {
    if (content.is_string()) {
        return estimate_text_tokens(content.get_ref<const std::string&>());
    }
    std::uint64_t n = 0;
    if (content.is_array()) {
        for (const auto& part : content) {
            if (!part.is_object()) {
                continue;
            }
            const auto text = part.find("text");
            if (text != part.end() && text->is_string()) {
                n += estimate_text_tokens(text->get_ref<const std::string&>());
            } else if (part.contains("image_url") || part.contains("source")) {
                n += per_image;
            }
        }
    }
    return n;
}

} // namespace

std::uint64_t estimate_text_tokens(std::string_view text) noexcept {
    return estimate_text_tokens(text.size());
}

std::uint64_t estimate_text_tokens(std::size_t bytes) noexcept {
    return (static_cast<std::uint64_t>(bytes) + 3) / 4;
}

std::uint64_t estimate_prompt_tokens(const nlohmann::json& request) noexcept {
    std::uint64_t n = 0;
    const auto messages = request.find("messages");
    if (messages != request.end() && messages->is_array()) {
        for (const auto& m : *messages) {
            if (!m.is_object()) {
                continue;
            }
            n += per_message_overhead;
            const auto content = m.find("content");
            if (content != m.end()) {
                n += content_tokens(*content);
            }
        }
    }
    const auto input = request.find("input"); // embeddings
    if (input != request.end()) {
        if (input->is_string()) {
            n += estimate_text_tokens(input->get_ref<const std::string&>());
        } else if (input->is_array()) {
            for (const auto& item : *input) {
                n +=
                    item.is_string() ? estimate_text_tokens(item.get_ref<const std::string&>()) : 1;
            }
        }
    }
    const auto system = request.find("system"); // anthropic-style
    if (system != request.end()) {
        n += content_tokens(*system);
    }
    return n;
}

} // namespace michi::providers
